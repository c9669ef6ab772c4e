"""jobs.list / watch / errors against the real local platform."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import aiohttp
import pytest
from yarl import URL

from apolo_jupyter import (
    AuthenticationError,
    Client,
    Container,
    DiskVolume,
    IllegalArgumentError,
    JobStatus,
    ResourceNotFound,
    Resources,
    SecretFile,
    get,
)
from apolo_jupyter.client._config import Config
from apolo_jupyter.client._jobs import Jobs

from .conftest import Platform, job_log, start_job, wait_finished


async def _count(client: Client) -> int:
    n = 0
    async with client.jobs.list() as jobs:
        async for _ in jobs:
            n += 1
    return n


async def _start(client: Client, command: str = "true", **kwargs: object) -> str:
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command=command,
        **kwargs,  # type: ignore[arg-type]
    )
    return job.id


async def test_list_filters_by_status_name_and_tag(client: Client) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    name = f"n{uuid.uuid4().hex[:8]}"
    done = await _start(client, tags=[tag], name=name)
    sleeping = await _start(client, "sleep 60", tags=[tag])
    try:
        assert (await wait_finished(client, done)).status == JobStatus.SUCCEEDED
        async with client.jobs.list(tags=[tag]) as jobs:
            ids = [j.id async for j in jobs]
        assert ids == [done, sleeping]
        async with client.jobs.list(tags=[tag], reverse=True, limit=1) as jobs:
            assert [j.id async for j in jobs] == [sleeping]
        async with client.jobs.list(tags=[tag], statuses=[JobStatus.SUCCEEDED]) as jobs:
            assert [j.id async for j in jobs] == [done]
        async with client.jobs.list(name=name) as jobs:
            assert [j.name async for j in jobs] == [name]
        # Plain `async for` (no context manager) works too.
        seen = [j.id async for j in client.jobs.list(tags=[tag, "absent"])]
        assert seen == []
    finally:
        await client.jobs.kill(sleeping)


async def test_status_by_name(client: Client) -> None:
    name = f"by-name-{uuid.uuid4().hex[:6]}"
    job_id = await _start(client, name=name)
    assert (await client.jobs.status(name)).id == job_id
    await wait_finished(client, job_id)


async def test_watch_pushes_every_transition(client: Client) -> None:
    job_id = await _start(client, "sleep 0.3")
    async with client.jobs.watch(job_id) as updates:
        statuses = [job.status async for job in updates]
    assert statuses[-1] == JobStatus.SUCCEEDED
    assert JobStatus.RUNNING in statuses
    assert statuses == sorted(set(statuses), key=statuses.index)  # no repeats


async def test_watch_polls_when_no_push_endpoint(client: Client) -> None:
    from dataclasses import replace

    config: Config = replace(client.config, status_ws_url=None)
    polled = Jobs(client.jobs._core, config, client.parse)
    job_id = await _start(client, "sleep 0.3")
    async with polled.watch(job_id) as updates:
        statuses = [job.status async for job in updates]
    assert statuses[-1] == JobStatus.SUCCEEDED
    assert JobStatus.RUNNING in statuses


async def test_unknown_preset_is_refused_and_creates_nothing(client: Client) -> None:
    before = await _count(client)
    with pytest.raises(IllegalArgumentError, match=r"cpu-huge.*cpu-small, cpu-medium"):
        await client.jobs.start(
            image=client.parse.remote_image("ubuntu"),
            preset_name="cpu-huge",
            command="true",
        )
    assert await _count(client) == before


async def test_invalid_image_is_refused(client: Client, platform: Platform) -> None:
    with pytest.raises(ValueError):
        client.parse.remote_image("Ubuntu:latest")
    before = await _count(client)
    # A client that skips validation still gets a clear 400 from the server.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{platform.url}/jobs?from_preset",
            json={"image": "Bad Image!", "command": "true", "preset_name": "cpu-small"},
            headers={"Authorization": f"Bearer {platform.token}"},
        ) as resp,
    ):
        assert resp.status == 400
        assert (
            "invalid image name 'Bad Image!'" in json.loads(await resp.text())["error"]
        )
    assert await _count(client) == before


@pytest.mark.parametrize("command", ["", "   ", "'unbalanced"])
async def test_empty_or_broken_command_is_refused(client: Client, command: str) -> None:
    before = await _count(client)
    with pytest.raises(IllegalArgumentError, match="command"):
        await client.jobs.run(
            Container(
                image=client.parse.remote_image("ubuntu"),
                resources=Resources(memory_mb=64, cpu=0.1),
                command=command or None,
            )
        )
    assert await _count(client) == before


async def test_missing_executable_fails_with_reason(client: Client) -> None:
    job_id = await _start(client, "no-such-program-xyz --flag")
    job = await wait_finished(client, job_id)
    assert job.status == JobStatus.FAILED
    assert job.reason == "ContainerCannotRun"
    assert "no-such-program-xyz" in job.history.description


async def test_unknown_job_id(client: Client) -> None:
    missing = f"job-{uuid.uuid4()}"
    with pytest.raises(ResourceNotFound, match=missing):
        await client.jobs.status(missing)
    with pytest.raises(ResourceNotFound):
        await client.jobs.kill(missing)


async def test_wrong_token_is_refused(platform: Platform) -> None:
    with pytest.raises(AuthenticationError, match="not valid"):
        await get(platform.url, platform.token[:-4] + "AAAA", quiet=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/config"),
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/jobs/job-x"),
        ("DELETE", "/jobs/job-x"),
        ("PUT", "/jobs/job-x/max_run_time_minutes"),
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer nope", "Bearer a.b.c", "Basic x"])
async def test_every_route_requires_the_token(
    platform: Platform, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, platform.url + path, headers=headers) as resp,
    ):
        assert resp.status == 401
        assert "Authorization token" in (await resp.json())["error"]


async def test_websocket_requires_the_token(platform: Platform, client: Client) -> None:
    job_id = await _start(client)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(f"{platform.url}/jobs/{job_id}/status_ws")
        assert info.value.status == 401
    await wait_finished(client, job_id)


async def test_bump_life_span(client: Client) -> None:
    job_id = await _start(client, "sleep 60", life_span=120)
    try:
        await client.jobs.bump_life_span(job_id, 180)
        job = await client.jobs.status(job_id)
        assert job.life_span == 5 * 60
    finally:
        await client.jobs.kill(job_id)


async def test_short_secret_and_disk_uris_are_completed_before_sending(
    client: Client,
) -> None:
    # apolo_sdk completes secret: and disk: URIs with the current cluster, org and
    # project, as it does storage: volumes; the platform accepts full URIs only.
    key = f"short{uuid.uuid4().hex[:8]}"
    await client.secrets.add(key, b"completed")
    disk = await client.disks.create(2**30)
    try:
        job = await start_job(
            client,
            "sh -c 'echo $S; cat /run/s; echo; test -d /mnt/d && echo mounted'",
            secret_env={"S": URL(f"secret:{key}")},
            secret_files=[SecretFile(URL(f"secret:{key}"), "/run/s")],
            disk_volumes=[DiskVolume(URL(f"disk:{disk.id}"), "/mnt/d")],
        )
        full = URL(f"secret://local/local/default/{key}")
        assert job.container.secret_env == {"S": full}
        assert [f.secret_uri for f in job.container.secret_files] == [full]
        assert [d.disk_uri for d in job.container.disk_volumes] == [disk.uri]
        assert (await wait_finished(client, job.id)).exit_code == 0
        log = (await job_log(client, job.id)).decode()
        assert log.split() == ["completed", "completed", "mounted"]

        ran = await client.jobs.run(
            Container(
                image=client.parse.remote_image("ubuntu"),
                resources=Resources(memory_mb=64, cpu=0.1),
                command="true",
                secret_env={"S": URL(f"secret:{key}")},
            )
        )
        assert ran.container.secret_env == {"S": full}
        await wait_finished(client, ran.id)

        with pytest.raises(ValueError, match="only 'secret:' is allowed"):
            await start_job(client, "true", secret_env={"S": URL(f"storage:{key}")})
        with pytest.raises(ValueError, match="only 'disk:' is allowed"):
            await start_job(
                client, "true", disk_volumes=[DiskVolume(URL("storage:d"), "/mnt")]
            )
    finally:
        await client.disks.rm(disk.id)


async def test_requests_carry_the_sdks_tracing_headers(platform: Platform) -> None:
    """As apolo_sdk: ``b3`` and ``sentry-trace`` on every request, a fresh trace
    id each (the SDK makes one per request unless given one)."""
    sent: list[Any] = []
    trace = aiohttp.TraceConfig()

    async def on_end(
        session: aiohttp.ClientSession,
        ctx: Any,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        sent.append(params.headers)

    trace.on_request_end.append(on_end)
    async with get(
        platform.url, platform.token, quiet=True, trace_configs=[trace]
    ) as c:
        await c.jobs.get_capacity()
        await c.storage.disk_usage()
    traces = set()
    for headers in sent:
        trace_id, span = headers["b3"].split("-")
        assert re.fullmatch("[0-9a-f]{32}", trace_id), headers["b3"]
        assert re.fullmatch("[0-9a-f]{16}", span), headers["b3"]
        assert headers["sentry-trace"] == f"{trace_id}-{span}-"
        traces.add(trace_id)
    assert len(sent) == len(traces) == 2
