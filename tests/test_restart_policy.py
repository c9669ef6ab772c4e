"""Restart policy and schedule timeout on the local platform, as a real cluster
honours them: restarts in place with a back-off, counted in ``history.restarts``;
a job that cannot start in time fails with ``ClusterScaleUpFailed``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from apolo_jupyter import (
    Client,
    IllegalArgumentError,
    JobDescription,
    JobRestartPolicy,
    JobStatus,
    ResourceNotFound,
    get,
)
from apolo_jupyter.client._local_home import LocalPaths
from apolo_jupyter.kernel._follow import as_of
from apolo_jupyter.local._restart import RESET_FLOOR, Backoff
from apolo_jupyter.local._settings import ConfigError, Settings

from .conftest import Platform, cli, job_log, wait_finished, wait_running

GiB = 2**30
# Counts its runs in /state/n and prints "run N"; exits 0 from run ``ok`` on.
COUNT = "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; "


def _counting(ok: int) -> str:
    return f"sh -c '{COUNT}echo run $n; [ $n -ge {ok} ] || exit 1'"


@pytest.fixture(scope="module")
def fast_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Back-off of 0.2 s doubling to 0.4 s, so restarts are quick to test."""
    plat = Platform(
        tmp_path_factory.mktemp("restart") / "home",
        capacity={"cpu": 8, "memory": 64 * GiB},
        restart_backoff_seconds=0.2,
        restart_backoff_max_seconds=0.4,
        kill_grace=1.0,
    )
    yield plat
    plat.stop()


@pytest.fixture
def slow_platform(tmp_path: Path) -> Iterator[Platform]:
    """One CPU, the kubelet's back-off (10 s, 5 min) stretched to 10 min, and
    one-second life-span minutes."""
    plat = Platform(
        tmp_path / "home",
        capacity={"cpu": 1, "memory": 64 * GiB},
        restart_backoff_seconds=600,
        restart_backoff_max_seconds=600,
        minute_seconds=1.0,
        kill_grace=1.0,
    )
    yield plat
    plat.stop()


@pytest.fixture
async def fast(fast_platform: Platform) -> AsyncIterator[Client]:
    async with get(fast_platform.url, fast_platform.token, quiet=True) as client:
        yield client


@pytest.fixture
async def slow(slow_platform: Platform) -> AsyncIterator[Client]:
    async with get(slow_platform.url, slow_platform.token, quiet=True) as client:
        yield client


def _state(platform: Platform) -> tuple[str, Path]:
    """A fresh storage folder for a job's run counter: (volume, host path)."""
    folder = f"restart-{uuid.uuid4().hex[:8]}"
    host = platform.paths.storage_dir / "local" / "default" / folder
    return f"storage:{folder}:/state", host


def _count(counter: Path) -> str:
    try:
        return counter.joinpath("n").read_text().strip()
    except FileNotFoundError:
        return ""


async def _start(
    client: Client, command: str, volume: str | None = None, **kwargs: object
) -> JobDescription:
    return await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command=command,
        volumes=[client.parse.volume(volume)] if volume else [],
        **kwargs,  # type: ignore[arg-type]
    )


async def _until(client: Client, job_id: str, check: object) -> JobDescription:
    """Follow the job's status changes until ``check(job)`` holds."""
    async with asyncio.timeout(60), client.jobs.watch(job_id) as updates:
        async for job in updates:
            if check(job):  # type: ignore[operator]
                return job
            assert not job.status.is_finished, job.history
    raise AssertionError(f"watch of {job_id} ended first")


def _restarting(job: JobDescription) -> list[tuple[str, str]]:
    return [
        (t.reason, t.description)
        for t in job.history.transitions
        if t.status == JobStatus.RUNNING and t.reason == "Restarting"
    ]


