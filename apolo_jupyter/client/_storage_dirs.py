"""Folders between the local disk and storage: ``upload_dir`` and ``download_dir``.

A folder's subfolders are walked concurrently and up to ``MAX_FILES`` files are
in flight at once, of which ``MAX_BIG`` of a MiB or more (each streamed with a
few MiB in flight, see ``_storage_transfer``; so memory stays bounded), and a
folder of many small files costs round trips in parallel, not in a row. Each
folder is listed once (storage) or scanned once (local disk, in a thread); no
file costs a request of its own before it is sent: a small file is one request
(CREATE up, OPEN down), and its one blocking call on the local disk shares a
thread hop with the other files' (``Hops``). The first error stops the
transfer: the other files in flight are cancelled, and the error is raised as
it is.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import Awaitable, Coroutine, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yarl import URL

from . import _storage_frames as frames
from ._errors import ResourceNotFound
from ._file_filter import (
    AsyncFilterFunc,
    FileFilter,
    _always_match,
    load_parent_ignore_files,
)
from ._hops import Hops
from ._storage_files import download_offset, fetch_file, send_file, upload_offset
from ._storage_local import LocalFiles, get_local, open_local, put_local
from ._storage_models import FileStatus, file_status_from_ls
from ._storage_progress import Reporter
from ._storage_socket import StorageSocket, open_socket
from ._storage_socket_files import fetch_new, send_new
from ._storage_transfer import CHUNK, local_path

if TYPE_CHECKING:
    from ._storage import Storage

MAX_FILES = 16  # files transferred at once by one folder transfer
MAX_BIG = 4  # of which files of CHUNK bytes or more


class Slots:
    """Room for one more file in flight, and for one more big one."""

    def __init__(self) -> None:
        self.files = asyncio.Semaphore(MAX_FILES)
        self.big = asyncio.Semaphore(MAX_BIG)

    async def take(self, size: int) -> None:
        await self.files.acquire()
        if size >= CHUNK:
            try:
                await self.big.acquire()
            except BaseException:
                self.files.release()
                raise

    def give_back(self, size: int) -> None:
        if size >= CHUNK:
            self.big.release()
        self.files.release()


@dataclass(frozen=True)
class LocalEntry:
    name: str
    kind: str  # "file", "dir" or "other"
    stat: os.stat_result | None


def scan(path: Path) -> list[LocalEntry]:
    """A local folder's entries (symlinks followed), read in one go."""
    out = []
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                out.append(LocalEntry(entry.name, "other", None))
                continue
            kind = (
                "dir"
                if stat.S_ISDIR(st.st_mode)
                else "file"
                if stat.S_ISREG(st.st_mode)
                else "other"
            )
            out.append(LocalEntry(entry.name, kind, st))
    return sorted(out, key=lambda e: e.name)


def _key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


async def run_all(coros: Iterable[Awaitable[Any]]) -> None:
    """Await all; on the first error cancel the rest and raise that error."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _FolderTransfer:
    """What a folder's upload and download share: the options, the progress
    reporter, and the slots and thread hops that its files' transfers share."""

    def __init__(
        self,
        storage: Storage,
        update: bool,
        continue_: bool,
        report: Reporter,
        sock: StorageSocket | None,
        local: LocalFiles | None,
    ) -> None:
        self.storage = storage
        self.update = update
        self.continue_ = continue_
        self.report = report
        self.sock = sock
        self.local = local
        self.slots = Slots()
        self.hops = Hops()

    async def _in_slot(self, size: int, transfer: Coroutine[Any, Any, None]) -> None:
        try:
            await self.slots.take(size)
        except BaseException:
            transfer.close()  # cancelled while it waited: it never ran
            raise
        try:
            await transfer
        finally:
            self.slots.give_back(size)

    async def _listed(self, uri: URL, rel: str) -> list[FileStatus]:
        """The storage folder's entries (``rel``: its path under the root)."""
        if self.sock is None:
            async with self.storage.ls(uri) as entries:
                return [entry async for entry in entries]
        header, _ = await self.sock.call(frames.LIST, rel.rstrip("/"))
        items = header["FileStatuses"]["FileStatus"]
        return [file_status_from_ls(uri, item) for item in items]


