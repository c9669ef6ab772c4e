"""A reopened notebook shows a gone kernel's views as their saved fallbacks.

JupyterLab renders an output's widget view in preference to its other forms,
and when the model is not in the kernel (the kernel was restarted or shut down
since the notebook was saved) it says "Error displaying widget: model not
found" and shows nothing else; it does not fall back to the output's
``text/html``. A view of ours names the kernel process that holds its model in
the output's metadata (``widgets._static.live_metadata``). When a notebook is
opened, this drops the widget view from each such output whose kernel process
is gone, so the text and HTML fallbacks (the status, log tail and "as of" time
when it was saved) show instead. An output whose kernel still runs (a reload
of the page) keeps its widget, which comes back live from the kernel.

Hooked onto the server's contents manager (``install``): jupyter-server has
pre-save hooks but no hook on load, so its ``get`` is wrapped. The file on disk
is not changed; a later save writes what the page shows.
"""

from __future__ import annotations

import inspect
from typing import Any

from apolo_jupyter.kernel._records import owner, pid_alive

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
OWNER_KEY = "apolo_jupyter"  # widgets._static.OWNER_KEY (not imported: no views here)
_WRAPPED = "_apolo_jupyter_reopen"


def _gone(metadata: Any) -> bool:
    """The output's metadata names a kernel process of ours that is gone."""
    if not isinstance(metadata, dict):
        return False
    mark = metadata.get(OWNER_KEY)
    kernel = mark.get("kernel") if isinstance(mark, dict) else None
    found = owner(kernel) if isinstance(kernel, dict) else None
    return found is not None and not pid_alive(*found)


def drop_gone_views(notebook: Any) -> int:
    """Drop the widget view from outputs whose kernel is gone; how many."""
    dropped = 0
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    for cell in cells if isinstance(cells, list) else ():
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        for output in outputs if isinstance(outputs, list) else ():
            data = output.get("data") if isinstance(output, dict) else None
            if not isinstance(data, dict) or WIDGET_MIME not in data:
                continue
            fallback = "text/html" in data or "text/plain" in data
            if fallback and _gone(output.get("metadata")):
                del data[WIDGET_MIME]
                dropped += 1
    return dropped


def _opened(model: Any) -> Any:
    if isinstance(model, dict) and model.get("type") == "notebook":
        drop_gone_views(model.get("content"))
    return model


def install(contents_manager: Any) -> None:
    """Wrap ``contents_manager.get`` (sync or async) with ``drop_gone_views``."""
    original = contents_manager.get
    if getattr(original, _WRAPPED, False):
        return

    def get(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if not inspect.isawaitable(result):
            return _opened(result)

        async def opened() -> Any:
            return _opened(await result)

        return opened()

    setattr(get, _WRAPPED, True)
    contents_manager.get = get
