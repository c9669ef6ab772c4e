"""The unmodified official ``apolo_sdk`` forwards job ports through our platform."""

from __future__ import annotations

import asyncio
import shlex
from typing import Any

import aiohttp
import pytest

from apolo_jupyter import Client

from ..conftest import free_port
from ..test_port_forward import (
    ECHO,
    GRPC_DIR,
    GRPC_JOB_DIR,
    echo_roundtrip,
    grpc_volume,
    serving_job,
)

apolo_sdk: Any = pytest.importorskip("apolo_sdk")


async def test_sdk_port_forward_fetches_http(client: Client, sdk_client: Any) -> None:
    port = free_port()
    command = (
        f"python3 -m http.server {port} --bind 127.0.0.1 --directory {GRPC_JOB_DIR}"
    )
    job = await serving_job(client, command, port, [await grpc_volume(client)])
    try:
        local = free_port()
        async with (
            sdk_client.jobs.port_forward(job.id, local, port),
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{local}/helloworld.proto") as resp,
        ):
            assert resp.status == 200
            assert await resp.read() == (GRPC_DIR / "helloworld.proto").read_bytes()
    finally:
        await client.jobs.kill(job.id)


async def test_sdk_port_forward_concurrent_connections(
    client: Client, sdk_client: Any
) -> None:
    port = free_port()
    job = await serving_job(client, f"python3 -c {shlex.quote(ECHO)} {port}", port)

    try:
        local = free_port()
        async with sdk_client.jobs.port_forward(job.id, local, port):
            await asyncio.gather(
                *(echo_roundtrip(local, 10_000 + 4099 * i) for i in range(50))
            )
    finally:
        await client.jobs.kill(job.id)
