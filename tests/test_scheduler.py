"""Capacity, preemption and life span: the pure policy, then on a real platform."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from apolo_jupyter import (
    Client,
    Container,
    IllegalArgumentError,
    JobStatus,
    Resources,
    get,
)
from apolo_jupyter.local._scheduler import Capacity, Demand, plan

from .conftest import Gate, Platform, wait_finished, wait_running

GiB = 2**30
CAP = Capacity(cpu=2.0, memory=4 * GiB)


def _d(
    job_id: str, cpu: float = 1.0, preemptible: bool = False, **kw: object
) -> Demand:
    fields: dict[str, Any] = {"created": job_id, **kw}
    return Demand(job_id, cpu, GiB, preemptible, **fields)


def test_fifo_within_capacity() -> None:
    decision = plan([_d("a"), _d("b"), _d("c")], [], set(), CAP)
    assert decision.start == ["a", "b"]
    assert "needs 1 CPU" in decision.waiting["c"]


def test_a_wait_names_the_jobs_holding_the_room_and_how_to_free_it() -> None:
    holding = [_d("a", name="my-run"), _d("b")]
    why = plan([_d("c")], holding, set(), CAP).waiting["c"]
    assert why == (
        "waiting for room (CPU): needs 1 CPU and 1.0 GiB; in use 2 of 2 CPU and "
        "2.0 of 4.0 GiB by a (my-run), b; kill one with apolo-jupyter kill a "
        "(%apolo_kill a in a notebook)"
    )


def test_a_wait_names_at_most_three_holders_in_bounded_words() -> None:
    cap = Capacity(cpu=6.0, memory=64 * GiB)
    holding = [_d(f"job-{i:036d}", name="n" * 40, created=f"t{i}") for i in range(6)]
    why = plan([_d("late", created="t9")], holding, set(), cap).waiting["late"]
    assert f"job-{0:036d} ({'n' * 40}), job-{1:036d}" in why
    assert f"job-{2:036d} ({'n' * 40}) +3 more;" in why
    assert f"job-{3:036d}" not in why
    assert len(why) < 500, len(why)


def test_a_wait_names_only_holders_of_what_it_lacks() -> None:
    cap = Capacity(cpu=8.0, memory=64 * GiB, gpus=("A100",))
    holding = [_d("cpu-job", created="1"), _d("gpu-job", created="2", gpus=(0,))]
    waiting = _d("needs-gpu", created="3", nvidia_gpu=1)
    why = plan([waiting], holding, set(), cap).waiting["needs-gpu"]
    assert "by gpu-job; kill one with apolo-jupyter kill gpu-job" in why
    assert "cpu-job" not in why
    # A holder that is already stopping is not offered for a kill.
    why = plan([waiting], holding, {"gpu-job"}, cap).waiting["needs-gpu"]
    assert why.endswith("by jobs that are stopping") and "kill" not in why


def test_regular_job_preempts_the_newest_preemptible_one() -> None:
    holding = [_d("p1", preemptible=True), _d("p2", preemptible=True)]
    decision = plan([_d("r")], holding, set(), CAP)
    assert decision.preempt == [("p2", "r")]
    assert decision.start == []
    assert decision.waiting["r"].startswith("preempting 1")


def test_preemptible_job_never_preempts() -> None:
    holding = [_d("r1"), _d("p1", preemptible=True)]
    decision = plan([_d("p2", preemptible=True)], holding, set(), CAP)
    assert decision.preempt == [] and decision.start == []
    holding = [_d("r1"), _d("r2")]
    decision = plan([_d("r3")], holding, set(), CAP)
    assert decision.preempt == []


def test_regular_jobs_do_not_wait_behind_preemptible_ones() -> None:
    decision = plan([_d("p", 2.0, preemptible=True), _d("r")], [_d("x")], set(), CAP)
    assert decision.start == ["r"]
    assert "p" in decision.waiting


def test_a_stopping_victim_is_not_preempted_twice() -> None:
    holding = [_d("p1", preemptible=True), _d("p2", preemptible=True)]
    decision = plan([_d("r")], holding, {"p2"}, CAP)
    assert decision.preempt == [("p1", "r")]


# -- on a real platform with 2 CPUs ---------------------------------------------


@pytest.fixture
def small_platform(tmp_path: Path) -> Iterator[Platform]:
    plat = Platform(
        tmp_path / "home",
        capacity={"cpu": 2, "memory": 64 * GiB},
        minute_seconds=1.0,
        kill_grace=1.0,
    )
    yield plat
    plat.stop()


@pytest.fixture
async def small(small_platform: Platform) -> AsyncIterator[Client]:
    async with get(small_platform.url, small_platform.token, quiet=True) as client:
        yield client


async def _start(
    client: Client, command: str, preset: str = "cpu-small", **kw: object
) -> str:
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name=preset,
        command=command,
        **kw,  # type: ignore[arg-type]
    )
    return job.id


async def test_no_more_jobs_run_than_capacity_allows(
    small: Client, small_platform: Platform
) -> None:
    # The jobs wait for the gate: the first two surely run together, the others
    # surely wait for them.
    gate = Gate(small_platform)
    volumes = [small.parse.volume(gate.volume)]
    ids = [
        await _start(small, f"sh -c '{gate.WAIT}'", volumes=volumes) for _ in range(5)
    ]
    async with asyncio.timeout(60):  # both fit: neither may stay pending
        for job_id in ids[:2]:
            assert (await wait_running(small, job_id)).status == JobStatus.RUNNING
    gate.open()
    running_at_once = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # One list is one snapshot; five status calls in a row are not (a job can
        # end and the next start between two of them).
        async with small.jobs.list(statuses={JobStatus.RUNNING}) as listed:
            running = [job async for job in listed]
        running_at_once = max(running_at_once, len(running))
        assert running_at_once <= 2, [job.id for job in running]
        jobs = [await small.jobs.status(i) for i in ids]
        if all(j.status.is_finished for j in jobs):
            break
        await asyncio.sleep(0.05)
    finals = [await small.jobs.status(i) for i in ids]
    assert all(j.status == JobStatus.SUCCEEDED for j in finals)
    # Polling can miss a moment; the recorded transitions cannot.
    edges = []
    for job in finals:
        items = job.history.transitions
        began = next(t.transition_time for t in items if t.status == JobStatus.RUNNING)
        edges += [(began, 1), (items[-1].transition_time, -1)]
    at_once = peak = 0
    for _, step in sorted(edges):  # at the same instant, an end comes first
        at_once += step
        peak = max(peak, at_once)
    assert peak == 2, sorted(edges)  # the capacity is used, and never exceeded
    waited = finals[-1].history.transitions
    assert any(
        t.reason == "WaitingForCapacity" and "needs 1 CPU" in t.description
        for t in waited
    )


async def _reason_once(client: Client, job_id: str, has: str) -> str:
    """The job's pending description, once it contains ``has``."""
    async with asyncio.timeout(60), client.jobs.watch(job_id) as updates:
        async for job in updates:
            assert job.status == JobStatus.PENDING, job.history
            if has in job.history.description:
                return job.history.description
    raise AssertionError(f"{job_id} never said {has!r}")


