"""A job as text: the `apolo run` line that starts it again, and what
`apolo status` prints about it."""

from __future__ import annotations

import shlex
from datetime import datetime

from ..client import Client, JobDescription, JobPriority, JobRestartPolicy
from ..kernel._run_request import PASS_CONFIG_ENV
from ._ps import short_image


def timedelta_text(seconds: float) -> str:
    """``1d2h3m4s`` (``0`` for none), the form ``--life-span`` reads."""
    total = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0"


def run_args(job: JobDescription) -> list[str]:
    """The options and words of `apolo run` that start ``job`` again."""
    c = job.container
    args: list[str] = []
    if job.preset_name:
        args += ["--preset", job.preset_name]
    if not c.resources.shm:
        args.append("--no-extshm")
    if c.http is None:
        args += ["--http-port", "0"]  # apolo run's default would add port 80
    else:
        if c.http.port != 80:
            args += ["--http-port", str(c.http.port)]
        if not c.http.requires_auth:
            args.append("--no-http-auth")
    if job.name:
        args += ["--name", job.name]
    for tag in job.tags:
        args += ["--tag", tag]
    if job.description:
        args += ["--description", job.description]
    for v in c.volumes:
        args += ["--volume", f"{v.storage_uri}:{v.container_path}:{_mode(v.read_only)}"]
    for d in c.disk_volumes:
        args += ["--volume", f"{d.disk_uri}:{d.container_path}:{_mode(d.read_only)}"]
    for s in c.secret_files:
        args += ["--volume", f"{s.secret_uri}:{s.container_path}"]
    if c.entrypoint:
        args += ["--entrypoint", c.entrypoint]
    if c.working_dir:
        args += ["--workdir", c.working_dir]
    for name, value in c.env.items():
        if not (name == PASS_CONFIG_ENV and job.pass_config):
            args += ["--env", f"{name}={value}"]
    for name, uri in c.secret_env.items():
        args += ["--env", f"{name}={uri}"]
    if job.restart_policy != JobRestartPolicy.NEVER:
        args += ["--restart", str(job.restart_policy)]
    args += ["--life-span", timedelta_text(job.life_span or 0)]
    if job.schedule_timeout:
        args += ["--schedule-timeout", timedelta_text(job.schedule_timeout)]
    if job.pass_config:
        args.append("--pass-config")
    if job.privileged:
        args.append("--privileged")
    if job.priority != JobPriority.NORMAL:
        args += ["--priority", job.priority.name.lower()]
    if job.energy_schedule_name:
        args += ["--energy-schedule", job.energy_schedule_name]
    args += ["--project", job.project_name, str(c.image)]
    if c.command:
        args += ["--", c.command]
    return args


def _mode(read_only: bool) -> str:
    return "ro" if read_only else "rw"


def run_command(job: JobDescription) -> str:
    """``apolo run ...``, quoted for a shell (and for ``%apolo_run``)."""
    return "apolo run " + shlex.join(run_args(job))


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def describe(job: JobDescription, client: Client, full_uri: bool) -> str:
    """Field by field, as `apolo status` lists a job."""
    c = job.container
    image = str(c.image) if full_uri else short_image(c.image, client)
    r = c.resources
    resources = f"{r.cpu:g} CPU, {r.memory // 2**20} MB"
    if r.nvidia_gpu:
        resources += f", {r.nvidia_gpu} NVIDIA GPU"
    rows = [
        ("Job", job.id),
        ("Name", job.name or ""),
        ("Tags", ", ".join(job.tags)),
        ("Owner", job.owner),
        ("Cluster", job.cluster_name),
        ("Org", job.org_name or ""),
        ("Project", job.project_name),
        ("Description", job.description or ""),
        ("Status", job.status.value + (f" ({job.reason})" if job.reason else "")),
        ("Image", image),
        ("Entrypoint", c.entrypoint or ""),
        ("Command", c.command or ""),
        ("Working dir", c.working_dir or ""),
        ("Preset", job.preset_name or ""),
        ("Resources", resources),
        ("Priority", job.priority.name.lower()),
        ("Preemptible", "yes" if job.preemptible_node else ""),
        ("Restart policy", str(job.restart_policy)),
        ("Life span", timedelta_text(job.life_span) if job.life_span else "no limit"),
        ("TTY", "yes" if c.tty else ""),
        ("Http URL", str(job.http_url) if job.http_url else ""),
        (
            "Volumes",
            ", ".join(f"{v.storage_uri}:{v.container_path}" for v in c.volumes),
        ),
        ("Secret files", ", ".join(str(s.secret_uri) for s in c.secret_files)),
        ("Disks", ", ".join(str(d.disk_uri) for d in c.disk_volumes)),
        ("Created", _when(job.history.created_at)),
        ("Started", _when(job.history.started_at)),
        ("Finished", _when(job.history.finished_at)),
        ("Exit code", "" if job.exit_code is None else str(job.exit_code)),
    ]
    return "\n".join(f"{k + ':':16}{v}" for k, v in rows if v)
