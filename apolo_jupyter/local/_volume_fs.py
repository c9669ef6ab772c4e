"""A volume's storage folder, opened so that what was checked is what is mounted.

``storage://local/<org>/<project>/<path>`` names ``<storage_dir>/<org>/<project>/
<path>``. The folder is reached from an fd of the storage root one component at a
time with ``O_PATH | O_NOFOLLOW | O_DIRECTORY``: a symlink anywhere on the way
(planted by a job, or swapped in while we walk) makes the open fail instead of
being followed, and the final fd is handed to bwrap (``--bind-fd``), which mounts
that very folder. Missing folders of a read-write volume are made on the way with
``mkdirat`` relative to their parent's fd, then opened the same way.

The storage root itself lies in the platform's data directory, which no job can
see or change, so the path up to it is trusted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class VolumeError(ValueError):
    """The volume's folder cannot be mounted; the message says why and what to do."""


def _shown(parts: Sequence[str]) -> str:
    return "storage://local/" + "/".join(parts)


def _refusal(fd: int, name: str, parts: Sequence[str]) -> VolumeError:
    """Why ``name`` (in the folder ``fd``) is not a folder we can enter."""
    shown = _shown(parts)
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return VolumeError(f"volume source {shown} changed while it was opened")
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(name, dir_fd=fd)
        except OSError:
            target = "?"
        return VolumeError(
            f"volume source {shown} is or goes through a symlink ({name} -> "
            f"{target}); volumes are mounted only from real folders inside the "
            "storage: mount the folder itself"
        )
    if stat.S_ISDIR(st.st_mode):
        return VolumeError(
            f"volume source {shown} changed while it was opened ({name} was "
            "replaced by a symlink or a file, and back): volumes are mounted only "
            "from real folders; start the job again"
        )
    return VolumeError(
        f"volume source {shown} is not a folder ({name} is a file); mount a folder"
    )


def _walk(
    storage_dir: Path, parts: Sequence[str], create: bool, must_exist: bool
) -> int | None:
    """The O_PATH fd of the folder, or None if it is missing (and that is fine)."""
    if create:
        storage_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(storage_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if must_exist:
            raise VolumeError(
                f"volume source {_shown(parts)} does not exist: create the folder "
                "first (client.storage.mkdir) or mount it rw"
            ) from None
        return None
    try:
        for index, part in enumerate(parts):
            try:
                child = os.open(part, _FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    if must_exist:
                        raise VolumeError(
                            f"volume source {_shown(parts)} does not exist: create "
                            "the folder first (client.storage.mkdir) or mount it rw"
                        ) from None
                    os.close(fd)
                    return None
                with contextlib.suppress(FileExistsError):  # made meanwhile
                    os.mkdir(part, 0o777, dir_fd=fd)
                try:
                    child = os.open(part, _FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise _failure(exc, fd, part, parts[: index + 1]) from None
            except OSError as exc:
                raise _failure(exc, fd, part, parts[: index + 1]) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _failure(exc: OSError, fd: int, part: str, parts: Sequence[str]) -> VolumeError:
    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
        return _refusal(fd, part, parts)
    return VolumeError(
        f"volume source {_shown(parts)} cannot be opened: {exc.strerror or exc}"
    )


def open_volume(storage_dir: Path, parts: Sequence[str], *, create: bool) -> int:
    """An ``O_PATH`` fd of the volume's folder (the caller closes it); ``create``
    makes missing folders. VolumeError when it is missing, a file, or reached
    through a symlink."""
    fd = _walk(storage_dir, parts, create=create, must_exist=True)
    assert fd is not None
    return fd


def check_volume(storage_dir: Path, parts: Sequence[str], *, must_exist: bool) -> None:
    """At job creation: VolumeError if the folder could not be mounted now (a
    missing folder is fine unless ``must_exist``). The job's start checks again."""
    fd = _walk(storage_dir, parts, create=False, must_exist=must_exist)
    if fd is not None:
        os.close(fd)
