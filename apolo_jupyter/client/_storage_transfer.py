"""Moving bytes between a local file and storage requests, without stalling.

Disk reads and writes run in a thread while the network side keeps going: an
upload keeps a few WRITE requests in flight (each names its offset, so their
order does not matter); a download writes one MiB to disk while the next arrives.

An upload that stops half way (a dropped connection, Ctrl-C, a killed process)
leaves a storage file whose first ``size - UPLOAD_WINDOW`` MiB are surely written:
WRITEs are awaited oldest first, and the last chunk goes only once all before it
are in, so a file of the full size is a complete one (``resume_offset``). A file
of at most one MiB was written by its CREATE alone, as one stream, so all of it
is surely there.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import aiohttp
from yarl import URL

from ._url_utils import normalize_local_path_uri

CHUNK = 1 << 20
# WRITE requests in flight during an upload (each carries one CHUNK).
UPLOAD_WINDOW = 4

OnBytes = Callable[[int], None]
IOV_MAX = 1024


async def next_piece(content: aiohttp.StreamReader) -> bytes:
    """A response body's next piece as it came in, b"" at its end (``iter_any``
    would join all that is buffered: one more copy of every byte). A response
    that has no body at all (a 204) gets aiohttp's one shared empty reader, whose
    ``readchunk`` says "end of an HTTP chunk", not "end", once anyone has read
    it: so ``at_eof`` is asked first."""
    while not content.at_eof():
        data, end_of_http_chunk = await content.readchunk()
        if data or not end_of_http_chunk:
            return data
    return b""


def local_path(path: URL | Path | str) -> Path:
    """A local path given as ``file:`` URI, ``Path`` or text."""
    if isinstance(path, URL):
        return Path(normalize_local_path_uri(path).path)
    return Path(path)


def resume_offset(remote_size: int) -> int:
    """Where to continue an interrupted upload whose storage file has
    ``remote_size`` bytes: at its end if only the CREATE wrote it (the first
    CHUNK, one stream: no holes), else before the WRITEs that may not have
    landed (a WRITE is sent only once the CREATE is in)."""
    if remote_size <= CHUNK:
        return remote_size
    return max(CHUNK, (remote_size // CHUNK - UPLOAD_WINDOW) * CHUNK)


def _nothing(count: int) -> None:
    pass


async def upload_stream(
    stream: BinaryIO,
    create: Callable[[bytes], Awaitable[None]],
    write: Callable[[bytes, int], Awaitable[None]],
    *,
    offset: int = 0,
    on_bytes: OnBytes = _nothing,
) -> None:
    """From ``offset`` 0: ``create`` with the first chunk (empty for an empty
    file), then ``write`` every further chunk at its offset, ``UPLOAD_WINDOW`` at
    a time. From another ``offset``: only ``write``s, from there on."""
    if offset == 0:
        chunk = await asyncio.to_thread(stream.read, CHUNK)
        await create(chunk)
        on_bytes(len(chunk))
        offset = len(chunk)
        if len(chunk) < CHUNK:
            return
    else:
        await asyncio.to_thread(stream.seek, offset)
    writing: deque[asyncio.Task[None]] = deque()

    async def one(data: bytes, at: int) -> None:
        await write(data, at)
        on_bytes(len(data))

    try:
        chunk = await asyncio.to_thread(stream.read, CHUNK)
        while chunk:
            following = await asyncio.to_thread(stream.read, CHUNK)
            # the oldest first; and the last chunk only after all the others
            while writing and (len(writing) >= UPLOAD_WINDOW or not following):
                await writing.popleft()
            writing.append(asyncio.create_task(one(chunk, offset)))
            offset += len(chunk)
            chunk = following
        while writing:
            await writing.popleft()
    finally:
        for task in writing:
            task.cancel()
        await asyncio.gather(*writing, return_exceptions=True)


def write_blocks(fd: int, blocks: Sequence[bytes | memoryview]) -> None:
    """All of ``blocks`` at the file position, with as few calls as it takes."""
    views = [memoryview(block) for block in blocks if block]
    while views:
        done = os.writev(fd, views[:IOV_MAX])
        while views and done >= len(views[0]):
            done -= len(views[0])
            views.pop(0)
        if done:
            views[0] = views[0][done:]


def _write_all(stream: BinaryIO, blocks: list[bytes]) -> None:
    stream.flush()  # nothing, for the unbuffered files fetch_file opens
    write_blocks(stream.fileno(), blocks)


async def download_stream(
    chunks: AsyncIterator[bytes], stream: BinaryIO, on_bytes: OnBytes = _nothing
) -> None:
    """Write ``chunks`` to ``stream``; one MiB goes to disk while the next arrives.
    ``on_bytes`` counts what reached the file.

    Whatever arrived is in the file when this returns or raises, so a caller can
    go on from ``stream.tell()`` after a dropped connection.
    """
    pending: list[bytes] = []
    size = 0
    writing: asyncio.Future[None] | None = None
    written = 0
    try:
        async for data in chunks:
            pending.append(data)
            size += len(data)
            if size >= CHUNK:
                if writing is not None:
                    await writing
                    on_bytes(written)
                writing = asyncio.ensure_future(
                    asyncio.to_thread(_write_all, stream, pending)
                )
                pending, written, size = [], size, 0
    finally:
        if writing is not None:
            await writing
            on_bytes(written)
        if pending:
            await asyncio.to_thread(_write_all, stream, pending)
            on_bytes(size)
