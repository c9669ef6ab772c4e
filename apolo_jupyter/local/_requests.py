"""Validating job requests: every bad input becomes a 400 that says how to fix it.

Checks are linear in the size of the request and bounded (``_validate``): sizes
first, then parsing. Nothing a request carries is stored unchecked.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from yarl import URL

from ..client._models import JobStatus
from ._command import split
from ._records import JobRecord, StatusItem, now_iso
from ._sandbox import system_folder_refusal
from ._settings import CLUSTER, ORG, PROJECT, Settings
from ._validate import (
    MAX_COMMAND,
    MAX_CPU,
    MAX_ENV,
    MAX_ENV_VALUE,
    MAX_IMAGE,
    MAX_LIFE_SPAN,
    MAX_MEMORY,
    MAX_PATH,
    MAX_TAG,
    MAX_TAGS,
    MAX_VOLUMES,
    MIN_CPU,
    MIN_MEMORY,
    BadRequest,
    flag,
    mapping,
    no_nul,
    number,
    string,
    text,
    whole,
)

__all__ = ["BadRequest", "parse_job_request", "split_command", "volume_parts"]

# Docker reference grammar (lowercase path components, optional registry host
# with port, tag of up to 128 characters).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?"
_IMAGE_RE = re.compile(
    rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?$"
)
_NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_TAG_RE = re.compile(r"^\S+$")
# Accelerators the local platform has no way to hand to a job.
_OTHER_ACCELERATORS = (
    "amd_gpu",
    "amd_gpu_model",
    "intel_gpu",
    "intel_gpu_model",
    "tpu",
)
MAX_GPUS = 1024
MAX_SCHEDULE_TIMEOUT = 30 * 24 * 3600 - 1
# What the local platform cannot honour: refused, never silently dropped.
_REFUSED = {
    "privileged": "its jobs run in a sandbox with every capability dropped",
    "energy_schedule_name": "it has no energy schedules: jobs start when they fit",
}


def split_command(value: Any, what: str = "command") -> list[str]:
    """Split as the real platform does (shlex rules, no shell), in linear time."""
    command = no_nul(string(value, what, MAX_COMMAND), what)
    try:
        argv = split(command)
    except ValueError as exc:
        raise BadRequest(
            f"{what} {command[:200]!r} cannot be split into arguments: {exc}"
        ) from None
    if not argv:
        raise BadRequest(
            f'{what} is empty: pass the program to run, e.g. command="sleep 30"'
        )
    return argv


def validate_image(image: Any) -> str:
    if not isinstance(image, str) or not image:
        raise BadRequest('image is required, e.g. image: "ubuntu:latest"')
    string(image, "image", MAX_IMAGE)
    if not _IMAGE_RE.match(image):
        raise BadRequest(
            f"invalid image name {image!r}: use lowercase letters, digits and "
            "separators, with an optional :tag, e.g. ubuntu:22.04 or python:3.11-slim"
        )
    return image


def volume_parts(uri: Any) -> tuple[str, ...]:
    """The storage path parts (``org``, ``project``, ...) of a volume source
    ``storage://local/<org>/<project>/<path>``; no ``.``/``..``, no NUL."""
    raw = no_nul(string(uri, "volume source", MAX_PATH), "volume source")
    example = f"storage://{CLUSTER}/{ORG}/{PROJECT}/<folder> (or storage:<folder>)"
    try:
        parsed = URL(raw)
        host, path = parsed.host, parsed.path
    except ValueError:
        raise BadRequest(f"volume source {raw!r} is not a URI: use {example}") from None
    if parsed.scheme != "storage" or host != CLUSTER:
        raise BadRequest(
            f"volume source {raw!r} is not on this platform: use {example} in the "
            "client"
        )
    if "?" in raw or "#" in raw:
        raise BadRequest(
            f"volume source {raw!r} has a query or fragment; quote '?' as %3F and "
            "'#' as %23"
        )
    no_nul(path, f"volume source {raw!r} (decoded)")
    parts = PurePosixPath(path).parts[1:]
    if any(p in ("..", ".") for p in path.split("/")) or len(parts) < 2:
        raise BadRequest(
            f"volume source {raw!r} must name a folder inside a project, without "
            "'.' or '..' parts"
        )
    return parts


def mount_path(value: Any, what: str) -> str:
    """An absolute container path without ``..`` (as the real platform), normalized."""
    path = no_nul(string(value, what, MAX_PATH), what)
    if not path.startswith("/"):
        raise BadRequest(f"{what} {path!r} must be absolute, e.g. /var/data")
    if ".." in path.split("/"):
        raise BadRequest(f"{what} {path!r} must not contain '..' parts")
    return posixpath.normpath("/" + path.lstrip("/"))