class _Upload(_FolderTransfer):
    def __init__(
        self,
        storage: Storage,
        update: bool,
        continue_: bool,
        ignore_file_names: AbstractSet[str],
        report: Reporter,
        sock: StorageSocket | None,
        local: LocalFiles | None,
    ) -> None:
        super().__init__(storage, update, continue_, report, sock, local)
        self.ignore_file_names = ignore_file_names

    async def _remote(self, dst: URL, rel: str) -> dict[str, FileStatus]:
        """Make sure ``dst`` is a folder. Its entries, when they are needed: to
        compare files (``update``, ``continue_``), or, over the socket, to know
        which files are new (see ``file``)."""
        if self.sock is not None:
            made = self.sock.submit(frames.MKDIRS, rel.rstrip("/"))
            try:
                await made
            except FileExistsError:
                raise _not_a_folder(dst) from None
            if self.local is not None and not (self.update or self.continue_):
                return {}  # every file goes the same way: no need to know them
            return {e.name: e for e in await self._listed(dst, rel)}
        if self.update or self.continue_:
            try:
                return {e.name: e for e in await self._listed(dst, rel)}
            except ResourceNotFound:
                pass
        try:
            await self.storage.mkdir(dst, parents=True, exist_ok=True)
        except FileExistsError:
            raise _not_a_folder(dst) from None
        return {}

    async def folder(
        self,
        path: Path,
        dst: URL,
        rel: str,
        filter: AsyncFilterFunc,
        above: frozenset[tuple[int, int]] = frozenset(),
    ) -> None:
        """``above``: the folders this one is in (device, inode), so a symlink
        back up is reported, not followed forever."""
        compare = self.update or self.continue_
        remote = await self._remote(dst, rel)
        src = URL(path.as_uri())
        self.report.enter(src, dst)
        entries = await asyncio.to_thread(scan, path)
        here = above | {await asyncio.to_thread(_key, path)}
        for entry in entries:
            if entry.name in self.ignore_file_names and entry.kind == "file":
                rules = FileFilter(filter)
                rules.read_from_file(path / entry.name, prefix=rel)
                filter = rules.match
        work: list[Awaitable[None]] = []
        for entry in entries:
            child = f"{rel}{entry.name}/" if entry.kind == "dir" else rel + entry.name
            if not await filter(child):
                continue
            if entry.kind == "dir":
                assert entry.stat is not None
                key = (entry.stat.st_dev, entry.stat.st_ino)
                if key in here:
                    self.report.fail(
                        URL((path / entry.name).as_uri()),
                        dst / entry.name,
                        f"Skipped {path / entry.name}: a link to a folder it is in",
                    )
                    continue
                work.append(
                    self.folder(
                        path / entry.name, dst / entry.name, child, filter, here | {key}
                    )
                )
            elif entry.kind == "file":
                assert entry.stat is not None
                target = dst / entry.name
                size = entry.stat.st_size
                there = remote.get(entry.name)
                offset: int | None = 0
                if there is not None and there.is_file() and compare:
                    offset = upload_offset(
                        entry.stat,
                        there,
                        self.storage._clock,
                        update=self.update,
                        continue_=self.continue_,
                    )
                if offset is not None:
                    file = path / entry.name
                    work.append(self.file(file, target, child, offset, size, there))
            else:
                self.report.fail(
                    URL((path / entry.name).as_uri()),
                    dst / entry.name,
                    f"Cannot upload {path / entry.name}: not a regular file or folder",
                )
        await run_all(work)
        self.report.leave(src, dst)

    def file(
        self,
        path: Path,
        dst: URL,
        rel: str,
        offset: int,
        size: int,
        there: FileStatus | None,
    ) -> Awaitable[None]:
        """One file's upload, by the cheapest way that keeps storage whole: a
        same-host copy (a new version, renamed over the old one once complete),
        else a new small file over the socket, else HTTP (whose CREATE also
        leaves the old file whole until the new one is)."""
        if offset == 0 and self.local is not None:
            move = put_local(self.local, path, dst, size, self.report)
        elif offset == 0 and there is None and self.sock is not None and size < CHUNK:
            move = send_new(self.sock, rel, path, dst, self.report, self.hops)
        else:
            move = send_file(self.storage, path, dst, offset, self.report, self.hops)
        return self._in_slot(size, move)