async def test_a_waiting_job_names_who_holds_the_room_as_it_changes(
    small: Client,
) -> None:
    holder_a = await _start(small, "sleep 300", name="holder-a")
    holder_b = await _start(small, "sleep 300")
    for job_id in (holder_a, holder_b):
        await wait_running(small, job_id)
    waiting = await _start(small, "true", preset="cpu-medium")  # needs both CPUs
    why = await _reason_once(small, waiting, "by ")
    assert f"in use 2 of 2 CPU and 2.0 of 64.0 GiB by {holder_a} (holder-a), " in why
    assert f", {holder_b}; kill one with apolo-jupyter kill {holder_a} " in why
    assert f"(%apolo_kill {holder_a} in a notebook)" in why
    # One holder gone, still no room: the reason names the one left, not a
    # finished job.
    await small.jobs.kill(holder_a)
    why = await _reason_once(small, waiting, f"by {holder_b};")
    assert holder_a not in why and "in use 1 of 2 CPU" in why
    await small.jobs.kill(holder_b)
    assert (await wait_finished(small, waiting)).status == JobStatus.SUCCEEDED


async def test_too_big_for_the_machine_is_refused(small: Client) -> None:
    with pytest.raises(IllegalArgumentError, match="more than the local platform has"):
        await _start(small, "true", preset="cpu-large")


