"""The kill route against a real ``jupyter server`` subprocess and the real platform.

This process plays the kernel: it registers its platform connection, as a view
does, in a registry directory shared with the server; the server kills jobs
through that platform, with Jupyter's authentication and XSRF checks.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from apolo_jupyter import Client, JobStatus
from apolo_jupyter.kernel import _platform_registry as platforms

from ._jupyter import Server, start_jupyter_server
from .conftest import Platform, dead_pid, start_job, wait_finished, wait_running

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def platforms_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("platforms")
    old = os.environ.get(platforms.ENV_DIR)
    os.environ[platforms.ENV_DIR] = str(path)
    yield path
    platforms.unregister_all_of_this_process()
    if old is None:
        del os.environ[platforms.ENV_DIR]
    else:
        os.environ[platforms.ENV_DIR] = old


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, platforms_dir: Path
) -> Iterator[Server]:
    s = start_jupyter_server(tmp_path_factory.mktemp("jupyter-kill"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def platform_id(platform: Platform, platforms_dir: Path) -> str:
    return platforms.register(platform.url, platform.token)


async def _sleeper(client: Client) -> str:
    job = await start_job(client, command="sleep 300")
    await wait_running(client, job.id)
    return job.id


def route(server: Server, platform_id: str, job_id: str) -> str:
    return f"{server.url}/{platforms.kill_path(platform_id, job_id)}"


async def test_kill_through_the_kernels_platform(
    http: aiohttp.ClientSession, server: Server, platform_id: str, client: Client
) -> None:
    job_id = await _sleeper(client)
    async with http.post(route(server, platform_id, job_id), headers=server.auth) as r:
        assert r.status == 202, await r.text()
        assert await r.json() == {"message": "kill requested", "job_id": job_id}
    assert (await wait_finished(client, job_id)).status == JobStatus.CANCELLED


async def test_a_browser_session_needs_the_xsrf_token(
    http: aiohttp.ClientSession, server: Server, platform_id: str, client: Client
) -> None:
    job_id = await _sleeper(client)
    async with http.get(f"{server.url}/api/status?token={server.token}") as r:
        assert r.status == 200  # now logged in by cookie, as a browser is
    url = route(server, platform_id, job_id)
    async with http.post(url) as r:
        assert r.status == 403  # the login cookie alone is not enough
    assert (await client.jobs.status(job_id)).status == JobStatus.RUNNING
    xsrf = secrets.token_hex(16)  # what the page reads from its _xsrf cookie
    http.cookie_jar.update_cookies({"_xsrf": xsrf}, response_url=URL(server.url))
    async with http.post(url, headers={"X-XSRFToken": xsrf}) as r:
        assert r.status == 202, await r.text()
    assert (await wait_finished(client, job_id)).status == JobStatus.CANCELLED


async def test_unauthenticated_requests_are_refused(
    http: aiohttp.ClientSession, server: Server, platform_id: str, client: Client
) -> None:
    job_id = await _sleeper(client)
    try:
        for headers in ({}, {"Authorization": "token wrong"}):
            async with http.post(
                route(server, platform_id, job_id), headers=headers
            ) as r:
                assert r.status == 403
            async with http.get(
                route(server, platform_id, job_id), headers=headers
            ) as r:
                assert r.status in (403, 405)
        assert (await client.jobs.status(job_id)).status == JobStatus.RUNNING
    finally:
        await client.jobs.kill(job_id)


async def test_unknown_platforms_jobs_and_ids_say_what_to_do(
    http: aiohttp.ClientSession, server: Server, platform_id: str
) -> None:
    unknown = "x" * 22
    async with http.post(route(server, unknown, "job-1"), headers=server.auth) as r:
        assert r.status == 404
        message = (await r.json())["message"]
        assert "does not know the kernel's platform" in message
        assert "%apolo_kill job-1" in message
    missing = "job-00000000-0000-0000-0000-000000000000"
    async with http.post(route(server, platform_id, missing), headers=server.auth) as r:
        assert r.status == 404
        assert f"no job {missing}" in (await r.json())["message"]
    for bad in (
        f"apolo/platforms/{platform_id}/jobs/..%2Fx/kill",
        "apolo/platforms/short/jobs/job-1/kill",
    ):
        async with http.post(f"{server.url}/{bad}", headers=server.auth) as r:
            assert r.status == 404  # no route: the pattern refuses it


def test_a_dead_kernels_record_is_stale(platforms_dir: Path) -> None:
    pid = dead_pid()
    record_id = platforms.register(
        "http://127.0.0.1:1/api/v1", "token-of-a-dead-kernel"
    )
    path = platforms_dir / f"{record_id}.json"
    data = json.loads(path.read_text())
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(platforms_dir.stat().st_mode & 0o777) == "0o700"
    assert platforms.lookup(record_id) is not None
    data["pid"] = pid
    path.write_text(json.dumps(data))
    assert platforms.lookup(record_id) is None
    assert not path.exists()


def test_register_once_per_platform_and_token(platforms_dir: Path) -> None:
    first = platforms.register("http://127.0.0.1:2/api/v1", "t1")
    assert platforms.register("http://127.0.0.1:2/api/v1", "t1") == first
    assert platforms.register("http://127.0.0.1:2/api/v1", "t2") != first
    (platforms_dir / f"{first}.json").unlink()  # gone: registered afresh
    again = platforms.register("http://127.0.0.1:2/api/v1", "t1")
    assert again != first and platforms.lookup(again) is not None
    assert platforms.lookup("../" + "a" * 20) is None
