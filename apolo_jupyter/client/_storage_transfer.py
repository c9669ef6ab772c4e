"""Moving bytes between a local file and storage requests, without stalling.

Disk reads and writes run in a thread while the network side keeps going: an
upload keeps a few WRITE requests in flight (each names its offset, so their
order does not matter); a download writes one MiB to disk while the next arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from yarl import URL

from ._url_utils import normalize_local_path_uri

CHUNK = 1 << 20
# WRITE requests in flight during an upload (each carries one CHUNK).
UPLOAD_WINDOW = 4
# A download goes on after this many dropped connections in a row with no byte.
RESUME_ATTEMPTS = 10


def local_path(path: URL | Path | str) -> Path:
    """A local path given as ``file:`` URI, ``Path`` or text."""
    if isinstance(path, URL):
        return Path(normalize_local_path_uri(path).path)
    return Path(path)


async def upload_stream(
    stream: BinaryIO,
    create: Callable[[bytes], Awaitable[None]],
    write: Callable[[bytes, int], Awaitable[None]],
    *,
    start: int = 0,
) -> None:
    """``create`` with the first chunk (empty for an empty file), then ``write``
    every further chunk at its offset, ``UPLOAD_WINDOW`` at a time. ``start`` is
    the stream's offset in the file (a resumed upload)."""
    chunk = await asyncio.to_thread(stream.read, CHUNK)
    await create(chunk)
    offset = start + len(chunk)
    writing: set[asyncio.Task[None]] = set()

    async def one(data: bytes, at: int) -> None:
        await write(data, at)

    try:
        while chunk := await asyncio.to_thread(stream.read, CHUNK):
            if len(writing) >= UPLOAD_WINDOW:
                done, writing = await asyncio.wait(
                    writing, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()
            writing.add(asyncio.create_task(one(chunk, offset)))
            offset += len(chunk)
        while writing:
            await writing.pop()
    finally:
        for task in writing:
            task.cancel()
        await asyncio.gather(*writing, return_exceptions=True)


def _write_all(stream: BinaryIO, blocks: list[bytes]) -> None:
    stream.writelines(blocks)


async def download_stream(chunks: AsyncIterator[bytes], stream: BinaryIO) -> None:
    """Write ``chunks`` to ``stream``; one MiB goes to disk while the next arrives.

    Whatever arrived is on disk when this returns or raises, so a caller can go on
    from ``stream.tell()`` after a dropped connection.
    """
    pending: list[bytes] = []
    size = 0
    writing: asyncio.Future[None] | None = None
    try:
        async for data in chunks:
            pending.append(data)
            size += len(data)
            if size >= CHUNK:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(
                    asyncio.to_thread(_write_all, stream, pending)
                )
                pending, size = [], 0
    finally:
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)
        if pending:
            await asyncio.to_thread(_write_all, stream, pending)


async def download_resuming(
    open_at: Callable[[int], AsyncIterator[bytes]],
    stream: BinaryIO,
    size: int,
    *,
    attempts: int = RESUME_ATTEMPTS,
    dropped: type[Exception],
) -> None:
    """Download ``size`` bytes into ``stream`` from its position; when the
    connection drops (``dropped``), ask again from the byte where it stopped.
    Gives up after ``attempts`` drops in a row without progress."""
    failures = 0
    while True:
        start = stream.tell()
        try:
            await download_stream(open_at(start), stream)
            return
        except dropped:
            if stream.tell() >= size:
                return  # every byte had arrived before the drop
            failures = 0 if stream.tell() > start else failures + 1
            if failures >= attempts:
                raise
            await asyncio.sleep(0.1 * failures)