async def test_preemption_suspends_restarts_and_finishes(
    small: Client, tmp_path: Path
) -> None:
    preemptible = await _start(
        small, "sh -c 'echo start; sleep 2'", preset="cpu-small-p"
    )
    await wait_running(small, preemptible)
    regular = await _start(small, "sleep 1.5", preset="cpu-medium")  # needs both CPUs
    # Counted when it is suspended, as the platform counts a suspended item.
    restarts_when_suspended = None
    async with asyncio.timeout(60), small.jobs.watch(preemptible) as updates:
        async for seen in updates:
            if seen.status == JobStatus.SUSPENDED:
                restarts_when_suspended = seen.history.restarts
                break
    assert restarts_when_suspended == 1
    job = await wait_finished(small, regular)
    assert job.status == JobStatus.SUCCEEDED
    final = await wait_finished(small, preemptible)
    assert final.status == JobStatus.SUCCEEDED
    statuses = [t.status for t in final.history.transitions]
    assert JobStatus.SUSPENDED in statuses
    suspended = next(
        t for t in final.history.transitions if t.status == JobStatus.SUSPENDED
    )
    assert suspended.reason == "Preempted" and regular in suspended.description
    assert final.history.restarts == 1
    assert statuses.count(JobStatus.RUNNING) == 2
    # The regular job only ran after the preemptible one was suspended.
    ran = next(t for t in job.history.transitions if t.status == JobStatus.RUNNING)
    assert ran.transition_time >= suspended.transition_time


async def test_regular_job_is_never_preempted(small: Client) -> None:
    regular = await _start(small, "sleep 1", preset="cpu-medium")
    await wait_running(small, regular)
    waiting = await _start(small, "true", preset="cpu-small-p")
    assert (await wait_finished(small, regular)).status == JobStatus.SUCCEEDED
    job = await wait_finished(small, waiting)
    assert job.status == JobStatus.SUCCEEDED
    regular_job = await small.jobs.status(regular)
    assert JobStatus.SUSPENDED not in [
        t.status for t in regular_job.history.transitions
    ]


async def test_killed_while_suspended_ends_cancelled(small: Client) -> None:
    preemptible = await _start(small, "sleep 30", preset="cpu-small-p")
    await wait_running(small, preemptible)
    regular = await _start(small, "sleep 3", preset="cpu-medium")
    async with small.jobs.watch(preemptible) as updates:
        async for job in updates:
            if job.status == JobStatus.SUSPENDED:
                break
    await small.jobs.kill(preemptible)
    job = await small.jobs.status(preemptible)
    assert job.status == JobStatus.CANCELLED and job.reason == "UserRequested"
    await small.jobs.kill(regular)


async def test_life_span_stops_a_job_on_time(small: Client) -> None:
    # minute_seconds=1 in this platform's config: a 2-minute life span lasts 2 s.
    job_id = await small.jobs.run(
        Container(
            image=small.parse.remote_image("ubuntu"),
            resources=Resources(memory_mb=64, cpu=0.1),
            command="sleep 120",
        ),
        life_span=120,
    )
    job = await wait_finished(small, job_id.id)
    assert job.status == JobStatus.CANCELLED
    assert job.reason == "LifeSpanEnded"
    assert job.history.started_at and job.history.finished_at
    ran = (job.history.finished_at - job.history.started_at).total_seconds()
    # Not before its 2 s; after them, the kill grace (1 s) and headroom for a
    # loaded machine, still far short of the job's own 120 s.
    assert 1.9 <= ran <= 2 + 1 + 30


async def test_bump_life_span_extends_it(small: Client) -> None:
    job_id = await _start(small, "sleep 3", life_span=120)  # 2 s at this scale
    await wait_running(small, job_id)
    await small.jobs.bump_life_span(job_id, 300)  # +5 "minutes": 7 s in all
    job = await wait_finished(small, job_id)
    assert job.status == JobStatus.SUCCEEDED
