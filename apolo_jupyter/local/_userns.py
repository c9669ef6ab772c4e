"""Which user namespaces stand between the platform and a job's sandbox, and
the descriptor of the one that ``exec`` must enter first.

- **Root platform:** bubblewrap makes none. The job's pid and mount
  namespaces belong to the platform's own user namespace (``SHARED``).
- **Normal user** (bubblewrap 0.8 to 0.11, as measured): two, nested. The
  outer one maps the user's uid to 0, so that bubblewrap may mount the job's
  ``/dev`` (its pseudo-terminals); it owns the job's pid, mount, uts and ipc
  namespaces. Once the mounts are made, bubblewrap's init moves into an inner
  one that maps the user's uid to itself again, and the job's processes live
  there (``NESTED``). Entering the inner one gives no right over the
  namespaces the outer one owns, and no process lives in the outer one, so it
  has no ``/proc`` path: its descriptor comes from the kernel
  (``NS_GET_USERNS`` on the pid namespace).
- A sandbox whose processes live in the user namespace that owns its other
  namespaces (``OWN``) is entered the same way, without the second step.
"""

from __future__ import annotations

import fcntl
import os
from enum import StrEnum

_NS_GET_USERNS = 0xB701  # ioctl: the user namespace that owns a namespace


class UserNs(StrEnum):
    SHARED = "shared"  # the job's namespaces belong to the platform's
    OWN = "own"  # ... to the user namespace the job's processes live in
    NESTED = "nested"  # the job's processes live one below their owner


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _fd_identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def open_owner(pid: int) -> int:
    """A descriptor (close-on-exec) of the user namespace that owns the pid
    namespace of process ``pid``; OSError if it is gone."""
    pidns = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        owner = fcntl.ioctl(pidns, _NS_GET_USERNS)
    finally:
        os.close(pidns)
    os.set_inheritable(owner, False)
    return owner


def layout(pid: int) -> UserNs | None:
    """How the user namespaces of the sandbox whose init is ``pid`` hang from
    the platform's; None if that process is gone."""
    try:
        ours = _identity(f"/proc/{os.getpid()}/ns/user")
        theirs = _identity(f"/proc/{pid}/ns/user")
        if theirs == ours:
            return UserNs.SHARED
        owner = open_owner(pid)
    except OSError:
        return None
    try:
        return UserNs.OWN if _fd_identity(owner) == theirs else UserNs.NESTED
    finally:
        os.close(owner)
