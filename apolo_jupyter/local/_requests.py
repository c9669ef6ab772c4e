"""Validating job requests: every bad input becomes a 400 that says how to fix it.

Checks are linear in the size of the request and bounded (``_validate``): sizes
first, then parsing. Nothing a request carries is stored unchecked.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from yarl import URL

from ..client._models import JobStatus
from ._command import split
from ._records import JobRecord, StatusItem, now_iso
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
_UNSUPPORTED = ("secret_env", "secret_volumes", "disk_volumes")


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
    targets: dict[str, str] = {}
    for item in raw:
        if (
            not isinstance(item, dict)
            or "src_storage_uri" not in item
            or "dst_path" not in item
        ):
            raise BadRequest("each volume needs src_storage_uri and dst_path")
        dst = string(item["dst_path"], "volume container path", MAX_PATH)
        target = mount_path(dst, "volume container path")
        if target == "/":
            raise BadRequest(
                f"a volume cannot be mounted at {dst!r}; use a path like /var/data"
            )
        if target in targets:
            raise BadRequest(
                f"two volumes are mounted at {dst!r}; give each its own path"
            )
        targets[target] = dst
        volume_parts(item["src_storage_uri"])
        volumes.append(
            {
                "src_storage_uri": item["src_storage_uri"],
                "dst_path": dst,
                "read_only": flag(item, "read_only", True, "volume read_only"),
            }
        )
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
    return volumes


def _env(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    env = mapping(raw, "env", '{"NAME": "value"}')
    if len(env) > MAX_ENV:
        raise BadRequest(f"env has {len(env)} variables; the limit is {MAX_ENV}")
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
    resources = {"cpu": cpu, "memory": memory, "memory_mb": memory // 2**20, "shm": shm}
    return resources, name


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


def parse_job_request(
    settings: Settings, body: Any, *, from_preset: bool, owner: str
) -> JobRecord:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    container = body if from_preset else body.get("container")
    if not isinstance(container, dict):
        raise BadRequest('container is required: POST /jobs takes {"container": {...}}')
    for key in _UNSUPPORTED:
        if container.get(key):
            raise BadRequest(f"{key} is not supported by the local platform")
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
    timeout = body.get("schedule_timeout")
    if timeout is not None:
        timeout = number(timeout, "schedule_timeout (seconds)", 0, 1e9)
    stored: dict[str, Any] = {
        "image": image,
        "command": command,
        "env": _env(container.get("env")),
        "volumes": _volumes(container.get("volumes")),
        "resources": resources,
    }
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
        scheduler_enabled=flag(body, "scheduler_enabled", False) or preemptible,
        preemptible_node=preemptible,
        pass_config=flag(body, "pass_config", False),
        restart_policy=_choice(
            body, "restart_policy", "never", ("never", "on-failure", "always")
        ),
        priority=_choice(body, "priority", "normal", ("low", "normal", "high")),
        max_run_time_minutes=life,
        schedule_timeout=timeout,
    )
