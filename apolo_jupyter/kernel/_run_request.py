"""From ``JobOptions`` to the platform's job request, computed as ``apolo run`` does.

The magics, ``apolo-jupyter run`` and the launcher all go through ``plan_run`` and
``submit``, so one line gives the same job whichever way it was typed, and the same
job as the official ``apolo run`` (a test compares the three records).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from ..client import (
    Client,
    Container,
    DiskVolume,
    HTTPPort,
    JobDescription,
    JobPriority,
    JobRestartPolicy,
    ResourceNotFound,
)
from ..client._image_parser import IMAGE_EXAMPLES, ImageNameError
from ..client._job_names import JOB_NAME_RULE, job_name_ok
from ._options import JobOptions, parse_duration, parse_port_pair
from ._run_options import refused_locally

DEFAULT_LIFE_SPAN = "1d"  # apolo run's, unless the user config says otherwise
PASS_CONFIG_ENV = "APOLO_PASSED_CONFIG"  # noqa: S105 (a variable name)
_DISK_ID = re.compile(
    r"disk-[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}"
)


@dataclass(frozen=True)
class RunPlan:
    """A checked request: ``start`` holds the ``client.jobs.start`` keywords."""

    start: Mapping[str, Any]
    preemptible: bool = False
    share: tuple[str, ...] = ()
    detach: bool = False
    port_forwards: tuple[tuple[int, int], ...] = ()
    notes: tuple[str, ...] = field(default=())


def user_life_span(env: Mapping[str, str] | None = None) -> str:
    """``[job] life-span`` of apolo-cli's user config, else ``1d`` (as apolo run)."""
    env = os.environ if env is None else env
    folder = Path(env.get("APOLO_CONFIG", "~/.apolo")).expanduser()
    for path in (folder / "user.toml", Path(".apolo.toml")):
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        value = data.get("job", {}).get("life-span")
        if isinstance(value, str):
            return value
    return DEFAULT_LIFE_SPAN


