"""Root pytest hooks: notebooks (nbval) run against a local platform of their own.

The kernels nbval starts inherit this environment, so their ``get()`` starts a
platform in a temporary data directory, which is stopped when the run ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_HOME_VAR = "APOLO_JUPYTER_HOME"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(_HOME_VAR):
        return
    home = tempfile.mkdtemp(prefix="apolo-jupyter-test-home-")
    os.environ[_HOME_VAR] = home
    config.stash[_home_key] = home


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_home_key, None)
    if home is None:
        return
    from pathlib import Path

    from apolo_jupyter.client._local_home import LocalPaths, read_info
    from tests.conftest import stop_daemon

    paths = LocalPaths(Path(home))
    stop_daemon(paths, read_info(paths))
    shutil.rmtree(home, ignore_errors=True)


_home_key = pytest.StashKey[str]()
