"""Storage paths on disk: checking them, and reaching them without escaping.

A request path ``/{org}/{project}/{path}`` names ``<storage_dir>/{org}/{project}/
{path}``. Every path is checked *before* anything is touched: ``.``/``..`` parts are
refused; the parent folder is resolved (symlinks followed) and must stay inside the
storage root; operations that follow the last part (open, create, list, mkdir)
resolve it too, while stat, delete and rename act on the entry itself.

Checked paths are then reached by file descriptors: from the root, one component
at a time with ``O_NOFOLLOW``, and the last part relative to its folder. A symlink
swapped in by a running job after the check makes the call fail; it is never
followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._settings import CLUSTER

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class StorageError(Exception):
    """An error response: HTTP status, message and (for OSError) errno name."""

    def __init__(self, status: int, message: str, errno_name: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errno_name = errno_name

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.errno_name:
            body["errno"] = self.errno_name
        return body


def api_uri(api_path: str) -> str:
    return f"storage://{CLUSTER}{api_path}"


def refused(api_path: str, why: str) -> StorageError:
    return StorageError(400, f"Permission denied: {api_uri(api_path)} {why}", "EACCES")


def os_error(exc: OSError, api_path: str) -> StorageError:
    """An OSError as the SDK reads it: 404 for ENOENT, else 400 with errno."""
    if exc.errno == errno.ELOOP:
        return refused(api_path, "became a symlink while it was used")
    name = errno.errorcode.get(exc.errno or 0, "EIO")
    reason = exc.strerror or str(exc)
    status = 404 if exc.errno == errno.ENOENT else 400
    return StorageError(status, f"{reason}: {api_uri(api_path)}", name)


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


@dataclass(frozen=True)
class Entry:
    """A checked storage path: its parts and its host path (last part unfollowed)."""

    root: str
    parts: tuple[str, ...]
    host: str

    @property
    def api_path(self) -> str:
        return "/" + "/".join(self.parts)

    @property
    def uri(self) -> str:
        return api_uri(self.api_path)

    @property
    def parent_uri(self) -> str:
        return self.uri.rsplit("/", 1)[0]

    def follow(self) -> str:
        """The resolved host path; refused if a symlink leads out of the root."""
        real = os.path.realpath(self.host)
        if not inside(real, self.root):
            raise refused(self.api_path, "is a symlink that leads outside the storage")
        return real


def locate(root: str, raw: str) -> Entry:
    """Check a request path; ``root`` must already be resolved."""
    if "\x00" in raw:
        raise StorageError(
            400, "storage paths cannot contain NUL characters: rename the path", None
        )
    parts = tuple(part for part in raw.split("/") if part)
    shown = "/" + "/".join(parts)
    if any(part in (".", "..") for part in parts):
        raise refused(shown, "has '.' or '..' parts, which are not allowed")
    if not parts:
        return Entry(root, (), root)
    try:
        parent = os.path.realpath(os.path.join(root, *parts[:-1]))
    except (OSError, ValueError) as exc:
        message = f"invalid storage path {api_uri(shown)}: {exc}"
        raise StorageError(400, message, None) from None
    if not inside(parent, root):
        raise refused(shown, "goes through a symlink that leads outside the storage")
    return Entry(root, parts, os.path.join(parent, parts[-1]))


def walk(root: str, real_dir: str, *, create: bool = False) -> int:
    """An open fd of ``real_dir`` (a resolved folder inside ``root``), reached
    from the root one component at a time without following symlinks.

    ``create`` makes missing folders on the way (as ``mkdir -p``).
    """
    if not inside(real_dir, root):
        raise PermissionError(errno.EACCES, "outside the storage root")
    rel = os.path.relpath(real_dir, root)
    parts = [] if rel == "." else rel.split(os.sep)
    fd = os.open(root, DIR_FLAGS)
    try:
        for part in parts:
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made meanwhile
                    os.mkdir(part, 0o777, dir_fd=fd)
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def folder_of(entry: Entry, real: str) -> Iterator[int]:
    """The fd of the folder holding ``real`` (``entry``'s host path, followed or
    not); a missing folder is a 404 that names it."""
    try:
        fd = walk(entry.root, os.path.dirname(real))
    except FileNotFoundError:
        raise StorageError(
            404,
            f"No such directory: {entry.parent_uri} (create it first, e.g. with "
            "mkdir(..., parents=True))",
            "ENOENT",
        ) from None
    try:
        yield fd
    finally:
        os.close(fd)


def storage_root(storage_dir: Path, project_dirs: tuple[str, ...]) -> str:
    """The resolved root, with the project folder created (it must stat as a dir)."""
    project = storage_dir.joinpath(*project_dirs)
    project.mkdir(parents=True, exist_ok=True)
    return os.path.realpath(storage_dir)
