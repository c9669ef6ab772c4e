"""What ``%apolo_run`` / ``%%apolo_job`` / ``%apolo_status`` do: start, then attach."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from IPython.core.error import UsageError

from ..client import (
    Client,
    ClientError,
    ConfigError,
    Container,
    HTTPPort,
    JobDescription,
    JobStatus,
    ResourceNotFound,
    Resources,
)
from ..kernel._options import JobOptions, parse_duration, parse_port_pair
from ..kernel._runtime import Runtime, runtime


def connect() -> tuple[Runtime, Client]:
    rt = runtime()
    try:
        return rt, rt.client()
    except (ClientError, ConfigError, RuntimeError, OSError) as exc:
        raise UsageError(
            f"no Apolo platform is reachable: {exc}. See the current one with "
            "%apolo_use, or start the local one: !apolo-jupyter local start"
        ) from None


@contextmanager
def known_job(job_id: str) -> Iterator[None]:
    """The platform's 404 for ``job_id`` as a UsageError that says what to do."""
    try:
        yield
    except ResourceNotFound:
        raise UsageError(
            f"unknown job {job_id!r}: list jobs with %apolo_ps --all"
        ) from None


def _checked(what: str, func: Any, *args: Any) -> Any:
    try:
        return func(*args)
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None


def start_job(o: JobOptions) -> JobDescription:
    rt, client = connect()
    image = _checked(f"image {o.image!r}", client.parse.remote_image, o.image)
    volumes = [_checked(f"-v {v!r}", client.parse.volume, v) for v in o.volumes]
    env = _checked("-e", client.parse.env, list(o.env))
    for pair in o.port_forwards:
        parse_port_pair(pair)
    life_span = parse_duration(o.life_span) if o.life_span else None
    presets = client.presets
    preset_name = o.preset or next(iter(presets), "")
    if preset_name not in presets:
        raise UsageError(
            f"unknown preset {o.preset!r}: choose one of {', '.join(presets)} (-s NAME)"
        )
    http = HTTPPort(o.http_port) if o.http_port else None
    try:
        if o.preemptible:
            preset = presets[preset_name]
            container = Container(
                image=image,
                resources=Resources(memory=preset.memory, cpu=preset.cpu),
                command=o.command,
                working_dir=o.workdir,
                http=http,
                env=env,
                volumes=volumes,
            )
            coro = client.jobs.run(
                container,
                name=o.name,
                tags=o.tags,
                life_span=life_span,
                scheduler_enabled=True,
                preemptible_node=True,
            )
        else:
            coro = client.jobs.start(
                image=image,
                preset_name=preset_name,
                command=o.command,
                working_dir=o.workdir,
                http=http,
                env=env,
                volumes=volumes,
                name=o.name,
                tags=o.tags,
                life_span=life_span,
            )
        job: JobDescription = rt.run(coro, timeout=60)
    except (ValueError, ClientError) as exc:
        raise UsageError(f"the platform refused the job: {exc}") from None
    for pair in o.port_forwards:
        local, remote = parse_port_pair(pair)
        rt.submit(_forward_while_running(client, job.id, local, remote))
        print(f"forwarding 127.0.0.1:{local} to port {remote} of {job.id}")
    return job


async def _forward_while_running(
    client: Client, job_id: str, local: int, remote: int
) -> None:
    async with client.jobs.watch(job_id) as updates:
        async for job in updates:
            if job.status == JobStatus.RUNNING:
                break
            if job.status.is_finished:
                return
    async with (
        client.jobs.port_forward(job_id, local, remote),
        client.jobs.watch(job_id) as updates,
    ):
        async for _ in updates:
            pass


def attach_job(job_id: str, o: JobOptions) -> JobDescription:
    from ..kernel._attach import follow  # widgets are loaded only when a job is shown

    rt, client = connect()
    with known_job(job_id):
        job = rt.run(client.jobs.status(job_id), timeout=30)
    result = follow(rt, client, job, o)
    if o.raise_ and result.status != JobStatus.SUCCEEDED:
        detail = " ".join(p for p in (result.reason, result.history.description) if p)
        raise RuntimeError(f"job {result.id} {result.status}: {detail}")
    sys.stdout.flush()
    return result
