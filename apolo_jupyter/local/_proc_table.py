"""Reading the process table from /proc (psutil is not a runtime dependency),
for the executor: who is in a process group or a pid namespace, and the
orphan reaper that finds a crashed platform's sandboxes by their environment.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time

_SETTLE_TIMEOUT = 2.0  # seconds to wait for killed processes to disappear

# /proc readers (psutil is not a runtime dependency). Zombies count as gone: they
# are dead, and on hosts whose pid 1 does not reap orphans they stay for a while.


def _stat(pid: int) -> tuple[int, bool] | None:
    """(process group, is a zombie) of ``pid``; None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()  # the comm may contain spaces
    return int(fields[2]), fields[0] in (b"Z", b"X")


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _pid_ns(pid: int) -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/ns/pid")
    return None


def running(pid: int, pid_ns: str | None) -> bool:
    return (st := _stat(pid)) is not None and not st[1] and _pid_ns(pid) == pid_ns


def group_alive(pgid: int) -> bool:
    return any((st := _stat(pid)) and st[0] == pgid and not st[1] for pid in _pids())


def ns_members(pid_ns: str | None, init: int) -> list[int]:
    return [pid for pid in _pids() if pid != init and _pid_ns(pid) == pid_ns]


def _environ_has(pid: int, entry: bytes, prefix: bool) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            items = environ.read().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False
    if prefix:
        return any(item.startswith(entry) for item in items)
    return entry in items


def kill_tagged(entry: bytes, *, prefix: bool = False) -> list[int]:
    """SIGKILL every process whose initial environment holds ``entry`` (with
    ``prefix``, an entry starting so), through pidfds checked again after
    opening (a reused pid is never hit), all found before any is killed; wait
    up to _SETTLE_TIMEOUT seconds for them to exit."""
    found: list[tuple[int, int]] = []
    for pid in _pids():
        if pid == os.getpid() or not _environ_has(pid, entry, prefix):
            continue
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        if _environ_has(pid, entry, prefix):
            found.append((pid, pidfd))
        else:
            os.close(pidfd)
    poller = select.poll()
    for _, pidfd in found:
        with contextlib.suppress(OSError):  # already exited
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        poller.register(pidfd, select.POLLIN)
    deadline, pending = time.monotonic() + _SETTLE_TIMEOUT, len(found)
    while pending and (left := deadline - time.monotonic()) > 0:
        for pidfd, _ in poller.poll(left * 1000):
            poller.unregister(pidfd)
            pending -= 1
    for _, pidfd in found:
        os.close(pidfd)
    return [pid for pid, _ in found]
