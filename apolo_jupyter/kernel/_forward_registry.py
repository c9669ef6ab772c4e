"""The registry of port forwards that the Jupyter proxy may serve.

This is the only thing the kernel (which opens a port forward) and the
jupyter-server extension (which proxies it) share. Each registered forward is one
file ``<id>.json`` in ``<jupyter_runtime_dir()>/apolo-forwards/`` (or
``$APOLO_JUPYTER_FORWARDS_DIR``), holding ``{"id", "port", "job_id", "pid",
"created", "started"}`` (``started``: the registering process's start time, so a
reused pid does not revive a dead kernel's record). The id is an opaque random token: the proxy URL names the id, never a
host or a port, so a URL can reach only a loopback port that a live kernel of this
user registered.

The files are written and read with the strict checks of :mod:`._records`
(0700 directory, 0600 files written atomically; ids checked before any file
system access; only this user's regular files; a record whose process is gone
is stale).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _records as records
from ._records import ID_PATTERN

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


@dataclass(frozen=True)
class Forward:
    """One registered forward: ``127.0.0.1:port`` reaches ``job_id``."""

    id: str
    port: int
    job_id: str
    pid: int
    created: float
    started: int | None = None  # the registering process's start time, in ticks


def _start_ticks(pid: int) -> int | None:
    return records.start_ticks(pid)


def forwards_dir() -> Path:
    """The registry directory (not created)."""
    return records.registry_dir(ENV_DIR, "apolo-forwards")


def register(port: int, job_id: str) -> Forward:
    """Record that ``127.0.0.1:port`` forwards to ``job_id``; return the record.

    The record belongs to this process: it is removed by
    :func:`unregister_all_of_this_process` (also run at exit) and ignored by
    readers once this process is gone.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("port must be an integer between 1 and 65535")
    if not isinstance(job_id, str) or not job_id:
        raise ValueError("job_id must be a non-empty string")
    forward = Forward(
        id=records.new_id(),
        port=port,
        job_id=job_id,
        pid=os.getpid(),
        created=time.time(),
        started=_start_ticks(os.getpid()),
    )
    records.write(
        forwards_dir(),
        forward.id,
        {
            "id": forward.id,
            "port": forward.port,
            "job_id": forward.job_id,
            "pid": forward.pid,
            "created": forward.created,
            "started": forward.started,
        },
    )
    records.remove_at_exit(unregister_all_of_this_process)
    return forward


def unregister(id: str) -> None:
    """Remove a registered forward; unknown or malformed ids are ignored."""
    if records.valid_id(id):
        records.remove(forwards_dir() / f"{id}.json")


def _parse(forward_id: str, obj: dict[str, Any]) -> Forward | None:
    port, job_id, created = obj.get("port"), obj.get("job_id"), obj.get("created")
    found = records.owner(obj)
    if (
        found is None
        or obj.get("id") != forward_id
        or type(port) is not int
        or not 0 < port < 65536
        or not isinstance(job_id, str)
        or not isinstance(created, int | float)
    ):
        return None
    pid, started = found
    return Forward(
        id=forward_id,
        port=port,
        job_id=job_id,
        pid=pid,
        created=float(created),
        started=started,
    )


def lookup(id: str) -> Forward | None:
    """The live forward registered under ``id``, or None.

    A malformed id is rejected before the file system is touched. A record
    whose owning process has exited is removed and reported as None.
    """
    if not records.valid_id(id):
        return None
    path = forwards_dir() / f"{id}.json"
    obj = records.read(path)
    forward = _parse(id, obj) if obj is not None else None
    if forward is None:
        return None
    if not records.pid_alive(forward.pid, forward.started):
        records.remove(path)
        return None
    return forward


def unregister_all_of_this_process() -> None:
    """Remove every forward this process registered (for kernel shutdown)."""
    for path in records.paths_of_this_process(forwards_dir()):
        records.remove(path)