def _checked(what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{what}: {exc}") from None


def _local_refusals(client: Client, o: JobOptions) -> None:
    if not client.config.local:
        return
    names = ("privileged", "energy_schedule", "browse", "restart", "schedule_timeout")
    values = {name: getattr(o, name) for name in names}
    values["share"] = tuple(o.share)
    problems = refused_locally(values)
    if problems:
        raise UsageError(
            "; ".join(problems)
            + ". Drop it to run here; a real cluster gets it as it is."
        )


def _check_combinations(o: JobOptions) -> None:
    if o.http_auth is not None and not o.http_port:
        flag = "--http-auth" if o.http_auth else "--no-http-auth"
        raise UsageError(f"{flag} requires --http-port (a port, not 0)")
    if o.browse and not o.http_port:
        raise UsageError("--browse requires --http-port")
    if o.browse and not o.wait_start:
        raise UsageError("Cannot use --browse and --no-wait-start together")
    if o.preemptible and (o.privileged or o.energy_schedule or o.cluster):
        raise UsageError(
            "--preemptible starts the job with the preset's resources through "
            "jobs.run, which takes no --privileged, --energy-schedule or --cluster: "
            "drop them, or pick a preemptible preset instead of --preemptible"
        )


async def _disk_ids(
    client: Client, disks: list[DiskVolume], cluster: str | None
) -> list[DiskVolume]:
    """``disk:NAME`` becomes ``disk:<its id>``, as apolo run resolves it."""
    out = []
    for disk in disks:
        last = disk.disk_uri.name
        if not _DISK_ID.fullmatch(last):
            try:
                found = await client.disks.get(last, cluster_name=cluster)
            except ResourceNotFound:
                raise UsageError(
                    f"-v {disk.disk_uri}: no disk named {last!r}; create one with "
                    "apolo-jupyter disk create SIZE --name NAME (or list them: "
                    "apolo-jupyter disk ls)"
                ) from None
            disk = replace(disk, disk_uri=disk.disk_uri.parent / found.id)
        out.append(disk)
    return out


def _life_span(o: JobOptions) -> float | None:
    text = o.life_span if o.life_span is not None else user_life_span()
    seconds = parse_duration(text, "--life-span")
    return seconds or None


async def plan_run(client: Client, o: JobOptions) -> RunPlan:
    """Check ``o`` and build the request; UsageError says what to fix."""
    _check_combinations(o)
    _local_refusals(client, o)
    cluster = o.cluster or client.config.cluster_name
    try:
        image = client.parse.remote_image(o.image, cluster_name=cluster)
    except ImageNameError:
        raise UsageError(
            f"image {o.image!r} is not an image name: {IMAGE_EXAMPLES}"
        ) from None
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"image {o.image!r}: {exc}") from None
    if o.name is not None and not job_name_ok(o.name):
        raise UsageError(f"job name {o.name!r} is invalid: {JOB_NAME_RULE} (-n NAME)")
    presets = client.config.get_cluster(cluster).presets
    preset_name = o.preset or next(iter(presets), "")
    if preset_name not in presets:
        raise UsageError(
            f"unknown preset {o.preset!r}: choose one of {', '.join(presets)} (-s NAME)"
        )
    envs = _checked("-e/--env-file", client.parse.envs, o.env, o.env_files, cluster)
    if o.pass_config and PASS_CONFIG_ENV in envs.env:
        raise UsageError(
            f"{PASS_CONFIG_ENV} is already set to {envs.env[PASS_CONFIG_ENV]!r}: "
            "drop it from -e, --pass-config sets it"
        )
    mounts = _checked("-v", client.parse.volumes, list(o.volumes), cluster)
    forwards = tuple(parse_port_pair(pair) for pair in o.port_forwards)
    schedule_timeout = (
        parse_duration(o.schedule_timeout, "--schedule-timeout", 0) or None
        if o.schedule_timeout
        else None
    )
    start: dict[str, Any] = dict(
        image=image,
        preset_name=preset_name,
        cluster_name=cluster,
        org_name=o.org,
        entrypoint=o.entrypoint,
        command=o.command,
        working_dir=o.workdir,
        http=HTTPPort(o.http_port, o.http_auth is not False) if o.http_port else None,
        env=envs.env,
        volumes=list(mounts.volumes),
        secret_env=envs.secret_env,
        secret_files=list(mounts.secret_files),
        disk_volumes=await _disk_ids(client, list(mounts.disk_volumes), cluster),
        tty=bool(o.tty),
        shm=o.extshm,
        pass_config=o.pass_config,
        wait_for_jobs_quota=o.wait_for_seat,
        name=o.name,
        tags=list(o.tags),
        description=o.description,
        restart_policy=JobRestartPolicy(o.restart),
        life_span=_life_span(o),
        schedule_timeout=schedule_timeout,
        privileged=o.privileged,
        priority=JobPriority[o.priority.upper()] if o.priority else None,
        energy_schedule_name=o.energy_schedule,
        project_name=o.project or client.config.project_name,
    )
    return RunPlan(
        start=start,
        preemptible=o.preemptible,
        share=tuple(o.share),
        detach=o.detach or not o.wait_start,
        port_forwards=forwards,
    )


async def submit(client: Client, plan: RunPlan) -> JobDescription:
    """Send the request (``jobs.start``, or ``jobs.run`` for ``--preemptible``)."""
    if not plan.preemptible:
        return await client.jobs.start(**plan.start)
    s = plan.start
    preset = client.config.get_cluster(s["cluster_name"]).presets[s["preset_name"]]
    container = Container(
        image=s["image"],
        resources=preset.resources(shm=s["shm"]),  # every resource: GPUs too
        entrypoint=s["entrypoint"],
        command=s["command"],
        working_dir=s["working_dir"],
        http=s["http"],
        env=s["env"],
        volumes=s["volumes"],
        secret_env=s["secret_env"],
        secret_files=s["secret_files"],
        disk_volumes=s["disk_volumes"],
        tty=s["tty"],
    )
    return await client.jobs.run(
        container,
        name=s["name"],
        tags=s["tags"],
        description=s["description"],
        scheduler_enabled=True,
        pass_config=s["pass_config"],
        wait_for_jobs_quota=s["wait_for_jobs_quota"],
        schedule_timeout=s["schedule_timeout"],
        restart_policy=s["restart_policy"],
        life_span=s["life_span"],
        org_name=s["org_name"],
        priority=s["priority"],
        project_name=s["project_name"],
        preemptible_node=True,
    )
