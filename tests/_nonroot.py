"""A local platform whose daemon runs as an unprivileged account (for
``test_nonroot``): what a JupyterHub user or a laptop runs.

CI runs as root. Then the session makes, once:

- a system account of its own (``useradd``), removed at the end;
- a Python environment that account can read: a venv of the system's
  ``/usr/bin/python3`` in a world-readable folder, with this project installed
  into it (not editable) by ``uv``, whose cache (root's) keeps the second run
  to a few seconds. The test's own interpreter cannot serve: it may live under
  ``/root``, which other accounts cannot enter;
- a data directory that account owns;

and starts ``apolo-jupyter local start`` as that account. Run as a normal user
already, the tests use the current account and interpreter as they are.

At the end the daemon is stopped as its account would stop it, and no process
of that account may be left.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from apolo_jupyter.client._local_home import DaemonInfo, LocalPaths, read_info

REPO = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = Path("/usr/bin/python3")
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_RETRIES = 20  # useradd/userdel wait for another session's lock on /etc/passwd


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    made: bool  # made by this session (and removed by it)


@dataclass(frozen=True)
class NonRootPlatform:
    """A running daemon of ``account``, started from the ``bin`` folder of a
    Python environment it can read."""

    account: Account
    bin: Path
    paths: LocalPaths
    info: DaemonInfo

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def token(self) -> str:
        return self.info.token

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``apolo-jupyter ARGS`` as the account, on its data directory."""
        return run_as(self.account, [str(self.bin / "apolo-jupyter"), *args],
                      home=self.paths.home.parent, timeout=timeout)  # fmt: skip


def as_account(account: Account) -> dict[str, Any]:
    """``subprocess`` arguments that run a child as ``account`` (no supplementary
    groups); none when that is who we are already."""
    if account.uid == os.geteuid():
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def run_as(
    account: Account, argv: Sequence[str], *, home: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``argv`` as ``account`` (no supplementary groups), with a minimal
    environment whose HOME and APOLO_JUPYTER_HOME lie in ``home``."""
    return subprocess.run(
        argv,
        env={**_ENV, "HOME": str(home), "APOLO_JUPYTER_HOME": str(home / "platform")},
        cwd=home,
        **as_account(account),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _retry(argv: Sequence[str]) -> None:
    """A command that edits /etc/passwd, retried while another holds its lock."""
    for _ in range(_RETRIES):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def make_account() -> Account:
    """A fresh unprivileged system account (root), else the current one."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return Account(me.pw_name, me.pw_uid, me.pw_gid, made=False)
    assert shutil.which("useradd"), "useradd is missing (apt-get install passwd)"
    name = f"ajnr{uuid.uuid4().hex[:8]}"
    _retry(["useradd", "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name])  # fmt: skip
    entry = pwd.getpwnam(name)
    return Account(name, entry.pw_uid, entry.pw_gid, made=True)


def remove_account(account: Account) -> None:
    if account.made:
        _retry(["userdel", account.name])  # its private group goes with it


def processes_of(account: Account) -> list[psutil.Process]:
    """Live processes whose real uid is the account's."""
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        uids = proc.info["uids"]
        zombie = proc.info["status"] == psutil.STATUS_ZOMBIE
        if uids is not None and uids.real == account.uid and not zombie:
            found.append(proc)
    return found


def _uv_cache() -> str:
    """uv's cache for this machine's root (the tests move HOME elsewhere)."""
    if os.environ.get("UV_CACHE_DIR"):
        return os.environ["UV_CACHE_DIR"]
    return str(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "uv")


def python_env(base: Path) -> Path:
    """The ``bin`` folder of a Python environment that any account can run,
    with this project installed: a venv of the system's Python under ``base``
    (root), else the running one (a normal user's own)."""
    if os.geteuid() != 0:
        return Path(sys.executable).parent
    assert SYSTEM_PYTHON.exists(), (
        f"{SYSTEM_PYTHON} is missing: apt-get install python3 (scripts/test.sh does)"
    )
    from uv import find_uv_bin

    uv = find_uv_bin()
    venv = base / "venv"
    # The machine's environment (its proxy and certificates), not a venv's.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(UV_CACHE_DIR=_uv_cache(), UV_NO_PROGRESS="1")
    steps = (
        [uv, "venv", "--quiet", "--python", str(SYSTEM_PYTHON), str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         "--reinstall-package", "apolo-jupyter", str(REPO)],
    )  # fmt: skip
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, f"{step}:\n{done.stderr}"
    return venv / "bin"


@contextmanager
def workspace() -> Iterator[Path]:
    """A folder every account can enter (the venv lives there), removed after."""
    # In /tmp itself: the run's own temporary folders (TMPDIR) are 0700.
    base = Path(tempfile.mkdtemp(prefix="apolo-jupyter-nonroot-", dir="/tmp"))
    try:
        base.chmod(0o755)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def start(account: Account, bin_dir: Path, base: Path) -> NonRootPlatform:
    """``apolo-jupyter local start`` as ``account``, with a data directory it
    owns under ``base``."""
    home = base / "home"
    paths = LocalPaths(home / "platform")
    paths.home.mkdir(mode=0o700, parents=True)
    # As the tests' other platforms: any number of jobs at once, a short grace.
    config = {"kill_grace": 2.0, "capacity": {"cpu": 1000, "memory": 2**50}}
    (paths.home / "config.json").write_text(json.dumps(config))
    for path in (home, paths.home, paths.home / "config.json"):
        os.chown(path, account.uid, account.gid)
    started = run_as(account, [str(bin_dir / "apolo-jupyter"), "local", "start"],
                     home=home, timeout=120)  # fmt: skip
    log = paths.log_file.read_text() if paths.log_file.exists() else ""
    assert started.returncode == 0, (started.stdout, started.stderr, log)
    info = read_info(paths)
    assert info is not None, (started.stdout, log)
    return NonRootPlatform(account, bin_dir, paths, info)


def stop(platform: NonRootPlatform, timeout: float = 30) -> None:
    """Stop the daemon as its account would; wait until none of that
    account's processes is left."""
    stopped = platform.run("local", "stop", timeout=timeout + 30)
    assert stopped.returncode == 0, (stopped.stdout, stopped.stderr)
    deadline = time.monotonic() + timeout
    while platform.account.made and (left := processes_of(platform.account)):
        assert time.monotonic() < deadline, [p.cmdline() for p in left]
        time.sleep(0.05)
