"""The views' ES modules and CSS, shipped as files in ``static/`` (no build step).

A view's module is the shared ``common.js`` followed by its own file (an
anywidget module cannot import a sibling file); its CSS likewise. Saved outputs
embed the same CSS, so a reopened or exported notebook looks like the live view.
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files
from typing import Any

from ..client._process import this_process

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@functools.cache
def asset(*names: str) -> str:
    folder = files(__package__).joinpath("static")
    return "\n".join(folder.joinpath(name).read_text("utf-8") for name in names)


_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_SPACE = re.compile(r"\s*([{};,>])\s*")


@functools.cache
def style(*names: str) -> str:
    """A ``<style>`` element with the named CSS files (comments and spaces
    dropped: each saved output carries it), for saved HTML."""
    css = _COMMENT.sub("", asset("common.css", *names))
    css = _SPACE.sub(r"\1", " ".join(css.split()))
    return f"<style>{css}</style>"


def widget_view(model_id: str) -> dict[str, object]:
    return {"version_major": 2, "version_minor": 0, "model_id": model_id}


# A live view's output names the kernel process that holds its model, so the
# Jupyter server can drop the widget from a reopened notebook once that process
# is gone and let the text and HTML fallbacks show (``server._reopen``).
OWNER_KEY = "apolo_jupyter"


def live_metadata() -> dict[str, Any]:
    """The output metadata of a bundle that carries a live widget."""
    return {OWNER_KEY: {"kernel": this_process()}}


class KernelOwned:
    """For stock ipywidgets containers (the forms): their output carries
    ``live_metadata``, so a notebook reopened after the kernel has gone shows
    their ``text/plain`` instead of "Error displaying widget"."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        return (data, live_metadata()) if isinstance(data, dict) else data
