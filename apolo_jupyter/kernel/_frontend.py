"""Does this process show widgets to a person, or print text?

Widgets need a live frontend (JupyterLab, Notebook, VS Code). Terminal IPython has
none; headless executors (nbclient, nbval, papermill, nbconvert) record outputs but
nobody watches them, so text is what belongs in the saved notebook. Override with
``APOLO_JUPYTER_DISPLAY=widget`` or ``=text``.
"""

from __future__ import annotations

import os
from pathlib import Path

HEADLESS_MARKERS = (
    "nbclient",
    "nbval",
    "pytest",
    "papermill",
    "nbconvert",
    "jupyter-execute",
    "jupyter_execute",
    "testbook",
)


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def headless_parent(pid: int | None = None) -> bool:
    """True when the kernel was started by a headless executor."""
    parent = os.getppid() if pid is None else pid
    line = _cmdline(parent)
    return any(marker in line for marker in HEADLESS_MARKERS)


def use_widgets() -> bool:
    forced = os.environ.get("APOLO_JUPYTER_DISPLAY", "").lower()
    if forced in ("widget", "widgets"):
        return True
    if forced == "text":
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return False  # terminal IPython or plain Python
    return not headless_parent()
