"""The platforms a kernel's views can kill jobs on, for the Jupyter server.

A Kill click must work while the kernel is busy, so it cannot go through the
kernel's queue: the view posts to the server extension's kill route instead,
and the server kills the job through the platform the kernel uses. For that the
kernel registers its platform connection (API URL and token) here: one record
``<id>.json`` per platform in ``<jupyter_runtime_dir()>/apolo-platforms/`` (or
``$APOLO_JUPYTER_PLATFORMS_DIR``), written and read with the strict checks of
:mod:`._records`. The id is opaque and random; the route names it, never a URL.

The token is the one the kernel already holds; the record is as private as the
kernel's own connection file beside it (0600 in a 0700 directory), and goes
when the kernel exits (or is ignored once its process is gone).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..client import Client
from . import _records as records

ENV_DIR = "APOLO_JUPYTER_PLATFORMS_DIR"
JOB_ID_PATTERN = r"job-[A-Za-z0-9-]{1,80}"
_registered: dict[tuple[str, str], str] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Platform:
    """A kernel's platform connection: ``api_url`` with ``token``."""

    id: str
    api_url: str
    token: str
    pid: int
    started: int | None


def platforms_dir() -> Path:
    """The registry directory (not created)."""
    return records.registry_dir(ENV_DIR, "apolo-platforms")


def register(api_url: str, token: str) -> str:
    """Record this process's connection to ``api_url``; return its id (one
    record per platform and token; registering again returns the same id)."""
    key = (api_url, token)
    with _lock:
        known = _registered.get(key)
        if known is not None and (platforms_dir() / f"{known}.json").exists():
            return known
        record_id = records.new_id()
        records.write(
            platforms_dir(),
            record_id,
            {
                "id": record_id,
                "api_url": api_url,
                "token": token,
                "pid": os.getpid(),
                "started": records.start_ticks(os.getpid()),
                "created": time.time(),
            },
        )
        _registered[key] = record_id
        records.remove_at_exit(unregister_all_of_this_process)
        return record_id


def register_client(client: Client) -> str:
    """``register`` for a client's platform; "" if it cannot be recorded (then
    views fall back to asking the kernel)."""
    config = client.config
    try:
        return register(str(config.api_url), config.auth_token)
    except OSError:
        return ""


def kill_base(platform_id: str) -> str:
    """The kill route's prefix below the server's base URL; add ``<job>/kill``."""
    return f"apolo/platforms/{platform_id}/jobs/" if platform_id else ""


def kill_path(platform_id: str, job_id: str) -> str:
    return f"{kill_base(platform_id)}{job_id}/kill" if platform_id else ""


def lookup(platform_id: str) -> Platform | None:
    """The live platform record ``platform_id``, or None (malformed ids are
    refused before the file system is touched; stale records are removed)."""
    if not records.valid_id(platform_id):
        return None
    path = platforms_dir() / f"{platform_id}.json"
    obj = records.read(path)
    if obj is None:
        return None
    found = records.owner(obj)
    api_url, token = obj.get("api_url"), obj.get("token")
    if (
        found is None
        or obj.get("id") != platform_id
        or not isinstance(api_url, str)
        or not api_url.startswith(("http://", "https://"))
        or not isinstance(token, str)
    ):
        return None
    pid, started = found
    if not records.pid_alive(pid, started):
        records.remove(path)
        return None
    return Platform(platform_id, api_url, token, pid, started)


def unregister_all_of_this_process() -> None:
    with _lock:
        _registered.clear()
    for path in records.paths_of_this_process(platforms_dir()):
        records.remove(path)