def _volumes(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("volumes must be a list")
    if len(raw) > MAX_VOLUMES:
        raise BadRequest(
            f"the job has {len(raw)} volumes; the limit is {MAX_VOLUMES}: mount a "
            "common parent folder instead"
        )
    volumes: list[dict[str, Any]] = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or "src_storage_uri" not in item
            or "dst_path" not in item
        ):
            raise BadRequest("each volume needs src_storage_uri and dst_path")
        dst = string(item["dst_path"], "volume container path", MAX_PATH)
        mount_path(dst, "volume container path")
        volume_parts(item["src_storage_uri"])
        volumes.append(
            {
                "src_storage_uri": item["src_storage_uri"],
                "dst_path": dst,
                "read_only": flag(item, "read_only", True, "volume read_only"),
            }
        )
    return volumes


def _uri(raw: Any, scheme: str, what: str) -> str:
    uri = no_nul(string(raw, what, MAX_PATH), what)
    if not uri.startswith(f"{scheme}://"):
        raise BadRequest(
            f"{what} {uri[:200]!r} must be a {scheme}:// URI, e.g. "
            f"{scheme}://{CLUSTER}/{ORG}/{PROJECT}/<name>"
        )
    return uri


def _variables(raw: Any, what: str, example: str) -> dict[str, Any]:
    """An ``env`` or ``secret_env`` object (empty when absent), of at most
    MAX_ENV variables; each caller checks the names and values."""
    if raw is None:
        return {}
    env = mapping(raw, what, example)
    if len(env) > MAX_ENV:
        raise BadRequest(f"{what} has {len(env)} variables; the limit is {MAX_ENV}")
    return env


def _secret_env(raw: Any) -> dict[str, str]:
    env = _variables(raw, "secret_env", '{"TOKEN": "secret://..."}')
    for key in env:
        if not _ENV_RE.match(key):
            raise BadRequest(f"secret_env name {key[:100]!r} is not a variable name")
    return {k: _uri(v, "secret", f"secret_env {k}") for k, v in env.items()}


