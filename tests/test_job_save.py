"""``jobs.save``: the wire and the progress events as apolo_sdk, a cluster's
answers read right, and the local platform's refusal saying what to do instead.

A cluster's save stream is played by a stand-in monitoring service: the client
talks to the real local platform for everything else, and to it for ``save``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiodocker.exceptions
import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from apolo_jupyter import Client
from apolo_jupyter.client import (
    AbstractDockerImageProgress,
    DockerError,
    ImageCommitFinished,
    ImageCommitStarted,
    ImageProgressPull,
    ImageProgressPush,
    ImageProgressSave,
    ImageProgressStep,
    LocalImage,
)

from .conftest import Platform, start_job, wait_finished, wait_running


class Events(AbstractDockerImageProgress):
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def pull(self, data: ImageProgressPull) -> None:
        self.seen.append(data)

    def push(self, data: ImageProgressPush) -> None:
        self.seen.append(data)

    def step(self, data: ImageProgressStep) -> None:
        self.seen.append(data)

    def save(self, data: ImageProgressSave) -> None:
        self.seen.append(data)

    def commit_started(self, data: ImageCommitStarted) -> None:
        self.seen.append(data)

    def commit_finished(self, data: ImageCommitFinished) -> None:
        self.seen.append(data)


class Monitoring:
    """A cluster's monitoring service, for ``save`` only: it records each request
    and answers with the lines it is given."""

    def __init__(self) -> None:
        self.lines: list[Any] = []
        self.requests: list[tuple[str, Any, str]] = []
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None

    async def _save(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.headers.append(dict(request.headers))
        auth = request.headers.get("Authorization", "")
        self.requests.append((request.path, body, auth))
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        for line in self.lines:
            text = line if isinstance(line, str) else json.dumps(line)
            await resp.write(text.encode() + b"\n")
        await resp.write_eof()
        return resp

    async def start(self) -> URL:
        app = web.Application()
        app.router.add_post("/api/v1/monitoring/{id}/save", self._save)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return URL(f"http://127.0.0.1:{port}/api/v1/monitoring")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def cluster(client: Client) -> AsyncIterator[tuple[Client, Monitoring]]:
    """A client whose cluster's monitoring service is the stand-in."""
    monitoring = Monitoring()
    url = await monitoring.start()
    config = client.config
    name = config.cluster_name
    clusters = dict(config.clusters)
    clusters[name] = dataclasses.replace(clusters[name], monitoring_url=url)
    other = Client(dataclasses.replace(config, clusters=clusters))
    try:
        yield other, monitoring
    finally:
        await other.close()
        await monitoring.stop()


def _commit(image: str) -> list[Any]:
    return [
        {"status": "CommitStarted", "details": {"image": image, "container": "c1"}},
        {"status": "CommitFinished"},
    ]


