"""Port forwarding end to end: ``client.jobs.port_forward`` over the real local platform.

Jobs run real servers (http.server, an echo server, the grpclib Greeter); where a
test needs a server that outlives the job or can be made slow, the test itself
listens on 127.0.0.1 (jobs share the host network, so the platform reaches it).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import aiohttp
import psutil
import pytest
from yarl import URL

from apolo_jupyter import (
    Client,
    IllegalArgumentError,
    JobDescription,
    JobStatus,
    Volume,
)
from apolo_jupyter.client._port_forward import Forward

from .conftest import Platform, free_port, wait_running

HERE = Path(__file__).resolve().parent
GRPC_DIR = HERE / "grpc_helloworld"

ECHO = """
import asyncio, sys
async def echo(reader, writer):
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""

# What may be in flight when nobody reads (measured: ~15 MiB, mostly kernel
# buffers); without backpressure it would be gigabytes within the first second.
IN_FLIGHT_BOUND = 100 << 20


# Where jobs see tests/grpc_helloworld: a job sees its volumes, never this
# repository, so the files go through storage as a user's would.
GRPC_MOUNT = "/opt/grpc"
GRPC_JOB_DIR = f"{GRPC_MOUNT}/tests/grpc_helloworld"


async def grpc_volume(client: Client) -> Volume:
    """``tests/grpc_helloworld`` uploaded to storage, as a read-only volume that
    shows it at GRPC_JOB_DIR (``server.py`` imports it as ``tests.grpc_helloworld``)."""
    folder = URL("storage:grpc-helloworld")
    target = folder / "tests" / "grpc_helloworld"
    await client.storage.mkdir(target, parents=True, exist_ok=True)
    await client.storage.upload_file(
        HERE / "__init__.py", folder / "tests" / "__init__.py"
    )
    for path in [*sorted(GRPC_DIR.glob("*.py*")), GRPC_DIR / "helloworld.proto"]:
        await client.storage.upload_file(path, target / path.name)
    return client.parse.volume(f"{folder}:{GRPC_MOUNT}:ro")


async def start_job(
    client: Client, command: str, volumes: Sequence[Volume] = ()
) -> JobDescription:
    return await client.jobs.start(
        image=client.parse.remote_image("python:3.11"),
        preset_name="cpu-small",
        command=command,
        volumes=list(volumes),
    )


async def wait_listening(client: Client, job_id: str, port: int) -> None:
    """Until the job accepts connections on ``port`` (fail fast if it ended)."""
    for _ in range(400):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            job = await client.jobs.status(job_id)
            assert not job.status.is_finished, f"job ended: {job.history}"
            await asyncio.sleep(0.025)
            continue
        writer.close()
        return
    raise AssertionError(f"job {job_id} never listened on {port}")


async def serving_job(
    client: Client, command: str, port: int, volumes: Sequence[Volume] = ()
) -> JobDescription:
    job = await start_job(client, command, volumes)
    await wait_listening(client, job.id, port)
    return job


def forward_to(
    client: Client, job_id: str, job_port: int, local_port: int = 0
) -> AbstractAsyncContextManager[Forward]:
    """``client.jobs.port_forward`` (the public API), with the job's port first."""
    return client.jobs.port_forward(job_id, local_port, job_port)


@asynccontextmanager
async def echo_job(client: Client) -> AsyncIterator[tuple[JobDescription, int]]:
    port = free_port()
    job = await serving_job(client, f"python3 -c {shlex.quote(ECHO)} {port}", port)
    try:
        yield job, port
    finally:
        await client.jobs.kill(job.id)


@asynccontextmanager
async def sleeping_job(client: Client) -> AsyncIterator[JobDescription]:
    job = await start_job(client, "sleep 60")
    try:
        assert (await wait_running(client, job.id)).status is JobStatus.RUNNING
        yield job
    finally:
        await client.jobs.kill(job.id)


