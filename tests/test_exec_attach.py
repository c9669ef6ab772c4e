"""``client.jobs.attach``: a job's own stdio on the real local platform."""

from __future__ import annotations

import asyncio
import re
import shlex

import pytest

from apolo_jupyter import Client, ResourceNotFound

from .conftest import job_log, start_job, wait_finished, wait_running
from .test_exec import read_until


async def test_attach_to_a_tty_job_types_into_it_and_reads_it(client: Client) -> None:
    script = (
        "import sys, time\n"
        "print('ready', sys.stdin.isatty(), flush=True)\n"
        "try:\n"
        "    line = input()\n"
        "    print('got', line[::-1], flush=True)\n"
        "    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    job = await start_job(
        client,
        image="python",
        command=f"python3 -c {shlex.quote(script)}",
        tty=True,
    )
    await wait_running(client, job.id)
    async with client.jobs.attach(job.id, tty=True, stdin=True, stdout=True) as stream:
        await stream.resize(h=40, w=100)
        await stream.write_in(b"olleh\r")
        await read_until(stream, b"got hello")
        # Ctrl-C reaches the job's process, not the sandbox around it.
        await stream.write_in(b"\x03")
        await read_until(stream, b"interrupted")
    done = await wait_finished(client, job.id)
    assert done.status == "succeeded", done.history
    log = await job_log(client, job.id)
    assert b"ready True" in log and b"got hello" in log  # still logged


async def test_attach_to_a_plain_job_streams_its_output_until_it_ends(
    client: Client,
) -> None:
    # 400 ticks take 20 s or more: the kill must end the job (and the stream)
    # long before the last one.
    job = await start_job(
        client,
        command="sh -c 'i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo tick $i; "
        "sleep 0.05; done'",
    )
    await wait_running(client, job.id)
    seen = bytearray()
    async with (
        asyncio.timeout(120),
        client.jobs.attach(job.id, stdin=True, stdout=True, stderr=True) as stream,
    ):
        await stream.write_in(b"ignored: the job has no stdin\n")
        seen += await read_until(stream, b"tick")
        await client.jobs.kill(job.id)
        while (msg := await stream.read_out()) is not None:
            assert msg.fileno == 1
            seen += msg.data
    done = await client.jobs.status(job.id)
    assert done.status == "cancelled", done.history
    ticks = [int(n) for n in re.findall(r"tick (\d+)\n", seen.decode())]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), seen
    assert ticks[-1] < 400  # the stream ended with the killed job, not a full run


async def test_attach_to_a_finished_job_is_refused(client: Client) -> None:
    job = await start_job(client, command="true")
    await wait_finished(client, job.id)
    with pytest.raises(ResourceNotFound, match="not running"):
        async with client.jobs.attach(job.id, stdout=True):
            pass
