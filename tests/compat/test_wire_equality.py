"""For every call in the seed, our client sends what apolo-sdk 26.9.0 sends.

Both clients run the same calls against the local platform with an aiohttp trace
that records each request's method, path, query and JSON body; the recordings must
be equal (job ids aside).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from yarl import URL

import apolo_jupyter

from ..conftest import Platform

apolo_sdk: Any = pytest.importorskip("apolo_sdk")

JOB_ID = re.compile(r"job-[0-9a-f-]{36}")
Request = tuple[str, str, tuple[tuple[str, str], ...], Any]


class Recorder:
    def __init__(self) -> None:
        self.requests: list[list[Any]] = []

    def trace(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_start(
            session: aiohttp.ClientSession,
            ctx: SimpleNamespace,
            params: aiohttp.TraceRequestStartParams,
        ) -> None:
            ctx.record = [params.method, params.url, b""]
            self.requests.append(ctx.record)

        async def on_chunk(
            session: aiohttp.ClientSession,
            ctx: SimpleNamespace,
            params: aiohttp.TraceRequestChunkSentParams,
        ) -> None:
            ctx.record[2] += params.chunk

        config.on_request_start.append(on_start)
        config.on_request_chunk_sent.append(on_chunk)
        return config

    def normalized(self) -> list[Request]:
        out = []
        for method, url, body in self.requests:
            path = JOB_ID.sub("{id}", url.path)
            query = tuple(
                sorted((k, JOB_ID.sub("{id}", v)) for k, v in url.query.items())
            )
            out.append((method, path, query, json.loads(body) if body else None))
        return out


async def seed_calls(client: Any, sdk: Any, resources: Any) -> None:
    """The seed's calls, written once for either client."""
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu:latest"),
        preset_name="cpu-small",
        command="sleep 30",
    )
    await client.jobs.status(job.id)
    await client.jobs.kill(job.id)
    volume = sdk.Volume(storage_uri=URL("storage:folder"), container_path="/mnt/data")
    public = client.parse.volume("storage:neuro/public:/mnt/public:ro")
    public_volume = sdk.Volume(
        storage_uri=URL("storage:neuro/public"),
        container_path="/mnt/public",
        read_only=True,
    )
    assert public.read_only and public.container_path == public_volume.container_path
    job = await client.jobs.run(
        sdk.Container(
            image=client.parse.remote_image("ubuntu:latest"),
            resources=resources,
            command="sleep 30",
            volumes=[volume, public_volume],
        )
    )
    async with client.jobs.list() as jobs:
        async for _ in jobs:
            pass
    async with client.jobs.list(statuses={sdk.JobStatus.RUNNING}) as jobs:
        async for _ in jobs:
            pass
    # The SDK's private filters on the platform's bookkeeping flags.
    flags = {"_materialized": True, "_being_dropped": None, "_logs_removed": True}
    async with client.jobs.list(**flags) as jobs:
        async for _ in jobs:
            pass
    await client.jobs.kill(job.id)
    async with client.jobs.monitor(job.id) as chunks:
        async for _ in chunks:
            pass


async def _record(
    run: Callable[[aiohttp.TraceConfig], Awaitable[None]],
) -> list[Request]:
    recorder = Recorder()
    await run(recorder.trace())
    return recorder.normalized()


async def test_same_json_as_the_official_sdk(
    platform: Platform, tmp_path: Path
) -> None:
    public = platform.paths.storage_dir / "local" / "default" / "neuro" / "public"
    public.mkdir(parents=True, exist_ok=True)
    path = tmp_path / ".apolo"
    await apolo_sdk.login_with_token(platform.token, url=URL(platform.url), path=path)

    async def official(trace: aiohttp.TraceConfig) -> None:
        async with apolo_sdk.get(path=path, trace_configs=[trace]) as client:
            await seed_calls(
                client, apolo_sdk, apolo_sdk.Resources(memory=100 * 2**20, cpu=0.5)
            )

    async def ours(trace: aiohttp.TraceConfig) -> None:
        async with apolo_jupyter.get(
            platform.url, platform.token, quiet=True, trace_configs=[trace]
        ) as client:
            await seed_calls(
                client, apolo_jupyter, apolo_jupyter.Resources(memory_mb=100, cpu=0.5)
            )

    theirs = await _record(official)
    mine = await _record(ours)
    assert len(mine) == len(theirs) >= 8
    for expected, got in zip(theirs, mine, strict=True):
        assert got == expected
    posted = [body for method, _, _, body in mine if method == "POST"]
    assert posted[0] == {
        "pass_config": False,
        "project_name": "default",
        "preset_name": "cpu-small",
        "org_name": "local",
        "cluster_name": "local",
        "image": "ubuntu:latest",
        "command": "sleep 30",
    }
    assert posted[1]["container"]["volumes"] == [
        {
            "src_storage_uri": "storage://local/local/default/folder",
            "dst_path": "/mnt/data",
            "read_only": False,
        },
        {
            "src_storage_uri": "storage://local/local/default/neuro/public",
            "dst_path": "/mnt/public",
            "read_only": True,
        },
    ]
