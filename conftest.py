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
  inherit this environment, so their ``get()`` starts a platform there.
- ``TMPDIR`` points inside the scratch directory too, so what notebooks and other
  subprocesses leave in temporary folders goes with it at exit.
- When the run ends, every platform daemon whose ``--home`` lies in the scratch
  directory or in pytest's base temporary directory is stopped (SIGTERM, then
  SIGKILL): a test that fails between a start and its stop leaves none behind.
  They are found by that argument only, never by name, so other runs' daemons
  on the same machine are left alone.
- With ``APOLO_JUPYTER_NO_SKIPS=1`` (set by ``scripts/test.sh``), any skipped test
  fails the run: in CI every dependency is installed, so a skip means one is
  missing, not that the test does not apply.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
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
    tmp = Path(scratch) / "tmp"
    tmp.mkdir()
    os.environ["TMPDIR"] = str(tmp)
    config.stash[_scratch_key] = scratch


def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = config.stash.get(_scratch_key, None)
    if scratch is None:
        return
    roots = [Path(scratch)]
    factory = getattr(config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)
    if basetemp is not None:
        roots.append(Path(basetemp))
    # The notebooks' platform is expected to run until now; any other is a leak.
    notebooks = (Path(scratch) / "platform").resolve()
    left = [home for home in _stop_daemons_under(roots) if home != notebooks]
    if left:
        sys.stderr.write(
            f"conftest: stopped {len(left)} platform daemon(s) a test left "
            f"running: {', '.join(map(str, left))}\n"
        )


def _daemon_home(pid: int) -> Path | None:
    """The ``--home`` of a ``python -m apolo_jupyter.local serve`` process."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if b"serve" not in argv or b"--home" not in argv[:-1]:
        return None
    return Path(os.fsdecode(argv[argv.index(b"--home") + 1])).resolve()


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :][:1] != b"Z"


def _stop_daemons_under(roots: list[Path], grace: float = 30.0) -> list[Path]:
    """Stop every daemon whose ``--home`` lies under one of ``roots``: SIGTERM
    (it cancels its jobs), SIGKILL after ``grace``. Returns the homes of those
    that still held their lock (one that let go is already on its way out)."""
    from apolo_jupyter.client._local_home import LocalPaths, is_running

    resolved = [root.resolve() for root in roots]
    found: dict[int, Path] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            home = _daemon_home(int(name))
            if home is not None and any(home.is_relative_to(r) for r in resolved):
                found[int(name)] = home
    held = {home: is_running(LocalPaths(home)) for home in found.values()}
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(pid) for pid in found) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in found:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return [home for home in found.values() if held[home]]


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


_scratch_key = pytest.StashKey[str]()
