"""Storage paths on disk: checking them, and reaching them without escaping.

A request path ``/{org}/{project}/{path}`` names ``<storage_dir>/{org}/{project}/
{path}``. ``.``/``..`` parts are refused before anything is touched. The folder
holding the entry is then reached by file descriptors, from the root one
component at a time with ``O_NOFOLLOW`` (``parent_of``): a path of real folders,
the usual case, costs one ``openat`` per part and nothing else, and cannot leave
the root since no symlink is followed on the way.

Only when that walk meets a symlink (or anything unusual) is the path resolved
the slow way: the parent folder is resolved (symlinks followed) and must stay
inside the storage root, then the resolved folder is walked to as above.
Operations that follow the last part (open, create, list) follow it only when it
is a symlink that stays inside the root; stat, delete and rename act on the
entry itself. A symlink swapped in by a running job after the check makes the
call fail; it is never followed out.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections import OrderedDict
from collections.abc import Iterator, Sequence
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


def error_fields(exc: Exception, api_path: str) -> dict[str, Any]:
    """An error as the storage sockets answer it: ``error``, and ``errno`` for
    an OSError (a StorageError, an OSError on ``api_path``); any other error is
    a request's fault, its message alone."""
    if isinstance(exc, StorageError):
        return exc.to_api()
    if isinstance(exc, OSError):
        return os_error(exc, api_path).to_api()
    return {"error": str(exc)}


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


@dataclass(frozen=True)
class Entry:
    """A checked storage path: the resolved root and the parts under it (nothing
    resolved yet)."""

    root: str
    parts: tuple[str, ...]

    @property
    def host(self) -> str:
        """The host path as written (symlinks not resolved)."""
        return os.path.join(self.root, *self.parts)

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
    """Check a request path (``root`` must already be resolved); nothing on disk
    is touched: the parts are resolved when they are used (``parent_of``)."""
    if "\x00" in raw:
        raise StorageError(
            400, "storage paths cannot contain NUL characters: rename the path", None
        )
    parts = tuple(part for part in raw.split("/") if part)
    if any(part in (".", "..") for part in parts):
        shown = "/" + "/".join(parts)
        raise refused(shown, "has '.' or '..' parts, which are not allowed")
    return Entry(root, parts)


def open_dirs(root: str, parts: Sequence[str], *, create: bool = False) -> int:
    """An open fd of ``root/parts``, every part opened relative to the one before
    with ``O_NOFOLLOW``: an OSError on a symlink, a file or a missing part, so
    what it opens is a real folder inside the root.

    ``create`` makes missing folders on the way (as ``mkdir -p``).
    """
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


def walk(root: str, real_dir: str, *, create: bool = False) -> int:
    """An open fd of ``real_dir`` (a resolved folder inside ``root``), reached
    from the root one component at a time without following symlinks
    (``open_dirs``, which ``create`` passes to)."""
    if not inside(real_dir, root):
        raise PermissionError(errno.EACCES, "outside the storage root")
    rel = os.path.relpath(real_dir, root)
    parts = [] if rel == "." else rel.split(os.sep)
    return open_dirs(root, parts, create=create)


@contextmanager
def folder_of(entry: Entry, real: str) -> Iterator[int]:
    """The fd of the folder holding ``real`` (a resolved path inside the root);
    a missing folder is a 404 that names it."""
    fd = _walk_to_folder(entry, os.path.dirname(real))
    try:
        yield fd
    finally:
        os.close(fd)


def _walk_to_folder(entry: Entry, real_dir: str) -> int:
    try:
        return walk(entry.root, real_dir)
    except FileNotFoundError:
        raise StorageError(
            404,
            f"No such directory: {entry.parent_uri} (create it first, e.g. with "
            "mkdir(..., parents=True))",
            "ENOENT",
        ) from None


def _resolved_parent(entry: Entry) -> str:
    """The parent folder with its symlinks followed; refused outside the root."""
    try:
        parent = os.path.realpath(os.path.join(entry.root, *entry.parts[:-1]))
    except (OSError, ValueError) as exc:
        message = f"invalid storage path {entry.uri}: {exc}"
        raise StorageError(400, message, None) from None
    if not inside(parent, entry.root):
        raise refused(
            entry.api_path, "goes through a symlink that leads outside the storage"
        )
    return parent


class FolderCache:
    """Folder fds a storage socket keeps between its requests, so that a
    folder's many files cost one walk to it, not one each. Only folders reached
    the fast way (real folders all the way, no symlink) are kept; the fds are
    closed when the socket ends (``close``). An fd stays on its folder if the
    folder is moved meanwhile, as any open folder does."""

    SIZE = 64

    def __init__(self) -> None:
        self._fds: OrderedDict[tuple[str, ...], int] = OrderedDict()

    def get(self, root: str, parts: tuple[str, ...]) -> int:
        """The folder's fd (owned by the cache); OSError as ``open_dirs``."""
        fd = self._fds.get(parts)
        if fd is not None:
            self._fds.move_to_end(parts)
            return fd
        fd = open_dirs(root, parts)
        self._fds[parts] = fd
        if len(self._fds) > self.SIZE:
            os.close(self._fds.popitem(last=False)[1])
        return fd

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])


@contextmanager
def parent_of(entry: Entry, cache: FolderCache | None = None) -> Iterator[int]:
    """The fd of the folder holding the entry itself (its last part is not
    followed). Real folders all the way: one walk (or none, when ``cache`` has
    it). Otherwise (a symlink on the way, a missing folder, a file) the slow
    path says what is wrong or follows the symlinks that stay inside the root."""
    assert entry.parts, "the storage root has no parent"
    cached = None
    if cache is not None:
        with contextlib.suppress(OSError):  # not a plain walk: the slow path
            cached = cache.get(entry.root, entry.parts[:-1])
    if cached is not None:
        yield cached
        return
    try:
        fd = open_dirs(entry.root, entry.parts[:-1])
    except OSError:
        fd = _walk_to_folder(entry, _resolved_parent(entry))
    try:
        yield fd
    finally:
        os.close(fd)


def _lstat_at(name: str, fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


@contextmanager
def target_of(
    entry: Entry, cache: FolderCache | None = None
) -> Iterator[tuple[int, str, os.stat_result | None]]:
    """What the entry names, for operations that follow it (open, create): the
    fd of the folder holding it, its name there and its ``lstat`` (None when it
    does not exist). An entry that is a symlink is followed if it stays inside
    the root, refused otherwise."""
    if not entry.parts:
        raise IsADirectoryError(errno.EISDIR, "Is a directory")
    name = entry.parts[-1]
    with parent_of(entry, cache) as fd:
        st = _lstat_at(name, fd)
        if st is None or not stat.S_ISLNK(st.st_mode):
            yield fd, name, st
            return
    real = entry.follow()
    if real == entry.root:
        raise IsADirectoryError(errno.EISDIR, "Is a directory")
    name = os.path.basename(real)
    with folder_of(entry, real) as fd:
        yield fd, name, _lstat_at(name, fd)


def storage_root(storage_dir: Path, project_dirs: tuple[str, ...]) -> str:
    """The resolved root, with the project folder created (it must stat as a dir)."""
    project = storage_dir.joinpath(*project_dirs)
    project.mkdir(parents=True, exist_ok=True)
    return os.path.realpath(storage_dir)
