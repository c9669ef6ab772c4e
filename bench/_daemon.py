"""The local platform a bench measures: its daemon, started on a home of the
bench's own and stopped (and waited for) when the bench is done with it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

from apolo_jupyter.client._local_home import (
    DaemonInfo,
    LocalPaths,
    ensure_running,
    is_running,
)


def stop_daemon(paths: LocalPaths, pid: int, timeout: float = 30.0) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_running(paths) and time.monotonic() < deadline:
        time.sleep(0.02)


@contextlib.contextmanager
def local_platform(paths: LocalPaths) -> Iterator[DaemonInfo]:
    """The daemon on ``paths``, started here and stopped on leaving."""
    info = ensure_running(paths)
    try:
        yield info
    finally:
        stop_daemon(paths, info.pid)
