"""One file between the local disk and storage: ``update``, ``continue_``, progress.

``update`` skips a file whose destination is surely newer; ``continue_`` resumes
a destination that is surely newer and shorter (an interrupted transfer) and skips
one of the same size. "Surely newer" allows for the two clocks, as ``apolo_sdk``
does: the storage server's clock is bracketed from the ``Date`` of its answers,
and its modification times are whole seconds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from multidict import CIMultiDictProxy
from yarl import URL

from ._errors import ConnectionDropped
from ._hops import Hops
from ._storage_models import FileStatus
from ._storage_progress import Reporter
from ._storage_transfer import (
    CHUNK,
    OnBytes,
    download_stream,
    resume_offset,
    upload_stream,
    write_blocks,
)

if TYPE_CHECKING:
    from ._storage import Storage

TIME_THRESHOLD = 1.0


class ServerClock:
    """Bounds of (our clock - the storage server's clock), in seconds."""

    def __init__(self) -> None:
        self.min_diff = 0.0
        self.max_diff = 0.0

    def observe(self, sent: float, headers: CIMultiDictProxy[str]) -> None:
        """Learn from an answer to a request sent at ``sent`` (``time.time()``)."""
        received = time.time()
        try:
            server = parsedate_to_datetime(headers.get("Date", "")).timestamp()
        except (TypeError, ValueError):
            return
        self._bracket(sent, received, server)

    def observe_stamp(self, sent: float, stamp: int) -> None:
        """Learn from a storage socket's answer: its ``timestamp`` (seconds)."""
        self._bracket(sent, time.time(), float(stamp))

    def _bracket(self, sent: float, received: float, server: float) -> None:
        # the server's time is truncated to the second
        self.min_diff = sent - server - 1.0
        self.max_diff = received - server


def _over_newer(
    src_size: int,
    dst_size: int,
    resume_at: int,
    *,
    update: bool,
    continue_: bool,
) -> int | None:
    """Where to start over a destination that is surely newer, either way:
    ``update`` skips it, ``continue_`` skips a copy of the same size and resumes
    a shorter one at ``resume_at``; otherwise all of it goes again."""
    if update:
        return None
    if continue_:
        if src_size == dst_size:
            return None
        if src_size > dst_size:
            return resume_at
    return 0


def upload_offset(
    local: os.stat_result,
    remote: FileStatus,
    clock: ServerClock,
    *,
    update: bool,
    continue_: bool,
) -> int | None:
    """Where to start sending ``local`` over ``remote``; None: nothing to send."""
    if local.st_mtime - remote.modification_time > clock.min_diff - TIME_THRESHOLD:
        return 0  # the local file may be newer: all of it
    return _over_newer(
        local.st_size,
        remote.size,
        resume_offset(remote.size),
        update=update,
        continue_=continue_,
    )


def download_offset(
    local: os.stat_result,
    remote: FileStatus,
    clock: ServerClock,
    *,
    update: bool,
    continue_: bool,
) -> int | None:
    """Where to start fetching ``remote`` into ``local``; None: nothing to fetch."""
    # + 1: storage modification times are truncated to the second
    if local.st_mtime - remote.modification_time < (
        clock.max_diff + TIME_THRESHOLD + 1.0
    ):
        return 0  # the storage file may be newer: all of it
    return _over_newer(
        remote.size,
        local.st_size,
        local.st_size,
        update=update,
        continue_=continue_,
    )


def open_for_upload(path: Path) -> tuple[BinaryIO, int, bytes | None]:
    """The open file, its size, and its bytes if it fits one request (a small
    file then costs one thread hop, not three)."""
    stream = path.open("rb")
    try:
        size = os.fstat(stream.fileno()).st_size
        if size >= CHUNK:
            return stream, size, None
        data = stream.read()
    except BaseException:
        stream.close()
        raise
    stream.close()
    return stream, size, data


async def send_file(
    storage: Storage,
    path: Path,
    dst: URL,
    offset: int,
    report: Reporter,
    hops: Hops | None = None,
) -> None:
    """Upload ``path`` to the (normalized) ``dst`` from ``offset``. ``hops``
    (a folder transfer's) opens and reads it with other files' calls."""
    src = URL(path.as_uri()) if report.active else dst
    if hops is not None:
        stream, size, data = await hops.run(open_for_upload, path)
    else:
        stream, size, data = await asyncio.to_thread(open_for_upload, path)
    report.start(src, dst, size)
    if data is not None:  # all of it in one CREATE, or what `continue_` lacks
        if offset:
            await storage.write(dst, data[offset:], offset)
        else:
            await storage.create(dst, data)
        if data:  # an empty file has no step, as in apolo_sdk
            report.step(src, dst, len(data), size)
        report.complete(src, dst, size)
        return
    try:
        await upload_stream(
            stream,
            lambda chunk: storage.create(dst, chunk),
            lambda chunk, at: storage.write(dst, chunk, at),
            offset=offset,
            on_bytes=report.counter(src, dst, offset, size),
        )
        report.complete(src, dst, size)
    finally:
        await asyncio.to_thread(stream.close)


def _open_unbuffered(path: Path, keep: bool) -> BinaryIO:
    """For ``download_stream``, which writes to its fd: no buffer in the way."""
    return path.open("r+b", buffering=0) if keep else path.open("wb", buffering=0)


def write_whole(path: Path, blocks: Sequence[bytes | memoryview]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        write_blocks(fd, blocks)
    finally:
        os.close(fd)


async def fetch_file(
    storage: Storage,
    src: URL,
    path: Path,
    size: int,
    offset: int,
    report: Reporter,
    hops: Hops | None = None,
) -> None:
    """Download the (normalized) ``src`` of ``size`` bytes into ``path``, keeping
    the first ``offset`` bytes already there. ``hops`` (a folder transfer's)
    writes a small file with other files' calls."""
    dst = src
    if report.active:
        dst = URL((await asyncio.to_thread(path.absolute)).as_uri())
    report.start(src, dst, size)
    if not offset and size < CHUNK:  # one request, then one thread hop to disk
        try:
            blocks = await storage._read_whole(src) if size else []
        except ConnectionDropped:
            pass  # the file is written as a stream below, which resumes
        else:
            if hops is not None:
                await hops.run(write_whole, path, blocks)
            else:
                await asyncio.to_thread(write_whole, path, blocks)
            if size:
                report.step(src, dst, sum(map(len, blocks)), size)
            report.complete(src, dst, size)
            return
    stream = await asyncio.to_thread(_open_unbuffered, path, bool(offset))
    try:
        got = report.counter(src, dst, offset, size)
        if offset:
            await asyncio.to_thread(stream.seek, offset)
            await asyncio.to_thread(stream.truncate)
        if offset < size:
            await _fetch_resuming(storage, src, stream, offset, size, got)
        report.complete(src, dst, size)
    finally:
        await asyncio.to_thread(stream.close)


# A download goes on after this many dropped connections in a row with no byte.
RESUME_ATTEMPTS = 10


async def _fetch_resuming(
    storage: Storage, src: URL, stream: BinaryIO, offset: int, size: int, got: OnBytes
) -> None:
    """Download ``src`` into ``stream`` (positioned at ``offset``) up to ``size``
    bytes. When the connection drops, ask again from the byte where it stopped,
    as ``apolo_sdk`` does; give up after RESUME_ATTEMPTS drops in a row that
    brought no byte. Where it stopped is counted, not asked of the file: the
    position of /dev/null stays 0, and a pipe has none."""
    at = offset

    def count(more: int) -> None:
        nonlocal at
        at += more
        got(more)

    failures = 0
    while True:
        start = at
        try:
            async with storage.open(src, start) as chunks:
                await download_stream(chunks, stream, count)
            return
        except ConnectionDropped:
            if at >= size:
                return  # every byte had arrived before the drop
            failures = 0 if at > start else failures + 1
            if failures >= RESUME_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * failures)
