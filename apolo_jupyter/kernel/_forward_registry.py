"""The registry of port forwards that the Jupyter proxy may serve.

This is the only thing the kernel (which opens a port forward) and the
jupyter-server extension (which proxies it) share. Each registered forward is one
file ``<id>.json`` in ``<jupyter_runtime_dir()>/apolo-forwards/`` (or
``$APOLO_JUPYTER_FORWARDS_DIR``), holding ``{"id", "port", "job_id", "pid",
"created", "started"}`` (``started``: the registering process's start time, so a
reused pid does not revive a dead kernel's record). The id is an opaque random token: the proxy URL names the id, never a
host or a port, so a URL can reach only a loopback port that a live kernel of this
user registered.

The directory is 0700 and every file 0600, written atomically; the reader accepts
only a private directory of this user's, regular files (opened without blocking),
only ids matching a strict pattern (checked before any file system access), only
files owned by this user, and treats a record whose process is gone as stale.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_runtime_dir

__all__ = [
    "ENV_DIR",
    "ID_PATTERN",
    "Forward",
    "forwards_dir",
    "lookup",
    "register",
    "unregister",
    "unregister_all_of_this_process",
]

ENV_DIR = "APOLO_JUPYTER_FORWARDS_DIR"
ID_PATTERN = r"[A-Za-z0-9_-]{16,64}"
_ID_RE = re.compile(ID_PATTERN)
_atexit_registered = False


@dataclass(frozen=True)
class Forward:
    """One registered forward: ``127.0.0.1:port`` reaches ``job_id``."""

    id: str
    port: int
    job_id: str
    pid: int
    created: float
    started: int | None = None  # the registering process's start time, in ticks


def forwards_dir() -> Path:
    """The registry directory (not created)."""
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override)
    return Path(jupyter_runtime_dir()) / "apolo-forwards"


def _ensure_dir() -> Path:
    path = forwards_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _valid_id(forward_id: object) -> bool:
    return isinstance(forward_id, str) and _ID_RE.fullmatch(forward_id) is not None


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return int(stat.rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int, started: int | None) -> bool:
    """Process ``pid`` is the one that registered: the same pid and, where
    recorded, the same start time (a killed kernel's pid may be reused)."""
    if pid <= 0:
        return False
    if started is not None:
        return _start_ticks(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def register(port: int, job_id: str) -> Forward:
    """Record that ``127.0.0.1:port`` forwards to ``job_id``; return the record.

    The record belongs to this process: it is removed by
    :func:`unregister_all_of_this_process` (also run at exit) and ignored by
    readers once this process is gone.
    """
    global _atexit_registered
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("port must be an integer between 1 and 65535")
    if not isinstance(job_id, str) or not job_id:
        raise ValueError("job_id must be a non-empty string")
    forward = Forward(
        id=secrets.token_urlsafe(16),
        port=port,
        job_id=job_id,
        pid=os.getpid(),
        created=time.time(),
        started=_start_ticks(os.getpid()),
    )
    directory = _ensure_dir()
    data = json.dumps(
        {
            "id": forward.id,
            "port": forward.port,
            "job_id": forward.job_id,
            "pid": forward.pid,
            "created": forward.created,
            "started": forward.started,
        }
    ).encode()
    # mkstemp creates the file 0600; os.replace makes it visible atomically.
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, directory / f"{forward.id}.json")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if not _atexit_registered:
        atexit.register(unregister_all_of_this_process)
        _atexit_registered = True
    return forward


def unregister(id: str) -> None:
    """Remove a registered forward; unknown or malformed ids are ignored."""
    if not _valid_id(id):
        return
    with contextlib.suppress(FileNotFoundError):
        (forwards_dir() / f"{id}.json").unlink()


def _parse(forward_id: str, raw: bytes) -> Forward | None:
    try:
        obj: Any = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    port, job_id, pid, created, started = (
        obj.get("port"),
        obj.get("job_id"),
        obj.get("pid"),
        obj.get("created"),
        obj.get("started"),
    )
    if (
        obj.get("id") != forward_id
        or type(port) is not int
        or not 0 < port < 65536
        or not isinstance(job_id, str)
        or type(pid) is not int
        or not isinstance(created, int | float)
        or not (started is None or type(started) is int)
    ):
        return None
    return Forward(
        id=forward_id,
        port=port,
        job_id=job_id,
        pid=pid,
        created=float(created),
        started=started,
    )


def _private_dir(path: Path) -> bool:
    """A real directory of this user's that nobody else can write to."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.getuid()
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _read(path: Path, forward_id: str) -> Forward | None:
    if not _private_dir(path.parent):
        return None
    # O_NONBLOCK: a FIFO planted under a record's name must not hang the server.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_uid != os.getuid()
            or st.st_size > 4096
        ):
            return None
        return _parse(forward_id, f.read())


def lookup(id: str) -> Forward | None:
    """The live forward registered under ``id``, or None.

    A malformed id is rejected before the file system is touched. A record
    whose owning process has exited is removed and reported as None.
    """
    if not _valid_id(id):
        return None
    path = forwards_dir() / f"{id}.json"
    forward = _read(path, id)
    if forward is None:
        return None
    if not _pid_alive(forward.pid, forward.started):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    return forward


def unregister_all_of_this_process() -> None:
    """Remove every forward this process registered (for kernel shutdown)."""
    directory = forwards_dir()
    try:
        entries = list(directory.iterdir())
    except OSError:
        return
    me = os.getpid()
    for path in entries:
        forward_id = path.name.removesuffix(".json")
        if path.suffix != ".json" or not _valid_id(forward_id):
            continue
        forward = _read(path, forward_id)
        if forward is not None and forward.pid == me:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
