"""Private record files that a kernel writes and the Jupyter server reads.

The kernel and the server extension share nothing but loopback ports and
directories under ``jupyter_runtime_dir()``. Each record is one small JSON file
named by an opaque random id. Writers make the directory 0700 and each file 0600,
atomically. Readers accept only ids matching ``ID_PATTERN`` (checked before any
file system access), only a directory of this user's that nobody else can write
to, only regular files owned by this user and opened without following links or
blocking, and treat a record whose process is gone (or whose pid was reused) as
stale.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_runtime_dir

from ..client._process import start_ticks as start_ticks  # re-exported

ID_PATTERN = r"[A-Za-z0-9_-]{16,64}"
_ID_RE = re.compile(ID_PATTERN)
MAX_RECORD = 4096
_removed_at_exit: set[Callable[[], None]] = set()


def registry_dir(env: str, name: str) -> Path:
    """A registry's directory (not created): ``$env`` if set, else ``name`` in
    ``jupyter_runtime_dir()``."""
    override = os.environ.get(env)
    if override:
        return Path(override)
    return Path(jupyter_runtime_dir()) / name


def remove_at_exit(unregister_all: Callable[[], None]) -> None:
    """Run ``unregister_all`` (a registry's removal of this process's records)
    when the process exits; once, however often it is asked."""
    if unregister_all not in _removed_at_exit:
        atexit.register(unregister_all)
        _removed_at_exit.add(unregister_all)


def new_id() -> str:
    return secrets.token_urlsafe(16)


def valid_id(record_id: object) -> bool:
    return isinstance(record_id, str) and _ID_RE.fullmatch(record_id) is not None


def pid_alive(pid: int, started: int | None) -> bool:
    """Process ``pid`` is the one that wrote a record: the same pid and, where
    recorded, the same start time (a dead kernel's pid may be reused)."""
    if pid <= 0:
        return False
    if started is not None:
        return start_ticks(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def ensure_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_dir(path: Path) -> bool:
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


def write(directory: Path, record_id: str, data: dict[str, Any]) -> None:
    """Write ``<record_id>.json`` atomically, 0600, in a 0700 ``directory``."""
    ensure_dir(directory)
    raw = json.dumps(data).encode()
    # mkstemp creates the file 0600; os.replace makes it visible atomically.
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, directory / f"{record_id}.json")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read(path: Path) -> dict[str, Any] | None:
    """A record's JSON object, if the file passes every check above."""
    if not private_dir(path.parent):
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
            or st.st_size > MAX_RECORD
        ):
            return None
        raw = f.read()
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def owner(obj: dict[str, Any]) -> tuple[int, int | None] | None:
    """The (pid, start ticks) a record names, if well formed."""
    pid, started = obj.get("pid"), obj.get("started")
    if type(pid) is not int or not (started is None or type(started) is int):
        return None
    return pid, started


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def paths_of_this_process(directory: Path) -> list[Path]:
    """The records in ``directory`` written by this process."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    me = os.getpid()
    mine = []
    for path in entries:
        if path.suffix != ".json" or not valid_id(path.name.removesuffix(".json")):
            continue
        obj = read(path)
        found = owner(obj) if obj is not None else None
        if found is not None and found[0] == me:
            mine.append(path)
    return mine
