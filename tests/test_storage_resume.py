"""download_file goes on from the byte where a dropped connection stopped."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from pathlib import Path

import pytest
from yarl import URL

from apolo_jupyter import get

from .conftest import Platform

SIZE = 5 * 2**20
CUT = 700_000  # bytes of the first OPEN response that get through


class CuttingProxy:
    """A TCP relay to the platform that drops the first file download midway."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.opens: list[bytes] = []
        self.cut = False

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        head = await reader.readuntil(b"\r\n\r\n")
        is_open = b"op=OPEN" in head.split(b"\r\n", 1)[0]
        if is_open:
            self.opens.append(head)
        limit = CUT if is_open and not self.cut else None
        self.cut = self.cut or limit is not None
        # One request per connection, so that each one is seen here.
        up_writer.write(head[:-2] + b"Connection: close\r\n\r\n")

        async def pump(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, cap: int | None
        ) -> None:
            sent = 0
            try:
                while data := await src.read(65536):
                    if cap is not None and sent + len(data) > cap:
                        dst.write(data[: cap - sent])
                        await dst.drain()
                        dst.transport.abort()
                        return
                    sent += len(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                if not dst.is_closing():
                    dst.close()

        await asyncio.gather(
            pump(reader, up_writer, None), pump(up_reader, writer, limit)
        )


async def test_download_resumes_after_a_dropped_connection(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # over HTTP: a same-host copy has no connection of this kind to drop
    monkeypatch.setenv("APOLO_JUPYTER_STORAGE_TRANSPORT", "http")
    target = URL(platform.url).port
    assert target is not None
    proxy = CuttingProxy(target)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    data = os.urandom(SIZE)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    remote = URL(f"storage:resume-{uuid.uuid4().hex[:8]}.bin")
    try:
        async with get(f"http://127.0.0.1:{port}/api/v1", platform.token,
                       quiet=True) as client:  # fmt: skip
            await client.storage.upload_file(src, remote)
            await client.storage.download_file(remote, tmp_path / "back.bin")
    finally:
        server.close()
    back = (tmp_path / "back.bin").read_bytes()
    assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
    assert proxy.cut and len(proxy.opens) == 2
    assert b"Range: bytes=" in proxy.opens[1]  # the second asked from where it stopped
    assert b"Range" not in proxy.opens[0]


async def test_download_into_dev_null_or_a_pipe_resumes_where_it_stopped(
    platform: Platform, tmp_path: Path
) -> None:
    # The position of /dev/null stays 0 and a pipe has none, so the byte to go on
    # from must be counted, not asked of the file: asking restarted /dev/null from
    # 0 (fetching the start again) and failed on a pipe before the first byte.
    data = os.urandom(SIZE)
    remote = URL(f"storage:resume-{uuid.uuid4().hex[:8]}.bin")
    async with get(platform.url, platform.token, quiet=True) as client:
        await client.storage.create(remote, data)

    async def through_a_cut(dst: Path) -> CuttingProxy:
        target = URL(platform.url).port
        assert target is not None
        proxy = CuttingProxy(target)
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with get(f"http://127.0.0.1:{port}/api/v1", platform.token,
                           quiet=True) as client:  # fmt: skip
                await client.storage.download_file(remote, dst)
        finally:
            server.close()
        assert proxy.cut and len(proxy.opens) == 2
        return proxy

    proxy = await through_a_cut(Path(os.devnull))
    assert b"Range: bytes=" in proxy.opens[1]

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def drain() -> bytes:
        with fifo.open("rb") as pipe:
            return pipe.read()

    reader = asyncio.ensure_future(asyncio.to_thread(drain))
    try:
        await through_a_cut(fifo)
    finally:
        # A failed download never opened the pipe: open it once, so a reader still
        # waiting for a writer gets its end. Without blocking: a reader that has
        # already read to the end and gone leaves nobody to meet (ENXIO).
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    got = await reader
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
