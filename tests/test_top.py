"""``client.jobs.top``, ``send_signal`` and ``get_capacity`` on the local platform."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from apolo_jupyter import Client, IllegalArgumentError, JobTelemetry, get
from apolo_jupyter.local._telemetry import parse_nvidia_smi

from .conftest import Platform, start_job, wait_finished, wait_running


async def test_a_busy_job_shows_about_one_core(client: Client) -> None:
    """Each sample is the CPU used since the previous one: a busy loop shows about
    one core, sample after sample (cumulative CPU time would grow past 1.5 by the
    third second and never come back)."""
    job = await start_job(client, command="sh -c 'while :; do :; done'")
    await wait_running(client, job.id)
    samples: list[JobTelemetry] = []
    in_band = 0
    try:
        async with asyncio.timeout(120), client.jobs.top(job.id) as it:
            async for sample in it:
                samples.append(sample)
                if len(samples) == 1:
                    continue  # warm-up: the first covers a quarter of a second
                # One process: never much more than a core, however loaded.
                assert sample.cpu < 1.5, samples
                in_band = in_band + 1 if sample.cpu >= 0.5 else 0
                if in_band == 3 or len(samples) >= 60:
                    break
    finally:
        await client.jobs.kill(job.id)
    assert in_band == 3, samples  # three samples in a row at 0.5-1.5 cores
    assert all(s.memory_bytes > 0 for s in samples)
    assert samples[-1].gpu_duty_cycle is None  # no GPU here: fields left out
    assert samples[-1].gpu_memory_bytes is None
    assert samples[-1].memory == samples[-1].memory_bytes / 2**20


async def test_top_counts_every_process_of_the_job(client: Client) -> None:
    # A busy grandchild (the inner sh) and a child holding 64 MiB: the samples
    # show the CPU of the one and the memory of the other.
    job = await start_job(
        client,
        command='sh -c \'sh -c "while :; do :; done" & '
        'python3 -c "import time; x = bytearray(64 << 20); time.sleep(300)"\'',
    )
    await wait_running(client, job.id)
    samples: list[JobTelemetry] = []
    try:
        async with asyncio.timeout(120), client.jobs.top(job.id) as it:
            async for sample in it:
                samples.append(sample)
                if sample.memory_bytes > 64 << 20 and sample.cpu > 0.5:
                    break
                if len(samples) >= 60:
                    break
    finally:
        await client.jobs.kill(job.id)
    last = samples[-1]
    assert last.memory_bytes > 64 << 20 and last.cpu > 0.5, samples
    # A few small processes beside the 64 MiB; two processes at most 2 cores.
    assert last.memory_bytes < 1 << 30 and last.cpu < 2.5, samples


async def test_top_ends_with_the_job(client: Client) -> None:
    job = await start_job(client, command="sleep 300")
    await wait_running(client, job.id)
    count = 0
    async with client.jobs.top(job.id) as it:
        async for _ in it:
            count += 1
            if count == 1:
                await client.jobs.kill(job.id)
    assert count >= 1  # the iteration ended by itself once the job stopped


async def test_top_of_a_finished_job_says_it_is_not_running(client: Client) -> None:
    job = await start_job(client, command="true")
    await wait_finished(client, job.id)
    with pytest.raises(IllegalArgumentError, match=r"not running.*succeeded"):
        async with client.jobs.top(job.id) as it:
            async for _ in it:
                pass


async def test_send_signal_kills_the_job_at_once(client: Client) -> None:
    job = await start_job(client, command="sh -c 'trap \"\" TERM; sleep 300'")
    await wait_running(client, job.id)
    await client.jobs.send_signal(job.id)
    done = await wait_finished(client, job.id)
    assert done.status == "failed"
    assert done.history.exit_code == 137


async def test_capacity_counts_the_jobs_that_fit_now(tmp_path: Path) -> None:
    plat = Platform(tmp_path / "home", capacity={"cpu": 2, "memory": 8 * 2**30})
    try:
        async with get(plat.url, plat.token, quiet=True) as client:
            assert await client.jobs.get_capacity() == {
                "cpu-small": 2,
                "cpu-medium": 1,
                "cpu-large": 0,
                "cpu-small-p": 2,
            }
            job = await start_job(client, command="sleep 300")
            await wait_running(client, job.id)
            assert await client.jobs.get_capacity() == {
                "cpu-small": 1,
                "cpu-medium": 0,
                "cpu-large": 0,
                "cpu-small-p": 1,
            }
            await client.jobs.kill(job.id)
            assert (await client.jobs.get_capacity())["cpu-small"] == 2
    finally:
        plat.stop()


def test_gpu_use_is_read_from_nvidia_smi_output() -> None:
    apps = "4242, 1500, GPU-a\n4243, 500, GPU-a\n999, 7000, GPU-b\n"
    gpus = "GPU-a, 87\nGPU-b, 12\n"
    assert parse_nvidia_smi(apps, gpus, [4242, 4243]) == (87, 2000 * 2**20)
    assert parse_nvidia_smi(apps, gpus, [1, 2]) is None
    assert parse_nvidia_smi("", "", [4242]) is None