@asynccontextmanager
async def local_server(
    port: int,
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[None]:
    """A server of the test's own on 127.0.0.1:port (reachable as a job port)."""
    running: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            await handler(reader, writer)
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()
            running.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """What arrives until EOF or a reset (both mean: closed)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    except ConnectionResetError:
        return b""


async def test_http_get_returns_the_jobs_content(client: Client) -> None:
    port = free_port()
    command = (
        f"python3 -m http.server {port} --bind 127.0.0.1 --directory {GRPC_JOB_DIR}"
    )
    job = await serving_job(client, command, port, [await grpc_volume(client)])
    try:
        async with (
            forward_to(client, job.id, port) as fwd,
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{fwd.port}/helloworld.proto") as resp,
        ):
            assert resp.status == 200
            assert await resp.read() == (GRPC_DIR / "helloworld.proto").read_bytes()
        assert fwd.errors == []
    finally:
        await client.jobs.kill(job.id)


async def echo_roundtrip(port: int, size: int) -> None:
    """Send ``size`` random bytes to an echo server on ``port``; expect them back."""
    payload = os.urandom(size)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    assert await reader.readexactly(len(payload)) == payload
    writer.close()
    await writer.wait_closed()


async def test_hundred_concurrent_connections_are_byte_exact(client: Client) -> None:
    async with echo_job(client) as (job, port), forward_to(client, job.id, port) as fwd:
        await asyncio.gather(
            *(echo_roundtrip(fwd.port, 20_000 + 997 * i) for i in range(100))
        )
        assert fwd.errors == []


async def test_one_gibibyte_each_way_is_byte_exact(client: Client) -> None:
    chunk, chunks = 1 << 20, 1024
    block = bytearray(os.urandom(chunk))
    sent, received = hashlib.sha256(), hashlib.sha256()

    async def send(writer: asyncio.StreamWriter) -> None:
        for i in range(chunks):
            block[:8] = i.to_bytes(8, "big")  # a stamp per MiB catches reordering
            sent.update(block)
            writer.write(block)
            await writer.drain()

    async def receive(reader: asyncio.StreamReader) -> int:
        total = 0
        while total < chunk * chunks:
            data = await reader.read(1 << 20)
            assert data, f"EOF after {total} bytes"
            received.update(data)
            total += len(data)
        return total

    async with echo_job(client) as (job, port), forward_to(client, job.id, port) as fwd:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", fwd.port, limit=1 << 20
        )
        _, total = await asyncio.gather(send(writer), receive(reader))
        writer.close()
        assert total == chunk * chunks
        assert received.hexdigest() == sent.hexdigest()
        assert fwd.errors == []


async def test_closed_job_port_is_reported_and_the_forward_goes_on(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    async with sleeping_job(client) as job, forward_to(client, job.id, port) as fwd:
        reader, writer = await asyncio.open_connection("127.0.0.1", fwd.port)
        assert await read_until_closed(reader, 10) == b""
        writer.close()
        [error] = fwd.errors
        assert isinstance(error, IllegalArgumentError)
        assert f"Cannot connect to port {port}" in str(error)
        assert f"Cannot connect to port {port}" in caplog.text

        async def hello(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"hello")
            await w.drain()
            w.close()

        async with local_server(port, hello):  # now something listens there
            reader, writer = await asyncio.open_connection("127.0.0.1", fwd.port)
            assert await read_until_closed(reader, 10) == b"hello"
            writer.close()
        assert len(fwd.errors) == 1


async def test_finished_job_is_refused(client: Client) -> None:
    job = await start_job(client, "true")
    async with client.jobs.watch(job.id) as updates:
        async for _ in updates:
            pass
    async with forward_to(client, job.id, free_port()) as fwd:
        reader, writer = await asyncio.open_connection("127.0.0.1", fwd.port)
        assert await read_until_closed(reader, 10) == b""
        writer.close()
    [error] = fwd.errors
    assert isinstance(error, IllegalArgumentError)
    assert "is succeeded, not running" in str(error)


async def test_killing_the_job_closes_its_forwarded_connections(
    client: Client,
) -> None:
    # The server belongs to the test and never closes first: only the platform's
    # reaction to the kill can end these connections.
    port = free_port()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi")
        await writer.drain()
        await reader.read()

    async with (
        local_server(port, hold),
        sleeping_job(client) as job,
        forward_to(client, job.id, port) as fwd,
    ):
        conns = [await asyncio.open_connection("127.0.0.1", fwd.port) for _ in range(3)]
        for reader, _ in conns:
            assert await reader.readexactly(2) == b"hi"
        with pytest.raises(TimeoutError):  # open while the job runs
            await asyncio.wait_for(conns[0][0].read(1), 0.3)
        await client.jobs.kill(job.id)
        for reader, writer in conns:
            assert await read_until_closed(reader, 10) == b""
            writer.close()
        assert fwd.errors == []


async def test_leaving_the_context_closes_live_connections(client: Client) -> None:
    port = free_port()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi")
        await writer.drain()
        await reader.read()

    async with local_server(port, hold), sleeping_job(client) as job:
        async with forward_to(client, job.id, port) as fwd:
            reader, writer = await asyncio.open_connection("127.0.0.1", fwd.port)
            assert await reader.readexactly(2) == b"hi"
        assert await read_until_closed(reader, 10) == b""
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", fwd.port)
        assert fwd.errors == []


async def test_backpressure_bounds_what_is_in_flight(client: Client) -> None:
    """Neither side reads: the other can only get so far ahead."""
    port = free_port()
    pushed_by_job = 0
    stalled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pushed_by_job
        block = bytes(1 << 16)
        try:
            while True:
                writer.write(block)
                await asyncio.wait_for(writer.drain(), 1.0)
                pushed_by_job += len(block)
        except TimeoutError:
            stalled.set_result(None)
            await asyncio.sleep(60)  # hold the socket, never read

    async with (
        local_server(port, flood),
        sleeping_job(client) as job,
        forward_to(client, job.id, port) as fwd,
    ):
        _, writer = await asyncio.open_connection("127.0.0.1", fwd.port)
        await asyncio.wait_for(stalled, 20)  # the job side had to stop writing
        assert pushed_by_job < IN_FLIGHT_BOUND
        pushed_by_test = 0
        block = bytes(1 << 16)
        try:
            while True:
                writer.write(block)
                await asyncio.wait_for(writer.drain(), 1.0)
                pushed_by_test += len(block)
        except TimeoutError:
            pass
        assert pushed_by_test < IN_FLIGHT_BOUND
        writer.close()


async def test_binds_only_loopback(client: Client) -> None:
    async with sleeping_job(client) as job, forward_to(client, job.id, 1) as fwd:
        listening = [
            conn.laddr
            for conn in psutil.net_connections(kind="inet")
            if conn.pid == os.getpid()
            and conn.status == psutil.CONN_LISTEN
            and conn.laddr.port == fwd.port
        ]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening)


async def test_fixed_local_port_is_used(client: Client) -> None:
    wanted = free_port()
    async with (
        sleeping_job(client) as job,
        forward_to(client, job.id, 1, wanted) as fwd,
    ):
        assert fwd.port == wanted


@pytest.mark.parametrize(
    ("path", "auth", "status", "text"),
    [
        ("{job}/port_forward/80", False, 401, "Authorization token missing"),
        ("{job}/port_forward/0", True, 400, "Invalid port number"),
        ("{job}/port_forward/65536", True, 400, "Invalid port number"),
        ("{job}/port_forward/http", True, 400, "Invalid port number"),
        ("job-unknown/port_forward/80", True, 404, "not found"),
    ],
)
async def test_handshake_errors_carry_x_error(
    client: Client, platform: Platform, path: str, auth: bool, status: int, text: str
) -> None:
    async with sleeping_job(client) as job:
        url = client.config.cluster.monitoring_url / path.format(job=job.id)
        headers = {"Authorization": f"Bearer {platform.token}"} if auth else {}
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(url, headers=headers)
        assert info.value.status == status
        assert info.value.headers is not None
        assert text in info.value.headers["X-Error"]


async def test_grpc_hello_through_the_forward(client: Client) -> None:
    from grpclib.client import Channel

    from .grpc_helloworld.helloworld_grpc import GreeterStub
    from .grpc_helloworld.helloworld_pb2 import HelloReply, HelloRequest

    port = free_port()
    command = f"python3 {GRPC_JOB_DIR}/server.py {port}"
    job = await serving_job(client, command, port, [await grpc_volume(client)])
    try:
        async with forward_to(client, job.id, port) as fwd:
            channel = Channel("127.0.0.1", fwd.port)
            greeter = GreeterStub(channel)
            reply = await greeter.SayHello(HelloRequest(name="Dr. Strange"))
            channel.close()
        assert isinstance(reply, HelloReply)
        assert reply.message == "Hello, Dr. Strange!"
        assert fwd.errors == []
    finally:
        await client.jobs.kill(job.id)
