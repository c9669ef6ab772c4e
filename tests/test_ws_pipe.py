"""RFC 6455 details of the port-forward pipe, on both ends of the wire.

The platform's end is driven by a raw socket that writes frames byte by byte as
a test wants them; the client's end talks to a small server of the test's own
that does the upgrade by hand. The end-to-end behaviour (throughput, byte
exactness, errors users see) is in ``test_port_forward.py``.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from yarl import URL

from apolo_jupyter import Client
from apolo_jupyter.client import _ws_pipe
from apolo_jupyter.client._errors import ClientError
from apolo_jupyter.client._ws_pipe import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Pipe,
    accept_key,
    new_key,
)

from .conftest import Platform
from .test_port_forward import echo_job


def frame(opcode: int, payload: bytes, *, mask: bool = True, fin: bool = True) -> bytes:
    head = bytearray([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask else 0
    if len(payload) < 126:
        head.append(bit | len(payload))
    elif len(payload) < 65536:
        head += struct.pack("!BH", bit | 126, len(payload))
    else:
        head += struct.pack("!BQ", bit | 127, len(payload))
    if not mask:
        return bytes(head + payload)
    key = os.urandom(4)
    return bytes(head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload)))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """(opcode, masked, unmasked payload) of the next frame."""
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(length)
    return b0 & 0x0F, bool(b1 & 0x80), bytes(b ^ key[i % 4] for i, b in enumerate(data))


async def upgrade(
    url: URL, token: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket to the platform, opened by hand."""
    reader, writer = await asyncio.open_connection(url.host, url.port)
    key = new_key()
    writer.write(
        (
            f"GET {url.raw_path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    assert f"Sec-WebSocket-Accept: {accept_key(key)}".encode() in head
    return reader, writer


def forward_url(client: Client, job_id: str, port: int) -> URL:
    base = URL(str(client.config.cluster.monitoring_url))
    return base / job_id / "port_forward" / str(port)


async def test_platform_reassembles_frames_cut_anywhere(
    client: Client, platform: Platform
) -> None:
    big = os.urandom(70_000)  # a 16-bit length
    huge = os.urandom(300_000)  # a 64-bit length, more than one read
    wire = (
        frame(OP_BINARY, b"abc")
        + frame(OP_PING, b"are you there")
        + frame(OP_TEXT, "héllo".encode(), fin=False)  # a fragmented message
        + frame(OP_CONTINUATION, b" world")
        + frame(OP_BINARY, big)
        + frame(OP_BINARY, huge)
    )
    expected = b"abc" + "héllo".encode() + b" world" + big + huge
    async with echo_job(client) as (job, port):
        reader, writer = await upgrade(
            forward_url(client, job.id, port), platform.token
        )
        # The first 200 bytes one at a time: every header is cut somewhere.
        for i in range(200):
            writer.write(wire[i : i + 1])
            await writer.drain()
        writer.write(wire[200:])
        # The job may echo "abc" before the PING has been fully written: the
        # PONG comes somewhere among the data frames, exactly once.
        data, pongs = b"", list[bytes]()
        while len(data) < len(expected) or not pongs:
            opcode, masked, payload = await read_frame(reader)
            assert not masked
            if opcode == OP_PONG:
                pongs.append(payload)
            else:
                assert opcode in (OP_BINARY, OP_CONTINUATION), opcode
                data += payload
        assert pongs == [b"are you there"]
        assert data == expected
        writer.write(frame(OP_CLOSE, struct.pack("!H", 1000)))
        opcode, _, payload = await read_frame(reader)
        assert (opcode, payload) == (OP_CLOSE, struct.pack("!H", 1000))
        assert await reader.read() == b""
        writer.close()


@pytest.mark.parametrize(
    "bad",
    [
        frame(OP_BINARY, b"x", mask=False),  # clients must mask
        bytes([0x80 | 0x40 | OP_BINARY, 0x80 | 1]) + b"\0\0\0\0x",  # RSV1, no ext
        frame(OP_PING, b"p" * 126),  # control frames carry at most 125 bytes
        frame(OP_CONTINUATION, b"x"),  # a continuation of nothing
        frame(0x3, b"x"),  # a reserved opcode
    ],
)
async def test_platform_closes_on_protocol_errors(
    client: Client, platform: Platform, bad: bytes
) -> None:
    async with echo_job(client) as (job, port):
        reader, writer = await upgrade(
            forward_url(client, job.id, port), platform.token
        )
        writer.write(bad)
        opcode, _, payload = await asyncio.wait_for(read_frame(reader), 10)
        assert (opcode, payload) == (OP_CLOSE, struct.pack("!H", 1002))
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def fake_platform(
    script: Script, *, accept: Callable[[str], str] = accept_key
) -> AsyncIterator[URL]:
    """A server that upgrades any request by hand and then runs ``script``."""
    done: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        done.append(task)
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        assert "Authorization: Bearer secret-token" in head
        writer.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept(key)}\r\n\r\n".encode()
        )
        try:
            await script(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield URL(f"ws://127.0.0.1:{port}/api/v1/monitoring/job-x/port_forward/80")
    finally:
        server.close()
        for task in done:
            task.cancel()
        results = await asyncio.gather(*done, return_exceptions=True)
        # A failed check in a script that ran to its end fails the test; a script
        # cut short by the end of the test (cancelled, or at EOF) does not.
        for result in results:
            if isinstance(result, AssertionError):
                raise result


@asynccontextmanager
async def client_pipe(
    url: URL, heartbeat: float = 10.0
) -> AsyncIterator[tuple[Pipe, asyncio.StreamReader, asyncio.StreamWriter]]:
    """Our client's pipe to ``url``; its TCP side is the returned stream's peer."""
    from apolo_jupyter.client._core import Core

    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    local = await asyncio.start_server(keep, "127.0.0.1", 0)
    core = Core("secret-token")
    pipe = Pipe(client=True)
    loop = asyncio.get_running_loop()
    try:
        await loop.create_connection(
            lambda: pipe.plain, "127.0.0.1", local.sockets[0].getsockname()[1]
        )
        reader, writer = await accepted
        await core.open_pipe(url, pipe, heartbeat=heartbeat)
        yield pipe, reader, writer
    finally:
        pipe.close(wait=0)
        local.close()
        await core.close()


async def test_client_answers_pings_and_unmasks_nothing() -> None:
    payload = os.urandom(100_000)
    got: asyncio.Future[tuple[int, bool, bytes]] = (
        asyncio.get_running_loop().create_future()
    )

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        wire = frame(OP_PING, b"ping!", mask=False) + frame(
            OP_BINARY, payload, mask=False
        )
        for i in range(0, len(wire), 7):  # in pieces that cut every header
            writer.write(wire[i : i + 7])
            await writer.drain()
        got.set_result(await read_frame(reader))
        await read_frame(reader)  # our CLOSE

    async with fake_platform(script) as url, client_pipe(url) as (pipe, reader, _):
        assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
        assert await asyncio.wait_for(got, 10) == (OP_PONG, True, b"ping!")
        assert pipe.error is None


async def test_client_masks_what_it_sends() -> None:
    payload = os.urandom(1 << 20)
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        out = b""
        while len(out) < len(payload):
            opcode, masked, data = await read_frame(reader)
            assert opcode == OP_BINARY and masked  # every frame, with its own key
            out += data
        received.set_result(out)
        await asyncio.sleep(30)

    async with fake_platform(script) as url, client_pipe(url) as (_, _r, writer):
        writer.write(payload)
        assert await asyncio.wait_for(received, 20) == payload


@pytest.mark.parametrize("order", ["ours, then the peer's", "the peer's, then ours"])
async def test_a_close_ends_in_its_wait_when_the_local_reader_takes_nothing(
    order: str,
) -> None:
    """A local reader that stopped reading (a browser tab left open on a stream):
    the peer's CLOSE can come in the same read as data that then waits for that
    reader. A toggle turned off must still get its forward down in ``wait``."""
    async with fake_platform(_flood) as url, client_pipe(url) as (pipe, _r, _w):
        await _until_throttled(pipe)
        assert pipe.plain.transport is not None
        assert pipe.plain.transport.get_write_buffer_size() > 0
        peers_close = struct.pack("!H", 1000)  # as a read of the WebSocket brings it
        if order == "ours, then the peer's":
            pipe.close(wait=0.5)
            pipe.on_close_frame(peers_close)
        else:
            pipe.on_close_frame(peers_close)
            pipe.close(wait=0.5)
        await asyncio.wait_for(asyncio.shield(pipe.done), 10)


async def test_a_peers_close_gives_pending_bytes_a_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closed by the peer alone, a pipe flushes what it holds, but a reader that
    takes nothing cannot keep its sockets open past FLUSH_FOR."""
    monkeypatch.setattr(_ws_pipe, "FLUSH_FOR", 0.3)
    async with fake_platform(_flood) as url, client_pipe(url) as (pipe, _r, _w):
        await _until_throttled(pipe)
        pipe.on_close_frame(struct.pack("!H", 1000))
        await asyncio.wait_for(asyncio.shield(pipe.done), 10)


async def _flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """More data than the sockets' buffers hold, then silence."""
    chunk = frame(OP_BINARY, os.urandom(1 << 20), mask=False)
    for _ in range(64):
        writer.write(chunk)
        await writer.drain()
    await asyncio.sleep(30)


async def _until_throttled(pipe: Pipe) -> None:
    """Until our write buffer to the local reader is full."""
    async with asyncio.timeout(20):
        while not pipe.ws.throttled:
            await asyncio.sleep(0.01)


async def test_client_fails_a_silent_platform() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await asyncio.sleep(30)  # reads nothing, answers nothing

    async with (
        fake_platform(script) as url,
        client_pipe(url, heartbeat=0.2) as (
            pipe,
            reader,
            _,
        ),
    ):
        await asyncio.wait_for(asyncio.shield(pipe.done), 10)
        assert isinstance(pipe.error, TimeoutError)
        assert await reader.read() == b""  # the local connection was closed


async def test_client_refuses_a_masked_server_frame() -> None:
    answer: asyncio.Future[tuple[int, bytes]] = (
        asyncio.get_running_loop().create_future()
    )

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(frame(OP_BINARY, b"x", mask=True))
        opcode, _, payload = await read_frame(reader)
        answer.set_result((opcode, payload))

    async with fake_platform(script) as url, client_pipe(url) as (pipe, reader, _):
        await asyncio.wait_for(asyncio.shield(pipe.done), 10)
        assert "mask" in str(pipe.error)
        assert await reader.read() == b""
        assert await asyncio.wait_for(answer, 10) == (
            OP_CLOSE,
            struct.pack("!H", 1002),
        )


async def test_client_checks_the_accept_key() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await asyncio.sleep(30)

    async with fake_platform(script, accept=lambda key: accept_key(new_key())) as url:
        with pytest.raises(ClientError, match="not a valid WebSocket upgrade"):
            async with client_pipe(url):
                pass
