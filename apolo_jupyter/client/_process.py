"""Which process wrote something: its pid and its start time.

A pid alone may be reused once its process is gone; the start time (clock ticks
since boot, from ``/proc/<pid>/stat``) tells the same process from a later one.
The kernel's records for the Jupyter server and the views' saved outputs name
their kernel this way, and the server checks it (``kernel._records.pid_alive``).
"""

from __future__ import annotations

import os
from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
        return int(raw.rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def this_process() -> dict[str, int | None]:
    """``{"pid": …, "started": …}`` of the calling process."""
    pid = os.getpid()
    return {"pid": pid, "started": start_ticks(pid)}
