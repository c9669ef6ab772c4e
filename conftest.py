"""Root pytest hooks: the whole run is cut off from the user's Apolo account, and
notebooks (nbval) run against a local platform of their own.

- The variables and files through which ``get()`` would find a real login
  (``APOLO_PASSED_CONFIG``, ``APOLO_CONFIG``, ``~/.apolo``...) are removed from the
  environment, and ``HOME`` points at an empty temporary directory, so no test, kernel
  or notebook can start a job on a real cluster, even inside an Apolo job or after
  ``apolo login``.
- ``APOLO_JUPYTER_HOME`` always points at the run's scratch directory, even when
  it was set before: a developer's own local platform (their jobs, secrets and
  storage) never receives the tests' jobs and secrets. The kernels nbval starts
  inherit this environment, so their ``get()`` starts a platform there, which is
  stopped when the run ends.
- ``TMPDIR`` points inside the scratch directory too, so what notebooks and other
  subprocesses leave in temporary folders goes with it at exit.
- With ``APOLO_JUPYTER_NO_SKIPS=1`` (set by ``scripts/test.sh``), any skipped test
  fails the run: in CI every dependency is installed, so a skip means one is
  missing, not that the test does not apply.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_HOME_VAR = "APOLO_JUPYTER_HOME"
_LOGIN_VARS = (
    "APOLO_PASSED_CONFIG",
    "NEURO_PASSED_CONFIG",
    "APOLO_CONFIG",
    "NEUROMATION_CONFIG",
    "APOLO_JUPYTER_QUIET",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
)
_NO_SKIPS_VAR = "APOLO_JUPYTER_NO_SKIPS"


def pytest_configure(config: pytest.Config) -> None:
    scratch = tempfile.mkdtemp(prefix="apolo-jupyter-test-")
    # Removed at exit, not at unconfigure: atexit runs callbacks last-in first-out,
    # so IPython shells made by the tests still write their history there first.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    for var in _LOGIN_VARS:
        os.environ.pop(var, None)
    user_home = Path(scratch) / "user-home"
    user_home.mkdir()
    os.environ["HOME"] = str(user_home)
    home = Path(scratch) / "platform"
    os.environ[_HOME_VAR] = str(home)
    config.stash[_home_key] = str(home)
    tmp = Path(scratch) / "tmp"
    tmp.mkdir()
    os.environ["TMPDIR"] = str(tmp)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_home_key, None)
    if home is not None:
        from apolo_jupyter.client._local_home import LocalPaths, read_info
        from tests.conftest import stop_daemon

        paths = LocalPaths(Path(home))
        stop_daemon(paths, read_info(paths))


def _skipped(session: pytest.Session) -> list[pytest.TestReport]:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    return list(reporter.stats.get("skipped", [])) if reporter is not None else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get(_NO_SKIPS_VAR) and exitstatus == 0 and _skipped(session):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if os.environ.get(_NO_SKIPS_VAR) and skipped:
        terminalreporter.write_line(
            f"{_NO_SKIPS_VAR} is set and {len(skipped)} test(s) skipped: a test "
            "dependency is missing (see the skip reasons above); this run fails.",
            red=True,
        )


_home_key = pytest.StashKey[str]()