def _mounts(raw: Any, kind: str) -> list[dict[str, Any]]:
    """``secret_volumes`` or ``disk_volumes``: their URIs and container paths."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise BadRequest(f"{kind}_volumes must be a list of objects")
    if len(raw) > MAX_VOLUMES:
        raise BadRequest(
            f"the job has {len(raw)} {kind} volumes; the limit is {MAX_VOLUMES}"
        )
    src = f"src_{kind}_uri"
    out: list[dict[str, Any]] = []
    for item in raw:
        if src not in item or "dst_path" not in item:
            raise BadRequest(f"each {kind} volume needs {src} and dst_path")
        dst = string(item["dst_path"], f"{kind} volume container path", MAX_PATH)
        mount_path(dst, f"{kind} volume container path")
        entry: dict[str, Any] = {
            src: _uri(item[src], kind, f"{kind} volume"),
            "dst_path": dst,
        }
        if kind == "disk":
            entry["read_only"] = flag(item, "read_only", True, "disk volume read_only")
        out.append(entry)
    return out


def _check_targets(groups: Sequence[Sequence[Mapping[str, Any]]]) -> None:
    """Mount points of every kind (storage, secret, disk): none at /, none in a
    system folder (``_sandbox.SYSTEM_FOLDERS``), no two at one path, none
    inside another volume (see ``_sandbox``: a job writing to the
    outer one could redirect the inner mount)."""
    targets: dict[str, str] = {}
    for group in groups:
        for item in group:
            dst = item["dst_path"]
            target = mount_path(dst, "volume container path")
            if target == "/":
                raise BadRequest(
                    f"a volume cannot be mounted at {dst!r}; use a path like /var/data"
                )
            refusal = system_folder_refusal(target)
            if refusal is not None:
                raise BadRequest(refusal)
            if target in targets:
                raise BadRequest(
                    f"two volumes are mounted at {dst!r}; give each its own path"
                )
            targets[target] = dst
    for target, dst in targets.items():
        outer = next(
            (str(p) for p in PurePosixPath(target).parents if str(p) in targets), None
        )
        if outer is not None:
            raise BadRequest(
                f"the volume at {dst!r} lies inside the volume at {targets[outer]!r}: "
                "the local platform mounts volumes side by side only (a job "
                "writing to the outer one could redirect the inner mount); mount "
                "it elsewhere, e.g. at /mnt/" + (PurePosixPath(target).name or "data")
            )


def _env(raw: Any) -> dict[str, str]:
    env = _variables(raw, "env", '{"NAME": "value"}')
    for key, value in env.items():
        if not _ENV_RE.match(key) or not isinstance(value, str):
            raise BadRequest(
                f"env entry {key[:100]!r} is invalid: names are letters, digits and "
                "_ (at most 255), values are strings"
            )
        no_nul(string(value, f"env {key}", MAX_ENV_VALUE), f"env {key}")
    return dict(env)


def _http(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    http = mapping(raw, "container.http", '{"port": 8080}')
    result: dict[str, Any] = {
        "port": whole(http.get("port", 80), "container.http.port", 0, 65535),
        "requires_auth": flag(http, "requires_auth", True, "http.requires_auth"),
    }
    path = text(http, "health_check_path", MAX_PATH, "http.health_check_path")
    if path is not None:
        result["health_check_path"] = no_nul(path, "http.health_check_path")
    return result


def _resources(
    settings: Settings,
    body: Mapping[str, Any],
    container: Mapping[str, Any],
    from_preset: bool,
) -> tuple[dict[str, Any], str | None]:
    raw = container.get("resources")
    raw = {} if raw is None else mapping(raw, "container.resources", '{"cpu": 1}')
    if from_preset:
        if set(raw) - {"shm"}:
            raise BadRequest(
                "Both preset and resources are not allowed: drop resources"
            )
        name = text(body, "preset_name") or settings.presets[0].name
        preset = settings.preset(name)
        if preset is None:
            known = ", ".join(p.name for p in settings.presets)
            raise BadRequest(f"Preset {name!r} does not exist: choose one of {known}")
        cpu, memory = preset.cpu, preset.memory
        gpus, model = preset.nvidia_gpu, preset.nvidia_gpu_model
        shm = flag(raw, "shm", False, "resources.shm")
    else:
        name = None
        if "cpu" not in raw or ("memory" not in raw and "memory_mb" not in raw):
            raise BadRequest("container.resources needs cpu (cores) and memory (bytes)")
        cpu = number(raw["cpu"], "resources.cpu (cores)", MIN_CPU, MAX_CPU)
        if "memory" in raw:
            memory = whole(
                raw["memory"], "resources.memory (bytes)", MIN_MEMORY, MAX_MEMORY
            )
        else:
            memory = 2**20 * whole(
                raw["memory_mb"], "resources.memory_mb", 16, MAX_MEMORY >> 20
            )
        shm = flag(raw, "shm", True, "resources.shm")
        gpus, model = _nvidia(raw)
    resources: dict[str, Any] = {
        "cpu": cpu,
        "memory": memory,
        "memory_mb": memory // 2**20,
        "shm": shm,
    }
    if gpus:
        resources["nvidia_gpu"] = gpus
        if model:
            resources["nvidia_gpu_model"] = model
    return resources, name


def _nvidia(raw: Mapping[str, Any]) -> tuple[int, str | None]:
    """``nvidia_gpu`` (a whole number) and ``nvidia_gpu_model``; other
    accelerators are refused (whether the machine has the GPUs is the
    service's check, as for CPU)."""
    for key in _OTHER_ACCELERATORS:
        if raw.get(key):
            raise BadRequest(
                f"resources.{key} is refused by the local platform: it hands jobs "
                "NVIDIA GPUs only (found with nvidia-smi); drop it to run here (a "
                "real cluster honours it)"
            )
    value = raw.get("nvidia_gpu")
    gpus = 0 if value is None else whole(value, "resources.nvidia_gpu", 0, MAX_GPUS)
    model = text(raw, "nvidia_gpu_model", 255, "resources.nvidia_gpu_model")
    return gpus, model if gpus else None


def _tags(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_TAGS:
        raise BadRequest(f"tags must be a list of at most {MAX_TAGS} strings")
    for tag in raw:
        string(tag, "a tag", MAX_TAG)
        if not _TAG_RE.match(tag):
            raise BadRequest(f"tag {tag!r} must be non-empty, without blanks")
    return list(raw)


def _choice(
    body: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]
) -> str:
    value = text(body, key) or default
    if value.lower() not in allowed:
        raise BadRequest(f"{key} must be one of {', '.join(allowed)}")
    return value.lower()


def _schedule_timeout(raw: Any, scheduled: bool) -> float | None:
    """Seconds a job may wait to start (the real platform's bounds: 1 s to 30
    days); not for scheduled (preemptible) jobs, which wait as long as it takes."""
    if raw is None:
        return None
    try:
        timeout = number(raw, "schedule_timeout (seconds)", 1, MAX_SCHEDULE_TIMEOUT)
    except BadRequest as exc:
        raise BadRequest(
            f"{exc.args[0]}: give a number of seconds under 30 days, e.g. "
            "--schedule-timeout 5m (schedule_timeout=300)"
        ) from None
    if scheduled:
        raise BadRequest(
            "schedule_timeout is not allowed for scheduled jobs: a preemptible job "
            "waits for room as long as it takes; drop --schedule-timeout, or "
            "--preemptible (a preset that is not preemptible)"
        )
    return timeout


def parse_job_request(
    settings: Settings, body: Any, *, from_preset: bool, owner: str
) -> JobRecord:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    container = body if from_preset else body.get("container")
    if not isinstance(container, dict):
        raise BadRequest('container is required: POST /jobs takes {"container": {...}}')
    for key, why in _REFUSED.items():
        if body.get(key):
            raise BadRequest(
                f"{key} is refused by the local platform: {why}; drop it to run "
                "here (a real cluster honours it)"
            )
    cluster = text(body, "cluster_name") or CLUSTER
    org = text(body, "org_name") or ORG
    project = text(body, "project_name") or PROJECT
    if (cluster, org, project) != (CLUSTER, ORG, PROJECT):
        raise BadRequest(
            f"cluster/org/project {cluster}/{org}/{project} does not exist here: the "
            f"local platform serves {CLUSTER}/{ORG}/{PROJECT}"
        )
    image = validate_image(container.get("image"))
    command = container.get("command")
    if command is None:
        raise BadRequest(
            "command is required on the local platform (images are not pulled, so "
            'there is no image default command): pass command="..."'
        )
    split_command(command)
    entrypoint = container.get("entrypoint")
    if entrypoint is not None:
        split_command(entrypoint, "entrypoint")
    working_dir = container.get("working_dir")
    if working_dir is not None:
        mount_path(working_dir, "working_dir")
    resources, preset_name = _resources(settings, body, container, from_preset)
    name = text(body, "name")
    if name is not None and not _NAME_RE.match(name):
        raise BadRequest(
            f"job name {name!r} is invalid: 1-40 lowercase letters, digits and '-', "
            "starting with a letter, e.g. my-job"
        )
    life = body.get("max_run_time_minutes")
    if life is not None:
        life = whole(life, "max_run_time_minutes", 1, MAX_LIFE_SPAN)
    restart = _choice(
        body, "restart_policy", "never", ("never", "on-failure", "always")
    )
    volumes = _volumes(container.get("volumes"))
    others = {k: _mounts(container.get(f"{k}_volumes"), k) for k in ("secret", "disk")}
    _check_targets([volumes, *others.values()])
    stored: dict[str, Any] = {
        "image": image,
        "command": command,
        "env": _env(container.get("env")),
        "volumes": volumes,
        "resources": resources,
    }
    secret_env = _secret_env(container.get("secret_env"))
    if secret_env:
        stored["secret_env"] = secret_env
    for kind, mounts in others.items():
        if mounts:
            stored[f"{kind}_volumes"] = mounts
    for key, value in (("entrypoint", entrypoint), ("working_dir", working_dir)):
        if value is not None:
            stored[key] = value
    http = _http(container.get("http"))
    if http is not None:
        stored["http"] = http
    if flag(container, "tty", False):
        stored["tty"] = True
    preset = settings.preset(preset_name) if preset_name else None
    preemptible = flag(body, "preemptible_node", False) or bool(
        preset and preset.preemptible
    )
    scheduled = flag(body, "scheduler_enabled", False) or preemptible
    timeout = _schedule_timeout(body.get("schedule_timeout"), scheduled)
    return JobRecord(
        id=f"job-{uuid.uuid4()}",
        owner=owner,
        cluster_name=CLUSTER,
        org_name=ORG,
        project_name=project,
        container=stored,
        statuses=[StatusItem(JobStatus.PENDING, now_iso(), "Creating", "")],
        name=name,
        tags=_tags(body.get("tags")),
        description=text(body, "description"),
        preset_name=preset_name,
        scheduler_enabled=scheduled,
        preemptible_node=preemptible,
        pass_config=flag(body, "pass_config", False),
        restart_policy=restart,
        priority=_choice(body, "priority", "normal", ("low", "normal", "high")),
        max_run_time_minutes=life,
        schedule_timeout=timeout,
    )
