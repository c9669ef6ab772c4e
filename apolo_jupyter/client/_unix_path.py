"""A Unix socket's address, however long its path.

``sun_path`` holds 107 bytes; a platform home under a deep temporary folder
needs more. Then the socket is named through an fd of its folder
(``/proc/self/fd/N/name``), which the kernel resolves as the folder itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

MAX_PATH = 107


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An address that names ``path`` while the context lasts."""
    text = os.fsencode(path)
    if len(text) <= MAX_PATH:
        yield os.fsdecode(text)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)
