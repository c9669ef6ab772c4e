"""Storage operations on checked entries, each reached through folder fds.

Blocking but short (one folder, one file); the callers run the potentially long
ones (listing, recursive delete) in a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ._storage_fs import (
    DIR_FLAGS,
    Entry,
    FolderCache,
    StorageError,
    folder_of,
    inside,
    open_dirs,
    os_error,
    parent_of,
    refused,
    target_of,
    walk,
)
from ._storage_io import write_all

# Uploads in progress (CREATE) are written under this name, then renamed.
UPLOAD_PREFIX = ".apolo-upload-"
T = TypeVar("T")

# Files are created, written, deleted and renamed only inside a project.
FILE_DEPTH = 3


def check_depth(entry: Entry, depth: int = FILE_DEPTH) -> None:
    if len(entry.parts) < depth:
        raise refused(
            entry.api_path,
            "is managed by the platform: use a path inside a project folder, "
            "e.g. storage:folder/file",
        )


def regular_size(fd: int, entry: Entry) -> int:
    """The size of the open file; refuses folders and special files."""
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise StorageError(
            400, f"Is a directory: {entry.uri}; name a file inside it", "EISDIR"
        )
    if not stat.S_ISREG(st.st_mode):
        raise refused(entry.api_path, "is not a regular file")
    return st.st_size


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "DIRECTORY"
    if stat.S_ISREG(mode):
        return "FILE"
    if stat.S_ISLNK(mode):
        return "SYMLINK"
    return "UNKNOWN"


def status_json(path: str, st: os.stat_result, target: str | None) -> dict[str, Any]:
    return {
        "path": path,
        "length": st.st_size,
        "modificationTime": int(st.st_mtime),
        "permission": "manage",
        "type": _kind(st.st_mode),
        "target": target,
    }


def _lstat(entry: Entry, real: str) -> os.stat_result:
    if real == entry.root:
        return os.stat(real)
    with folder_of(entry, real) as fd:
        return os.stat(os.path.basename(real), dir_fd=fd, follow_symlinks=False)


def _link_target(name: str, fd: int, mode: int) -> str | None:
    if not stat.S_ISLNK(mode):
        return None
    try:
        return os.readlink(name, dir_fd=fd)
    except OSError:
        return None


def file_status(entry: Entry) -> dict[str, Any]:
    """GETFILESTATUS. A symlink to somewhere inside the storage is followed (its
    ``target`` is still reported); one that leads outside, or nowhere, is
    reported as SYMLINK."""
    target = None
    if entry.parts:
        with parent_of(entry) as fd:
            name = entry.parts[-1]
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            target = _link_target(name, fd, st.st_mode)
    else:
        st = os.stat(entry.root)
    if target is not None:
        real = os.path.realpath(entry.host)
        if inside(real, entry.root):
            with contextlib.suppress(OSError, StorageError):  # dangling: the link
                st = _lstat(entry, real)
    return status_json(entry.api_path, st, target)


def list_dir(entry: Entry) -> list[dict[str, Any]]:
    """LISTSTATUS of a folder (following the entry if it is an inner symlink)."""
    try:
        fd = open_dirs(entry.root, entry.parts)  # real folders all the way
    except OSError:
        fd = walk(entry.root, entry.follow())
    result = []
    try:
        with os.scandir(fd) as it:
            items = sorted(it, key=lambda item: item.name)
        for item in items:
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed while we listed
                continue
            target = _link_target(item.name, fd, st.st_mode)
            result.append(status_json(item.name, st, target))
    finally:
        os.close(fd)
    return result


def open_file(entry: Entry, flags: int, cache: FolderCache | None = None) -> int:
    """Open the (followed) entry as a file: ``O_NOFOLLOW``, relative to its folder."""
    with target_of(entry, cache) as (fd, name, _):
        return os.open(
            name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o666, dir_fd=fd
        )


@contextmanager
def new_version(
    entry: Entry, cache: FolderCache | None = None, *, direct_if_new: bool = False
) -> Iterator[tuple[int, Callable[[], None]]]:
    """CREATE: a temporary file beside the (followed) entry, and ``commit`` that
    renames it over the entry. Until then the old file is untouched; a
    temporary file not committed (client gone, disk full) is removed.

    ``direct_if_new``: when there is no old file, write the entry itself (made
    with ``O_EXCL``), sparing a temporary name and a rename. Not committed, it
    keeps what was written, as an interrupted upload leaves a prefix that
    ``continue_`` resumes (it is removed if nothing was)."""
    with target_of(entry, cache) as (folder, name, old):
        if old is not None and stat.S_ISDIR(old.st_mode):
            raise StorageError(
                400, f"Is a directory: {entry.uri}; name a file inside it", "EISDIR"
            )
        if old is not None and not stat.S_ISREG(old.st_mode):
            raise refused(entry.api_path, "is not a regular file")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd, temp = -1, name
        if direct_if_new and old is None:
            with contextlib.suppress(FileExistsError):  # made meanwhile: as below
                fd = os.open(name, flags, 0o666, dir_fd=folder)
        if fd < 0:
            temp = f"{UPLOAD_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(temp, flags, 0o666, dir_fd=folder)
        committed = False

        def commit() -> None:
            nonlocal committed
            if temp != name:
                os.rename(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
            committed = True

        try:
            if old is not None:
                os.fchmod(fd, stat.S_IMODE(old.st_mode))
            yield fd, commit
        finally:
            if not committed and temp == name and os.fstat(fd).st_size:
                committed = True  # a new file's prefix: kept
            os.close(fd)
            if not committed:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=folder)


def write_new(entry: Entry, data: list[bytes]) -> None:
    """CREATE with the whole body at hand: resolve, write and rename in one go
    (one thread hop for a small file)."""
    with new_version(entry) as (fd, commit):
        write_all(fd, data)
        commit()


def in_its_folder(entry: Entry, attempt: Callable[[], T]) -> T:
    """``attempt()``; when the entry's folder is missing (a 404), make it and the
    folders above it, as MKDIRS does, and attempt once more (the storage
    socket's CREATE and WRITE, and same-host copies, make their folders)."""
    try:
        return attempt()
    except StorageError as exc:
        if exc.status != 404:
            raise
    make_dirs(Entry(entry.root, entry.parts[:-1]))
    return attempt()


def open_to_write(entry: Entry, cache: FolderCache | None = None) -> int:
    """The entry (a file inside a project) opened for writing, made with its
    folders when missing; refused if it is not a regular file."""
    check_depth(entry)
    fd = in_its_folder(entry, lambda: open_file(entry, os.O_WRONLY | os.O_CREAT, cache))
    try:
        regular_size(fd, entry)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_range(
    entry: Entry, offset: int, size: int, cache: FolderCache | None = None
) -> bytes:
    """Up to ``size`` bytes of the (regular) file at ``offset``."""
    fd = open_file(entry, os.O_RDONLY, cache)
    try:
        regular_size(fd, entry)
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def _mode(entry: Entry, real: str) -> int | None:
    try:
        return _lstat(entry, real).st_mode
    except (OSError, StorageError):
        return None


def is_dir(entry: Entry) -> bool:
    try:
        mode = _mode(entry, entry.follow())
    except StorageError:
        return False
    return mode is not None and stat.S_ISDIR(mode)


def make_dirs(entry: Entry) -> None:
    """MKDIRS: the folder and its missing parents; EEXIST if it is a file."""
    real = entry.follow()
    try:
        os.close(walk(entry.root, real, create=True))
    except NotADirectoryError:
        mode = _mode(entry, real)
        if mode is not None and not stat.S_ISDIR(mode):
            raise FileExistsError(errno.EEXIST, "File exists") from None
        raise


def remove(entry: Entry, recursive: bool) -> list[tuple[str, bool]]:
    """DELETE the entry itself (a symlink, never its target).

    Returns ``(api_path, is_dir)`` of every removed entry, children first.
    """
    name = entry.parts[-1]
    removed: list[tuple[str, bool]] = []
    with parent_of(entry) as fd:
        mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        if not stat.S_ISDIR(mode):
            os.unlink(name, dir_fd=fd)
            return [(entry.api_path, False)]
        if not recursive:
            raise StorageError(
                400,
                f"Is a directory: {entry.uri}; pass recursive=True to delete it "
                "with everything inside",
                "EISDIR",
            )
        try:
            _remove_in(fd, name, entry.api_path, removed)
        except RecursionError:
            raise StorageError(
                400, f"{entry.uri} is nested too deeply to delete at once", None
            ) from None
    return removed


def _remove_in(
    parent_fd: int, name: str, api_path: str, removed: list[tuple[str, bool]]
) -> None:
    fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    try:
        with os.scandir(fd) as it:
            children = [(item.name, item.is_dir(follow_symlinks=False)) for item in it]
        for child, child_is_dir in children:
            child_path = f"{api_path}/{child}"
            if child_is_dir:
                _remove_in(fd, child, child_path, removed)
            else:
                os.unlink(child, dir_fd=fd)
                removed.append((child_path, False))
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)
    removed.append((api_path, True))


def rename(src: Entry, dst: Entry) -> None:
    """RENAME the entry itself (a symlink is moved, not its target). Both folders
    are checked before anything else."""
    src_name = src.parts[-1]
    with parent_of(src) as src_fd, parent_of(dst) as dst_fd:
        try:
            os.stat(src_name, dir_fd=src_fd, follow_symlinks=False)
        except OSError as exc:
            raise os_error(exc, src.api_path) from None
        try:
            os.rename(src_name, dst.parts[-1], src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise refused(dst.api_path, "became a symlink") from None
            name = errno.errorcode.get(exc.errno or 0, "EIO")
            raise StorageError(
                400, f"cannot move {src.uri} to {dst.uri}: {exc.strerror}", name
            ) from None


def disk_usage(root: str) -> dict[str, int]:
    vfs = os.statvfs(root)
    total = vfs.f_blocks * vfs.f_frsize
    return {
        "total": total,
        "used": total - vfs.f_bfree * vfs.f_frsize,
        "free": vfs.f_bavail * vfs.f_frsize,
    }
