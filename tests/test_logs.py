"""jobs.monitor: logs of finished, running, quiet and pending jobs."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from apolo_jupyter import Client, JobStatus, ResourceNotFound
from apolo_jupyter.kernel._follow import JobEvents

from .conftest import Gate, Platform, job_log, start_job, wait_finished

PY = "python3 -u -c"


async def _start(client: Client, command: str) -> str:
    job = await start_job(client, image="python:3.11", command=command)
    return job.id


async def test_logs_of_a_finished_job(client: Client) -> None:
    job_id = await _start(
        client, "sh -c 'for i in 1 2 3; do echo out $i; echo err $i >&2; done'"
    )
    await wait_finished(client, job_id)
    text = (await job_log(client, job_id)).decode()
    assert [line for line in text.splitlines() if line.startswith("out")] == [
        "out 1",
        "out 2",
        "out 3",
    ]
    assert "err 3" in text


async def test_logs_follow_a_running_job_live(
    client: Client, platform: Platform
) -> None:
    # The job prints three lines, then waits for the gate, which the test opens
    # only once it has read them: a monitor that held output back until the job
    # ended would never see them (and time out).
    gate = Gate(platform)
    job = await start_job(
        client,
        command=f"sh -c 'for i in 0 1 2; do echo $i; done; {gate.WAIT}; echo 3; echo 4'",
        volumes=[client.parse.volume(gate.volume)],
    )
    seen: list[int] = []
    try:
        async with asyncio.timeout(60), client.jobs.monitor(job.id) as chunks:
            buffer = b""
            async for chunk in chunks:
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    seen.append(int(line))
                if len(seen) == 3 and not (gate.path / "open").exists():
                    status = (await client.jobs.status(job.id)).status
                    assert status == JobStatus.RUNNING
                    gate.open()
    finally:
        await client.jobs.kill(job.id)  # a no-op once it has ended
    assert seen == [0, 1, 2, 3, 4]
    assert (await client.jobs.status(job.id)).status == JobStatus.SUCCEEDED


async def test_logs_wait_for_a_pending_job(client: Client) -> None:
    job = await start_job(client, command="echo from-the-start")
    assert (await job_log(client, job.id)).decode().strip() == "from-the-start"


async def test_quiet_job_is_not_disconnected(
    client: Client, platform: Platform
) -> None:
    """Heartbeats keep a silent stream alive. The client, as apolo_sdk's, PINGs
    after 10 s without a frame and drops the stream when no PONG comes within
    5 s more; 18 s of silence, counted from when the test has read "begin",
    pass that 15 s window only if the platform answers the PING."""
    gate = Gate(platform)
    job = await start_job(
        client,
        command=f"sh -c 'echo begin; {gate.WAIT}; sleep 18; echo end'",
        volumes=[client.parse.volume(gate.volume)],
    )
    text = b""
    opened = 0.0
    try:
        async with asyncio.timeout(90), client.jobs.monitor(job.id) as chunks:
            async for chunk in chunks:
                text += chunk
                if b"begin" in text and not opened:
                    gate.open()
                    opened = time.monotonic()
    finally:
        await client.jobs.kill(job.id)  # a no-op once it has ended
    assert text.decode().split() == ["begin", "end"]
    assert time.monotonic() - opened >= 18  # the silence outlasted the window


async def test_since_and_timestamps(client: Client) -> None:
    job_id = await _start(client, "sh -c 'echo early; sleep 2; echo late'")
    await wait_finished(client, job_id)
    job = await client.jobs.status(job_id)
    assert job.history.started_at is not None
    middle = job.history.started_at.timestamp() + 1.0
    late = (
        await job_log(client, job_id, since=datetime.fromtimestamp(middle, UTC))
    ).decode()
    assert late.split() == ["late"]
    stamped = (await job_log(client, job_id, timestamps=True)).decode().splitlines()
    assert len(stamped) == 2
    times = []
    for line, word in zip(stamped, ["early", "late"], strict=True):
        match = re.fullmatch(r"(\S+Z) (\w+)", line)
        assert match and match.group(2) == word, line
        times.append(datetime.fromisoformat(match.group(1).replace("Z", "+00:00")))
    assert 1.5 < (times[1] - times[0]).total_seconds() < 3.5


async def test_unknown_jobjob_log(client: Client) -> None:
    with pytest.raises(ResourceNotFound, match="not found"):
        await job_log(client, "job-00000000-0000-4000-8000-000000000000")


async def test_log_socket_requires_the_token(
    platform: Platform, client: Client
) -> None:
    job_id = await _start(client, "true")
    url = URL(platform.url) / "monitoring" / job_id / "log_ws"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(url)
    assert info.value.status == 401
    await wait_finished(client, job_id)


async def test_official_sdk_monitor(platform: Platform, tmp_path: Path) -> None:
    apolo_sdk: Any = pytest.importorskip("apolo_sdk")
    path = tmp_path / ".apolo"
    await apolo_sdk.login_with_token(platform.token, url=URL(platform.url), path=path)
    async with apolo_sdk.get(path=path) as sdk:
        job = await start_job(sdk, command="sh -c 'echo one; sleep 0.3; echo two'")
        out = b""
        async with sdk.jobs.monitor(job.id) as chunks:
            async for chunk in chunks:
                out += chunk
        assert out.decode().split() == ["one", "two"]
        await asyncio.sleep(0)


async def test_events_of_a_job_first_seen_finished_come_in_order(
    client: Client,
) -> None:
    """JobEvents (what the magics and the CLI show) for a job that is over before
    anyone looks: each status it went through, then its output, then the end."""
    job_id = await _start(client, "sh -c 'printf \"h\\303\\251\"; echo llo'")
    await wait_finished(client, job_id)
    seen: list[str] = []
    async with JobEvents(client, job_id) as events:
        while (event := await events.next()) is not None:
            if event.job is not None:
                history = event.job.history
                path = "/".join(t.status.value for t in history.transitions)
                seen.append(f"{event.job.status.value} {history.exit_code} {path}")
            else:
                seen.append(f"log {event.log}")
    statuses = [s for s in seen if not s.startswith("log")]
    assert statuses == [
        "running None pending/running",
        "succeeded 0 pending/running/succeeded",
    ], seen
    output = "".join(s[4:] for s in seen if s.startswith("log"))
    assert output == "héllo\n"
    first_log = next(i for i, s in enumerate(seen) if s.startswith("log"))
    assert seen.index(statuses[0]) < first_log and seen[-1] == statuses[-1]
