"""No request stalls or corrupts the platform (issue 12, items 5 to 7): every
malformed job request gets a 4xx that says what is wrong, big ones are refused
before any expensive work, and a refused request changes nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import psutil
import pytest

from apolo_jupyter import JobStatus, get

from ..conftest import Platform, start_job, wait_running
from ._helpers import auth, finished, job_body, post_job, tracebacks

NESTED = "[" * 100_000 + "]" * 100_000
BIG = "a" * 900_000


def _with(**container: Any) -> dict[str, Any]:
    return job_body("true", **container)


def _resources(**resources: Any) -> dict[str, Any]:
    return _with(resources=resources)


CASES: list[tuple[str, Any, str]] = [
    ("cpu NaN", _resources(cpu=float("nan"), memory=2**26), "resources.cpu"),
    ("cpu inf", _resources(cpu=float("inf"), memory=2**26), "resources.cpu"),
    ("cpu negative", _resources(cpu=-1, memory=2**26), "resources.cpu"),
    ("cpu string", _resources(cpu="1", memory=2**26), "resources.cpu"),
    ("cpu true", _resources(cpu=True, memory=2**26), "resources.cpu"),
    ("memory zero", _resources(cpu=0.5, memory=0), "resources.memory"),
    ("memory huge", _resources(cpu=0.5, memory=10**400), "resources.memory"),
    ("memory float", _resources(cpu=0.5, memory=1e400), "resources.memory"),
    (
        "never fits",
        _resources(cpu=10**5, memory=2**26),
        "more than the local platform has",
    ),
    ("resources list", _with(resources=[1]), "container.resources must be an object"),
    ("http string", _with(http="8080"), "container.http must be an object"),
    ("http list", _with(http=[8080]), "container.http must be an object"),
    ("http port text", _with(http={"port": "x"}), "container.http.port"),
    ("http port range", _with(http={"port": 70000}), "container.http.port"),
    (
        "http auth text",
        _with(http={"port": 80, "requires_auth": "no"}),
        "requires_auth",
    ),
    ("tty text", _with(tty="yes"), "tty must be true or false"),
    (
        "volume NUL",
        _with(
            volumes=[
                {
                    "src_storage_uri": "storage://local/local/default/a\0b",
                    "dst_path": "/mnt/a",
                }
            ]
        ),
        "NUL",
    ),
    (
        "volume %00",
        _with(
            volumes=[
                {
                    "src_storage_uri": "storage://local/local/default/a%00b",
                    "dst_path": "/mnt/a",
                }
            ]
        ),
        "NUL",
    ),
    (
        "volume dst NUL",
        _with(
            volumes=[
                {
                    "src_storage_uri": "storage://local/local/default/a",
                    "dst_path": "/mnt/\0a",
                }
            ]
        ),
        "NUL",
    ),
    (
        "volume dst ..",
        _with(
            volumes=[
                {
                    "src_storage_uri": "storage://local/local/default/a",
                    "dst_path": "/mnt/../etc",
                }
            ]
        ),
        "'..'",
    ),
    (
        "volume read_only text",
        _with(
            volumes=[
                {
                    "src_storage_uri": "storage://local/local/default/a",
                    "dst_path": "/mnt/a",
                    "read_only": "false",
                }
            ]
        ),
        "read_only must be true or false",
    ),
    (
        "volume src number",
        _with(volumes=[{"src_storage_uri": 5, "dst_path": "/mnt/a"}]),
        "volume source must be a string",
    ),
    ("volumes not a list", _with(volumes="x"), "volumes must be a list"),
    (
        "3000 volumes",
        _with(
            volumes=[
                {
                    "src_storage_uri": f"storage://local/local/default/v{i}",
                    "dst_path": f"/mnt/v{i}",
                }
                for i in range(3000)
            ]
        ),
        "the limit is 100",
    ),
    ("command NUL", job_body("echo a\0b"), "NUL"),
    ("command huge", job_body(BIG), "the limit is 65536"),
    ("command number", job_body(5), "command must be a string"),
    ("command unclosed", job_body("echo 'a"), "No closing quotation"),
    ("entrypoint list", _with(entrypoint=["a"]), "entrypoint must be a string"),
    ("working_dir NUL", _with(working_dir="/tmp\0"), "NUL"),
    ("working_dir relative", _with(working_dir="tmp"), "must be absolute"),
    (
        "image huge",
        {
            **job_body("true"),
            "container": {**job_body("true")["container"], "image": "a" * 100_000},
        },
        "the limit is 512",
    ),
    ("env value number", _with(env={"A": 1}), "env entry"),
    ("env NUL", _with(env={"A": "x\0"}), "NUL"),
    ("env many", _with(env={f"V{i}": "x" for i in range(2000)}), "the limit is 1000"),
    ("env list", _with(env=["A=1"]), "env must be an object"),
    (
        "tags many",
        {**job_body("true"), "tags": [f"t{i}" for i in range(1000)]},
        "at most 100",
    ),
    ("tag blank", {**job_body("true"), "tags": ["a b"]}, "without blanks"),
    ("name number", {**job_body("true"), "name": 5}, "name must be a string"),
    (
        "life span true",
        {**job_body("true"), "max_run_time_minutes": True},
        "max_run_time_minutes",
    ),
    (
        "life span huge",
        {**job_body("true"), "max_run_time_minutes": 10**400},
        "max_run_time_minutes",
    ),
    (
        "schedule_timeout text",
        {**job_body("true"), "schedule_timeout": "x"},
        "schedule_timeout",
    ),
    (
        "priority object",
        {**job_body("true"), "priority": {}},
        "priority must be a string",
    ),
    (
        "restart list",
        {**job_body("true"), "restart_policy": []},
        "restart_policy must be a string",
    ),
    (
        "preemptible text",
        {**job_body("true"), "preemptible_node": "false"},
        "preemptible_node must be true or false",
    ),
    ("body a list", [], "must be a JSON object"),
    ("body not JSON", "{", "not valid JSON"),
    ("body nested", NESTED, "nested too deeply"),
]


async def test_every_malformed_job_request_is_a_clear_400(
    own_platform: Platform,
) -> None:
    url, token = own_platform.url, own_platform.token
    async with aiohttp.ClientSession() as session:
        for name, body, message in CASES:
            data = body if isinstance(body, str) else json.dumps(body)
            status, answer = await post_job(session, url, token, data)
            assert status == 400, (name, status, answer)
            assert message in answer["error"], (name, answer)
        async with session.get(f"{url}/jobs", headers=auth(token)) as resp:
            assert (await resp.json())["jobs"] == []  # nothing was created
    assert tracebacks(own_platform.paths.log_file) == []


async def test_big_requests_never_hold_the_platform(own_platform: Platform) -> None:
    """Big requests are refused with little work, and meanwhile the platform
    answers and pushes the status changes of other jobs. The work is measured as
    the daemon's CPU time, which a loaded machine does not inflate as it does
    wall-clock time; how fast refusals are is bench/bench_refusals.py's figure."""
    url, token = own_platform.url, own_platform.token
    big = [
        job_body(BIG),
        _with(
            volumes=[
                {
                    "src_storage_uri": f"storage://local/local/default/v{i}",
                    "dst_path": f"/mnt/v{i}",
                }
                for i in range(3000)
            ]
        ),
    ] * 3
    pings: list[int] = []
    stop = asyncio.Event()

    async def ping(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            async with session.get(f"{url}/config", headers=auth(token)) as resp:
                pings.append(resp.status)
            await asyncio.sleep(0.02)

    daemon = psutil.Process(own_platform.info.pid)
    async with (
        aiohttp.ClientSession() as session,
        get(url, token, quiet=True) as client,
    ):
        pinger = asyncio.create_task(ping(session))
        job = await start_job(client, command="sleep 1")
        before = sum(daemon.cpu_times()[:2])
        answers = await asyncio.gather(*(post_job(session, url, token, b) for b in big))
        used = sum(daemon.cpu_times()[:2]) - before
        assert (await finished(client, job.id)).status == JobStatus.SUCCEEDED
        stop.set()
        await pinger
    assert all(status == 400 for status, _ in answers), answers
    assert all("the limit is" in answer["error"] for _, answer in answers), answers
    assert pings and set(pings) == {200}, pings
    # Reading and refusing 6 requests of ~1 MB takes well under a second of CPU;
    # splitting one 900 kB command with shlex took several.
    assert used < 5, used


async def test_a_refused_life_span_bump_changes_nothing(tmp_path: Any) -> None:
    plat = Platform(tmp_path / "home", minute_seconds=1.0)
    try:
        async with (
            aiohttp.ClientSession() as session,
            get(plat.url, plat.token, quiet=True) as client,
        ):
            job = await start_job(
                client,
                command="sleep 60",
                life_span=120,  # two (one-second) minutes
            )
            await wait_running(client, job.id)
            bump = f"{plat.url}/jobs/{job.id}/max_run_time_minutes"
            for body in (
                '{"additional_max_run_time_minutes": 1' + "0" * 400 + "}",
                '{"additional_max_run_time_minutes": true}',
                '{"max_run_time_minutes": 0}',
                '{"max_run_time_minutes": 1.5}',
                '{"max_run_time_minutes": 5, "other": 1}',
                '{"something": 5}',
                "[]",
                "[" * 100_000,
            ):
                async with session.put(
                    bump, data=body, headers=auth(plat.token)
                ) as resp:
                    assert resp.status == 400, (body[:60], await resp.text())
            assert (await client.jobs.status(job.id)).life_span == 120
            done = await finished(client, job.id)
            assert (done.status, done.reason) == (JobStatus.CANCELLED, "LifeSpanEnded")
        assert tracebacks(plat.paths.log_file) == []
    finally:
        plat.stop()


@pytest.mark.parametrize("cpu", [float("nan"), 0.05])
async def test_a_job_that_cannot_run_never_blocks_the_queue(
    own_platform: Platform, cpu: float
) -> None:
    url, token = own_platform.url, own_platform.token
    async with (
        aiohttp.ClientSession() as session,
        get(url, token, quiet=True) as client,
    ):
        status, _ = await post_job(
            session, url, token, _resources(cpu=cpu, memory=2**26)
        )
        assert status == 400
        job = await start_job(client, command="true")
        assert (await finished(client, job.id, 30)).status == JobStatus.SUCCEEDED


async def test_every_json_route_refuses_a_body_nested_too_deeply(
    own_platform: Platform,
) -> None:
    """Parsing JSON nested ~100,000 levels deep exhausts Python's recursion: each
    route that reads a JSON body answers a 400 that says so, never a 500."""
    url, token = own_platform.url, own_platform.token
    async with get(url, token, quiet=True) as client:
        job = await start_job(client, "sleep 60")
        try:
            async with aiohttp.ClientSession() as session:
                for path in (
                    "/secrets",
                    "/disk",
                    f"/monitoring/{job.id}/save",
                    f"/jobs/{job.id}/max_run_time_minutes",
                ):
                    method = "PUT" if path.endswith("minutes") else "POST"
                    async with session.request(
                        method, url + path, data=NESTED, headers=auth(token)
                    ) as resp:
                        answer = await resp.text()
                        assert resp.status == 400, (path, resp.status, answer)
                        assert "nested too deeply" in answer, (path, answer)
        finally:
            await client.jobs.kill(job.id)
    assert tracebacks(own_platform.paths.log_file) == []