async def test_on_failure_restarts_until_the_command_succeeds(
    fast: Client, fast_platform: Platform
) -> None:
    volume, counter = _state(fast_platform)
    job = await _start(
        fast, _counting(3), volume, restart_policy=JobRestartPolicy.ON_FAILURE
    )
    done = await wait_finished(fast, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.history
    assert done.history.exit_code == 0
    assert done.history.restarts == 2
    assert done.restart_policy == JobRestartPolicy.ON_FAILURE
    assert _count(counter) == "3"
    # One log across the runs, as `apolo logs` follows a restarted job.
    assert await job_log(fast, job.id) == b"run 1\nrun 2\nrun 3\n"
    # While it waited the job stayed running, and the reason said why and when.
    first, second = _restarting(done)
    assert first[1].startswith("the command exited with code 1; restart 1 now")
    assert second[1].startswith("the command exited with code 1; restart 2 in 0.2 s")
    assert f"apolo-jupyter kill {job.id}" in second[1]
    items = done.history.transitions
    waited = next(i for i, t in enumerate(items) if t.description == second[1])
    gap = items[waited + 1].transition_time - items[waited].transition_time
    assert gap.total_seconds() >= 0.2  # the back-off was kept
    assert [t.status for t in items[waited:]] == [
        JobStatus.RUNNING,
        JobStatus.RUNNING,
        JobStatus.SUCCEEDED,
    ]
    # A follower that replays the history (the magics, `apolo-jupyter run`)
    # shows each state with the restarts made by then, not the final count.
    counts = [as_of(done, n).history.restarts for n in range(1, len(items) + 1)]
    made = [
        sum(t.reason == "Restarting" for t in items[:n])
        for n in range(1, len(items) + 1)
    ]
    assert counts == made and counts[0] == 0 and counts[-1] == 2, counts


async def test_on_failure_ends_at_the_first_success_and_never_is_unchanged(
    fast: Client,
) -> None:
    ok = await _start(fast, "true", restart_policy=JobRestartPolicy.ON_FAILURE)
    failing = await _start(fast, "sh -c 'exit 3'")  # restart_policy never
    ok_done = await wait_finished(fast, ok.id)
    assert ok_done.status == JobStatus.SUCCEEDED and ok_done.history.restarts == 0
    done = await wait_finished(fast, failing.id)
    assert done.status == JobStatus.FAILED and done.history.exit_code == 3
    assert done.history.restarts == 0 and not _restarting(done)
    assert done.restart_policy == JobRestartPolicy.NEVER


async def test_always_restarts_a_command_that_exits_0(
    fast: Client, fast_platform: Platform
) -> None:
    volume, counter = _state(fast_platform)
    job = await _start(
        fast,
        f"sh -c '{COUNT}echo run $n; [ $n -ge 3 ] && exec sleep 300; exit 0'",
        volume,
        restart_policy=JobRestartPolicy.ALWAYS,
    )
    running = await _until(
        fast,
        job.id,
        lambda j: j.history.restarts == 2 and j.history.reason != "Restarting",
    )
    assert running.status == JobStatus.RUNNING
    assert all("exited with code 0" in d for _, d in _restarting(running))
    async with asyncio.timeout(60):  # run 3 is under way: wait for its count
        while _count(counter) != "3":
            await asyncio.sleep(0.05)
    await fast.jobs.kill(job.id)
    done = await wait_finished(fast, job.id)
    assert done.status == JobStatus.CANCELLED, done.history
    assert done.history.restarts == 2
    assert _count(counter) == "3"


async def test_send_signal_kills_the_process_and_the_policy_restarts_it(
    fast: Client,
) -> None:
    # As on a real cluster: the signal stops the container, the kubelet
    # restarts it (exit code 137 is a failure); only a kill ends the job.
    job = await _start(
        fast, "sh -c 'echo up; exec sleep 300'", restart_policy="on-failure"
    )
    await _until(fast, job.id, lambda j: j.status == JobStatus.RUNNING)
    await fast.jobs.send_signal(job.id)
    again = await _until(
        fast,
        job.id,
        lambda j: j.history.restarts == 1 and j.history.reason != "Restarting",
    )
    assert _restarting(again)[0][1].startswith("the command exited with code 137")
    await fast.jobs.kill(job.id)
    done = await wait_finished(fast, job.id)
    assert done.status == JobStatus.CANCELLED and done.history.restarts == 1


async def test_a_kill_during_the_back_off_ends_the_job_without_a_restart(
    slow: Client, slow_platform: Platform
) -> None:
    volume, counter = _state(slow_platform)
    job = await _start(slow, _counting(99), volume, restart_policy="on-failure")
    # Run 1 restarts at once; after run 2 the back-off is 600 s.
    waiting = await _until(
        slow,
        job.id,
        lambda j: j.history.restarts == 2 and j.history.reason == "Restarting",
    )
    assert waiting.status == JobStatus.RUNNING
    assert "restart 2 in 600 s (restart policy on-failure)" in (
        waiting.history.description or ""
    )
    # Nothing runs meanwhile: attach, exec and signals say so.
    with pytest.raises(ResourceNotFound, match="is restarting"):
        await slow.jobs.send_signal(job.id)
    await slow.jobs.kill(job.id)
    done = await wait_finished(slow, job.id)
    assert done.status == JobStatus.CANCELLED
    assert done.history.reason == "UserRequested"
    assert done.history.restarts == 2
    assert _count(counter) == "2"
    assert await job_log(slow, job.id) == b"run 1\nrun 2\n"


async def test_the_life_span_ends_a_restarting_job(slow: Client) -> None:
    job = await _start(
        slow, "false", restart_policy=JobRestartPolicy.ALWAYS, life_span=3.0 * 60
    )
    done = await wait_finished(slow, job.id)
    assert done.status == JobStatus.CANCELLED, done.history
    assert done.history.reason == "LifeSpanEnded"
    assert done.history.restarts == 2  # at once, then the 600 s wait it ended


async def test_a_job_that_cannot_start_in_time_fails_with_the_platforms_reason(
    slow: Client,
) -> None:
    blocker = await _start(slow, "sleep 300")
    assert (await wait_running(slow, blocker.id)).status == JobStatus.RUNNING
    late = await _start(slow, "true", schedule_timeout=2.0)
    assert late.schedule_timeout == 2.0
    done = await wait_finished(slow, late.id)
    assert done.status == JobStatus.FAILED
    assert done.history.reason == "ClusterScaleUpFailed"
    description = done.history.description or ""
    assert "could not start within its schedule timeout of 2 s" in description
    assert "waiting for room (CPU)" in description  # what it waited for
    assert done.history.started_at is None
    waited = done.history.finished_at - done.history.created_at  # type: ignore[operator]
    assert waited.total_seconds() >= 2.0
    # The blocker is untouched; once it is gone a job with a timeout starts at
    # once, and the timeout no longer applies to it.
    assert (await slow.jobs.status(blocker.id)).status == JobStatus.RUNNING
    await slow.jobs.kill(blocker.id)
    fits = await _start(slow, "sleep 3", schedule_timeout=1.0)
    done = await wait_finished(slow, fits.id)
    assert done.status == JobStatus.SUCCEEDED, done.history


async def test_bad_values_are_refused_with_a_message(fast: Client) -> None:
    async with fast.jobs.list() as listed:
        before = {job.id async for job in listed}
    with pytest.raises(IllegalArgumentError, match="between 1 and"):
        await _start(fast, "true", schedule_timeout=0.5)
    with pytest.raises(IllegalArgumentError, match="not allowed for scheduled jobs"):
        await fast.jobs.start(
            image=fast.parse.remote_image("ubuntu"),
            preset_name="cpu-small-p",
            command="true",
            schedule_timeout=30.0,
        )
    with pytest.raises(IllegalArgumentError, match="restart_policy must be one of"):
        await _start(fast, "true", restart_policy="sometimes")
    # 30 days is one second too many; the bound is shown in full, with the fix.
    with pytest.raises(
        IllegalArgumentError,
        match=r"between 1 and 2591999, got 2592000: .* e\.g\. --schedule-timeout 5m",
    ):
        await _start(fast, "true", schedule_timeout=30.0 * 24 * 3600)
    async with fast.jobs.list() as listed:
        after = {job.id async for job in listed}
    assert after == before  # refused requests leave nothing behind


def test_apolo_jupyter_run_restarts_and_follows_every_run(
    fast_platform: Platform, tmp_path: Path
) -> None:
    volume, counter = _state(fast_platform)
    env = {k: v for k, v in os.environ.items() if "PASSED_CONFIG" not in k}
    env.update(APOLO_JUPYTER_HOME=str(fast_platform.paths.home), HOME=str(tmp_path))
    env.pop("APOLO_CONFIG", None)
    script = f"{COUNT}echo run $n; [ $n -ge 3 ] || exit 1"
    run = cli(
        "run", "--restart", "on-failure", "-v", volume, "ubuntu", "--", "sh", "-c",
        script, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert _count(counter) == "3"
    for n in (1, 2, 3):
        assert f"run {n}" in run.stdout, run.stdout
    assert "succeeded" in run.stdout


async def test_top_during_a_back_off_waits_and_the_platform_keeps_answering(
    slow: Client,
) -> None:
    """``top`` of a job between two runs waits for the next run: it must not spin
    the daemon's loop (status and kill would never be answered)."""
    job = await _start(slow, "false", restart_policy="on-failure")
    await _until(
        slow,
        job.id,
        lambda j: j.history.restarts == 2 and j.history.reason == "Restarting",
    )

    async def read_top() -> None:
        # No run to sample until the kill; then the stream ends, and having
        # sampled nothing the client says the job is not running (as the SDK).
        with contextlib.suppress(IllegalArgumentError):
            async with slow.jobs.top(job.id) as samples:
                async for _ in samples:
                    pass

    top = asyncio.create_task(read_top())
    try:
        await asyncio.sleep(1)  # top is open and waiting for a run
        async with asyncio.timeout(10):
            assert (await slow.jobs.status(job.id)).status == JobStatus.RUNNING
            await slow.jobs.kill(job.id)
            await asyncio.wait_for(top, 10)  # ends with the job
    finally:
        top.cancel()
    done = await wait_finished(slow, job.id)
    assert done.status == JobStatus.CANCELLED


async def test_top_follows_the_job_into_its_next_run(
    fast: Client, fast_platform: Platform
) -> None:
    """Run 1 idles and fails; run 2 keeps a core busy. ``top``, opened during
    run 1, must report run 2's CPU, not keep sampling the ended run."""
    volume, _ = _state(fast_platform)
    command = (
        f"sh -c '{COUNT}echo run $n; "
        "if [ $n -ge 2 ]; then while :; do :; done; fi; sleep 2; exit 1'"
    )
    job = await _start(fast, command, volume, restart_policy="on-failure")
    try:
        await _until(fast, job.id, lambda j: j.status == JobStatus.RUNNING)
        busy = 0.0
        async with asyncio.timeout(60), fast.jobs.top(job.id) as samples:
            async for sample in samples:
                busy = max(busy, sample.cpu)
                if busy > 0.5:
                    break
        assert busy > 0.5
        assert (await fast.jobs.status(job.id)).history.restarts >= 1
    finally:
        await fast.jobs.kill(job.id)


def test_a_back_off_config_must_keep_a_pause_between_runs(tmp_path: Path) -> None:
    """A cap below the first wait is refused when the platform reads its config;
    a tiny cap still keeps failures counting for at least RESET_FLOOR seconds,
    so a crash loop never restarts without a pause."""
    paths = LocalPaths(tmp_path / "home")
    paths.home.mkdir(parents=True)
    paths.home.joinpath("config.json").write_text(
        '{"restart_backoff_seconds": 5, "restart_backoff_max_seconds": 1}'
    )
    with pytest.raises(ConfigError, match="must be at least the first"):
        Settings.load(paths)
    tiny = Backoff(first=0.001, cap=0.001)
    assert tiny.reset_after == RESET_FLOOR
    assert [tiny.delay(n) for n in (1, 2, 3)] == [0.0, 0.001, 0.001]
