"""apolo_jupyter: run and watch Apolo jobs from Jupyter; a local platform built in.

The public API mirrors ``apolo_sdk``: ``from apolo_jupyter import get, JobStatus``.
``%load_ext apolo_jupyter`` adds the magics. Names load on first use, so loading the
extension does not import the HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .client import *  # noqa: F403


def __getattr__(name: str) -> Any:
    client = importlib.import_module(".client", __name__)
    if name == "__all__":
        return [*client.__all__, "__version__"]
    if name in client.__all__:
        return getattr(client, name)
    raise AttributeError(f"module 'apolo_jupyter' has no attribute {name!r}")


def load_ipython_extension(ipython: InteractiveShell) -> None:
    from .magics import ApoloMagics

    ipython.register_magics(ApoloMagics)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    magics = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        for name in [n for n in magics[kind] if n.startswith("apolo_")]:
            del magics[kind][name]
