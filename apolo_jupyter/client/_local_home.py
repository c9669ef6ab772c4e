"""Where the embedded local platform keeps its state, and how to start it.

The client finds (and if needed starts) the local platform through files in its
data directory only: it never imports the platform's code, it runs it as a
separate daemon process so jobs outlive the kernel that started them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 20.0

# Daemons this process started; kept so they are not reaped as "leaked" Popens.
_SPAWNED: list[subprocess.Popen[bytes]] = []


def default_home() -> Path:
    explicit = os.environ.get("APOLO_JUPYTER_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "apolo-jupyter"


@dataclass(frozen=True)
class LocalPaths:
    home: Path

    @classmethod
    def default(cls) -> LocalPaths:
        return cls(default_home())

    @property
    def secret_file(self) -> Path:
        return self.home / "secret"

    @property
    def token_file(self) -> Path:
        return self.home / "token"

    @property
    def daemon_file(self) -> Path:
        return self.home / "daemon.json"

    @property
    def lock_file(self) -> Path:
        """Held (flock) by the running daemon for its whole life."""
        return self.home / "daemon.lock"

    @property
    def start_lock_file(self) -> Path:
        """Serialises concurrent starters."""
        return self.home / "start.lock"

    @property
    def db_file(self) -> Path:
        return self.home / "state.db"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def storage_dir(self) -> Path:
        return self.home / "storage"

    @property
    def log_file(self) -> Path:
        return self.home / "daemon.log"

    @property
    def settings_file(self) -> Path:
        return self.home / "config.json"

    def ensure(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, 0o700)


@dataclass(frozen=True)
class DaemonInfo:
    pid: int
    url: str  # the API url, e.g. http://127.0.0.1:PORT/api/v1
    token: str
    sandbox: str
    gpus: str = ""  # the NVIDIA GPUs jobs may use, or why there are none


def is_running(paths: LocalPaths) -> bool:
    """True while a daemon holds the lock file."""
    try:
        fd = os.open(paths.lock_file, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_info(paths: LocalPaths) -> DaemonInfo | None:
    """The running daemon's address and token, or None when none runs."""
    if not is_running(paths):
        return None
    try:
        data = json.loads(paths.daemon_file.read_text())
        token = paths.token_file.read_text().strip()
    except (OSError, ValueError):
        return None
    return DaemonInfo(
        pid=int(data["pid"]),
        url=str(data["url"]),
        token=token,
        sandbox=str(data.get("sandbox", "")),
        gpus=str(data.get("gpus", "")),
    )


@contextlib.contextmanager
def _start_lock(paths: LocalPaths) -> Iterator[None]:
    fd = os.open(paths.start_lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_running(paths: LocalPaths, timeout: float = START_TIMEOUT) -> DaemonInfo:
    """Return the running daemon, starting it in the background if needed."""
    info = read_info(paths)
    if info is not None:
        return info
    paths.ensure()
    with _start_lock(paths):
        info = read_info(paths)
        if info is not None:
            return info
        proc = spawn(paths)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = read_info(paths)
            if info is not None and info.pid == proc.pid:
                return info
            if proc.poll() is not None:
                break
            time.sleep(0.02)
    tail = _tail(paths.log_file)
    raise RuntimeError(
        f"the local platform did not start (see {paths.log_file}):\n{tail}\n"
        "Try it in a terminal: apolo-jupyter local start"
    )


def spawn(paths: LocalPaths) -> subprocess.Popen[bytes]:
    """Start the daemon detached from this process (own session, own log), in
    ``/`` and with ``-P``: the folder this process runs in is neither the
    daemon's working directory nor on its ``sys.path``."""
    with open(paths.log_file, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-P",
                "-m",
                "apolo_jupyter.local",
                "serve",
                "--home",
                os.path.abspath(paths.home),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )
    _SPAWNED.append(proc)
    return proc


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