PUSH = [
    {"status": "The push refers to repository [registry.invalid/local/default/saved]"},
    {"status": "Preparing", "progressDetail": {}, "id": "a1b2c3"},
    {
        "status": "Pushing",
        "progressDetail": {"current": 512, "total": 2048},
        "progress": "[=====>     ]  512B/2.048kB",
        "id": "a1b2c3",
    },
    {"status": "Pushed", "progressDetail": {}, "id": "a1b2c3"},
    {"status": "v1: digest: sha256:00ff size: 1234", "id": "v1"},
    {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": "sha256:00ff", "Size": 1234}},
]


async def test_a_cluster_save_sends_the_sdks_request_and_reports_every_step(
    cluster: tuple[Client, Monitoring],
) -> None:
    client, monitoring = cluster
    image = client.parse.remote_image("image:saved:v1")
    wire = image.as_docker_url()
    monitoring.lines = [*_commit(wire), *PUSH]
    events = Events()
    await client.jobs.save("job-1", image, progress=events)
    path, body, auth = monitoring.requests[0]
    assert path == "/api/v1/monitoring/job-1/save"
    assert body == {"container": {"image": wire}}
    assert "/" in wire and wire.endswith("/saved:v1")  # registry/org/project/name
    assert auth == f"Bearer {client.config.auth_token}"
    # Traced as apolo_sdk traces every request: zipkin's b3 and sentry's header.
    headers = monitoring.headers[0]
    trace, span = headers["b3"].split("-")
    assert re.fullmatch("[0-9a-f]{32}", trace) and re.fullmatch("[0-9a-f]{16}", span)
    assert headers["sentry-trace"] == f"{trace}-{span}-"
    assert events.seen[:4] == [
        ImageProgressSave("job-1", image),
        ImageCommitStarted("job-1", client.parse.remote_image(wire)),
        ImageCommitFinished("job-1"),
        ImageProgressPush(LocalImage(f"{image.project_name}/saved", "v1"), image),
    ]
    # One step per layer line; the tag's own summary line is not a layer.
    assert events.seen[4:] == [
        ImageProgressStep("a1b2c3: Preparing", "a1b2c3", "Preparing", None, None),
        ImageProgressStep(
            "a1b2c3: Pushing [=====>     ]  512B/2.048kB",
            "a1b2c3",
            "Pushing",
            512,
            2048,
        ),
        ImageProgressStep("a1b2c3: Pushed", "a1b2c3", "Pushed", None, None),
    ]


BROKEN: list[tuple[Callable[[str], list[Any]], int, str]] = [
    (lambda w: [{"status": "CommitFinished"}], 400, "expecting: 'CommitStarted'"),
    (lambda w: [{"details": {"image": w}}], 400, 'Missing required field: "status"'),
    (lambda w: [{"status": "CommitStarted"}], 400, "Missing required details: 'image'"),
    (
        lambda w: [_commit(w)[0], {"status": "Pushing"}],
        400,
        "expecting: 'CommitFinished'",
    ),
    (lambda w: [_commit(w)[0]], 400, "ended before the commit finished"),
    (lambda w: ["not json"], 400, "not a JSON line"),
    (
        lambda w: [{"error": "x", "errorDetail": {"message": "no space left"}}],
        900,
        "no space left",
    ),
    (
        lambda w: [
            *_commit(w),
            {"error": "denied", "errorDetail": {"message": "denied"}},
        ],
        900,
        "denied",
    ),
]


@pytest.mark.parametrize(("lines", "status", "message"), BROKEN)
async def test_a_failed_or_malformed_save_stream_raises_docker_error(
    cluster: tuple[Client, Monitoring],
    lines: Callable[[str], list[Any]],
    status: int,
    message: str,
) -> None:
    client, monitoring = cluster
    image = client.parse.remote_image("image:saved:v1")
    monitoring.lines = lines(image.as_docker_url())
    with pytest.raises(DockerError, match=message) as caught:
        await client.jobs.save("job-1", image)
    assert caught.value.status == status
    # Code written for apolo_sdk catches aiodocker's error: this is one too.
    assert isinstance(caught.value, aiodocker.exceptions.DockerError)
    assert message in caught.value.message


async def test_an_image_outside_the_platform_registry_is_refused_before_sending(
    cluster: tuple[Client, Monitoring],
) -> None:
    client, monitoring = cluster
    with pytest.raises(ValueError, match="must be in the platform registry"):
        await client.jobs.save("job-1", client.parse.remote_image("ubuntu:22.04"))
    assert monitoring.requests == []


async def test_the_local_platform_refuses_and_says_what_to_do_instead(
    client: Client,
) -> None:
    job = await start_job(client, "sleep 60")
    try:
        await wait_running(client, job.id)
        events = Events()
        image = client.parse.remote_image("image:saved:v1")
        with pytest.raises(DockerError, match="not in containers") as caught:
            await client.jobs.save(job.id, image, progress=events)
        assert "storage" in caught.value.message and caught.value.status == 900
        assert events.seen == [ImageProgressSave(job.id, image)]
    finally:
        await client.jobs.kill(job.id)
    await wait_finished(client, job.id)
    with pytest.raises(DockerError, match=f"{job.id} is cancelled, not running"):
        await client.jobs.save(job.id, image)


async def test_the_local_save_route_checks_its_input(
    platform: Platform, client: Client, http: aiohttp.ClientSession
) -> None:
    url = f"{platform.url}/monitoring/job-nope/save"
    good = {"container": {"image": "registry.invalid/local/default/x:v1"}}
    auth = {"Authorization": f"Bearer {platform.token}"}
    async with http.post(url, json=good) as resp:
        assert resp.status == 401
    async with http.post(url, json=good, headers=auth) as resp:
        assert resp.status == 404
    job = await start_job(client, "true")
    url = f"{platform.url}/monitoring/{job.id}/save"
    bad_bodies: list[Any] = [
        None,
        {},
        {"container": {}},
        {"container": {"image": 3}},
        [1],
    ]
    for bad in bad_bodies:
        async with http.post(url, json=bad, headers=auth) as resp:
            assert resp.status == 400, bad
            assert "container" in (await resp.json())["error"]
    await wait_finished(client, job.id)
