"""apolo_jupyter: run and watch Apolo jobs from Jupyter; a local platform built in.

The public API mirrors ``apolo_sdk``: ``from apolo_jupyter import get, JobStatus``.
"""

from .client import *  # noqa: F403
from .client import __all__ as _client_all

__version__ = "0.1.0"
__all__ = [*_client_all, "__version__"]
