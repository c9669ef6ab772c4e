"""Looking up a path in a job's filesystem from the host, as the job would see
it, never the host's: ``openat2(2)`` from a directory fd, with the kernel
keeping the walk inside it.

- ``RESOLVE_IN_ROOT`` from an fd of ``/proc/<init>/root`` (exec): that fd is the
  job's root, ``..`` stops there and an absolute symlink the job planted
  (``/x -> /etc/shadow``) resolves against the job's root, in the job's mounts.
- ``RESOLVE_BENEATH`` from a volume's fd (a job's start, before its sandbox
  exists): a symlink that would leave the volume fails the walk (``EXDEV``),
  and the answer is "cannot tell here" (the sandbox then says what it finds).

Magic links (``/proc/self/...``) are never followed, and only ``O_PATH`` fds
are opened, so a FIFO never blocks. Each answer is True (an executable file, or
a folder), False (not there, or not that), or None (cannot tell from here).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat

_SYS_OPENAT2 = 437  # the same number on every architecture (since Linux 5.6)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_RESOLVE_IN_ROOT = 0x10
_RETRIES = 8  # EAGAIN: a rename raced the walk; the kernel asks to try again


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


_LIBC = ctypes.CDLL(None, use_errno=True)
_syscall = _LIBC.syscall
_syscall.restype = ctypes.c_long


def _openat2(dirfd: int, path: str, resolve: int) -> int | None:
    """An ``O_PATH`` fd of ``path`` under ``dirfd``; None where the kernel has
    no openat2; OSError otherwise."""
    how = _OpenHow(os.O_PATH | os.O_CLOEXEC, 0, resolve | _RESOLVE_NO_MAGICLINKS)
    raw = path.encode()
    for _ in range(_RETRIES):
        fd = _syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(raw),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        code = ctypes.get_errno()
        if code == errno.ENOSYS:
            return None
        if code != errno.EAGAIN:
            raise OSError(code, os.strerror(code), path)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


def _probe(dirfd: int, path: str, resolve: int, want_dir: bool) -> bool | None:
    if "\0" in path:
        return False
    try:
        fd = _openat2(dirfd, path or ".", resolve)
    except OSError as exc:
        return None if exc.errno in (errno.EXDEV, errno.EAGAIN) else False
    if fd is None:
        return None
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if want_dir:
        return stat.S_ISDIR(mode)
    return stat.S_ISREG(mode) and bool(mode & 0o111)


def executable_in_root(root_fd: int, path: str) -> bool | None:
    """Whether ``path`` (absolute, in the job) is an executable file there."""
    return _probe(root_fd, path, _RESOLVE_IN_ROOT, want_dir=False)


def executable_beneath(dirfd: int, path: str) -> bool | None:
    """Whether ``path`` (relative to the folder ``dirfd``; "" is the fd itself)
    is an executable file, resolved without leaving that folder."""
    if not path:
        return _fd_is(dirfd, want_dir=False)
    return _probe(dirfd, path, _RESOLVE_BENEATH, want_dir=False)


def folder_beneath(dirfd: int, path: str) -> bool | None:
    """Whether ``path`` (relative to the folder ``dirfd``) is a folder there."""
    if not path:
        return _fd_is(dirfd, want_dir=True)
    return _probe(dirfd, path, _RESOLVE_BENEATH, want_dir=True)


def _fd_is(fd: int, want_dir: bool) -> bool:
    with contextlib.suppress(OSError):
        mode = os.fstat(fd).st_mode
        return (
            stat.S_ISDIR(mode)
            if want_dir
            else (stat.S_ISREG(mode) and bool(mode & 0o111))
        )
    return False


def open_root(pid: int) -> int:
    """An ``O_PATH`` fd of the root directory of process ``pid`` (its mount
    namespace's view); OSError if the process is gone."""
    return os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