def _not_a_folder(dst: URL) -> NotADirectoryError:
    return NotADirectoryError(
        errno.ENOTDIR, "Not a directory (a file has that name)", str(dst)
    )


async def upload_dir(
    storage: Storage,
    src: URL | Path | str,
    dst: URL,
    *,
    update: bool,
    continue_: bool,
    filter: AsyncFilterFunc | None,
    ignore_file_names: AbstractSet[str],
    progress: Any,
) -> None:
    path = local_path(src).resolve()
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
    if not path.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, "Not a directory (upload a file with upload_file)", str(path)
        )
    dst = storage._normalize(dst)
    parent = dst.parent
    if parent.path.strip("/") and await storage._exists(parent) is None:
        raise FileNotFoundError(
            errno.ENOENT,
            "No such directory (create it with mkdir(..., parents=True))",
            str(parent),
        )
    chosen = filter or _always_match
    if ignore_file_names:
        chosen = load_parent_ignore_files(chosen, ignore_file_names, path)
    report = Reporter(progress)
    async with (
        open_socket(storage, dst) as sock,
        open_local(storage, sock) as local,
    ):
        job = _Upload(
            storage, update, continue_, ignore_file_names, report, sock, local
        )
        await job.folder(path, dst, "", chosen)


class _Download(_FolderTransfer):
    async def folder(
        self, src: URL, path: Path, rel: str, filter: AsyncFilterFunc
    ) -> None:
        await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
        dst = URL(path.as_uri())
        self.report.enter(src, dst)
        local: dict[str, LocalEntry] = {}
        if self.update or self.continue_:
            local = {e.name: e for e in await asyncio.to_thread(scan, path)}
        listed = await self._listed(src, rel)
        work: list[Awaitable[None]] = []
        for entry in listed:
            child = f"{rel}{entry.name}/" if entry.is_dir() else rel + entry.name
            if not await filter(child):
                continue
            if entry.is_dir():
                work.append(
                    self.folder(src / entry.name, path / entry.name, child, filter)
                )
            elif entry.is_file():
                offset: int | None = 0
                mine = local.get(entry.name)
                if mine is not None and mine.kind == "file" and mine.stat is not None:
                    offset = download_offset(
                        mine.stat,
                        entry,
                        self.storage._clock,
                        update=self.update,
                        continue_=self.continue_,
                    )
                if offset is not None:
                    work.append(self.file(entry, path / entry.name, child, offset))
            else:
                self.report.fail(
                    src / entry.name,
                    URL((path / entry.name).as_uri()),
                    f"Cannot download {src / entry.name}: not a regular file or folder",
                )
        await run_all(work)
        self.report.leave(src, dst)

    def file(
        self, entry: FileStatus, path: Path, rel: str, offset: int
    ) -> Awaitable[None]:
        """One file's download: a same-host copy, else a small file over the
        socket, else HTTP."""
        src, size, report, hops = entry.uri, entry.size, self.report, self.hops
        if offset == 0 and self.local is not None:
            move = get_local(self.local, src, path, size, report)
        elif offset == 0 and self.sock is not None and size < CHUNK:
            move = fetch_new(self.sock, rel, src, path, size, report, hops)
        else:
            move = fetch_file(self.storage, src, path, size, offset, report, hops)
        return self._in_slot(size, move)


async def download_dir(
    storage: Storage,
    src: URL,
    dst: URL | Path | str,
    *,
    update: bool,
    continue_: bool,
    filter: AsyncFilterFunc | None,
    progress: Any,
) -> None:
    src = storage._normalize(src)
    status = await storage.stat(src)
    if not status.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR,
            "Not a directory (download a file with download_file)",
            str(src),
        )
    path = local_path(dst).absolute()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path))
    async with (
        open_socket(storage, src) as sock,
        open_local(storage, sock) as local,
    ):
        job = _Download(storage, update, continue_, Reporter(progress), sock, local)
        await job.folder(src, path, "", filter or _always_match)
