"""Widgets or text: a kernel shows views, anything else prints text.

In a kernel (JupyterLab, Notebook, VS Code, and headless executors alike:
nbclient, papermill, nbconvert, jupyter-scheduler) a job is shown as a live view
whose output also carries ``text/plain`` and ``text/html`` that end in the job's
final state, so no guess about who runs the kernel is needed: a person sees the
view, a saved notebook keeps the outcome. Terminal IPython and plain Python have
no display for widgets and print deterministic text. ``APOLO_JUPYTER_DISPLAY=text``
forces text in a kernel too; ``=widget`` forces views (their text shows where
there is no frontend).
"""

from __future__ import annotations

import os


def in_kernel() -> bool:
    """Running in an IPython kernel (not terminal IPython or plain Python)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def use_widgets() -> bool:
    forced = os.environ.get("APOLO_JUPYTER_DISPLAY", "").lower()
    if forced == "text":
        return False
    if forced in ("widget", "widgets"):
        return True
    return in_kernel()
