"""Strings handed to a host program on a file descriptor, never on its command
line or in its environment, where other processes (and the job) could read them."""

from __future__ import annotations

import os
from collections.abc import Iterable


def nul_memfd(name: str, items: Iterable[str]) -> int:
    """A memfd holding ``items`` NUL-separated (each one NUL-terminated), at
    offset 0; close-on-exec, so pass it on explicitly (``pass_fds``)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(b"".join(item.encode() + b"\0" for item in items))
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
