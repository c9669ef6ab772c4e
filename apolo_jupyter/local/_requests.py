"""Validating job requests: every bad input becomes a 400 that says how to fix it."""

from __future__ import annotations

import posixpath
import re
import shlex
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from yarl import URL

from ..client._models import JobStatus
from ._records import JobRecord, StatusItem, now_iso
from ._settings import CLUSTER, ORG, PROJECT, Settings


class BadRequest(ValueError):
    """A job request the platform refuses; the message is shown to the user."""


# Docker reference grammar (lowercase path components, optional registry host
# with port, tag of up to 128 characters).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?"
_IMAGE_RE = re.compile(
    rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?$"
)
_NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What the local platform cannot honour: refused, never silently dropped.
_REFUSED = {
    "privileged": "its jobs run in a sandbox with every capability dropped",
    "energy_schedule_name": "it has no energy schedules: jobs start when they fit",
}


def _str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string, got {type(value).__name__}")
    return value


def split_command(text: str, what: str = "command") -> list[str]:
    """shlex-split as the real platform does (no shell)."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise BadRequest(
            f"{what} {text!r} cannot be split into arguments: {exc}"
        ) from exc
    if not argv:
        raise BadRequest(
            f'{what} is empty: pass the program to run, e.g. command="sleep 30"'
        )
    return argv


def validate_image(image: Any) -> str:
    if not isinstance(image, str) or not image:
        raise BadRequest('image is required, e.g. image: "ubuntu:latest"')
    if not _IMAGE_RE.match(image):
        raise BadRequest(
            f"invalid image name {image!r}: use lowercase letters, digits and "
            "separators, with an optional :tag, e.g. ubuntu:22.04 or python:3.11-slim"
        )
    return image


def storage_host_path(settings: Settings, uri: str) -> Path:
    """Map ``storage://local/org/project/path`` inside the storage root."""
    parsed = URL(uri)
    if parsed.scheme != "storage" or parsed.host != CLUSTER:
        raise BadRequest(
            f"volume source {uri!r} is not on this platform: use storage://{CLUSTER}/"
            f"{ORG}/{PROJECT}/<folder> (or storage:<folder> in the client)"
        )
    parts = PurePosixPath(parsed.path).parts[1:]
    if any(p in ("..", ".") for p in parts) or len(parts) < 2:
        raise BadRequest(f"volume source {uri!r} must name a folder without '..' parts")
    root = settings.paths.storage_dir.resolve()
    target = root.joinpath(*parts)
    resolved = target.resolve()
    if resolved != root and root not in resolved.parents:
        raise BadRequest(f"volume source {uri!r} leads outside the storage root")
    return target


def _volumes(settings: Settings, raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("volumes must be a list")
    volumes: list[dict[str, Any]] = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or "src_storage_uri" not in item
            or "dst_path" not in item
        ):
            raise BadRequest("each volume needs src_storage_uri and dst_path")
        dst = str(item["dst_path"])
        if not dst.startswith("/"):
            raise BadRequest(
                f"volume container path {dst!r} must be absolute, e.g. /var/data"
            )
        # Refused now rather than when the job starts (the sandbox checks again).
        if posixpath.normpath(dst) in ("/", "//"):
            raise BadRequest(
                f"a volume cannot be mounted at {dst!r}; use a path like /var/data"
            )
        if any(
            posixpath.normpath(v["dst_path"]) == posixpath.normpath(dst)
            for v in volumes
        ):
            raise BadRequest(
                f"two volumes are mounted at {dst!r}; give each its own path"
            )
        storage_host_path(settings, str(item["src_storage_uri"]))
        volumes.append(
            {
                "src_storage_uri": str(item["src_storage_uri"]),
                "dst_path": dst,
                "read_only": bool(item.get("read_only", True)),
            }
        )
    return volumes


def _dst(raw: Any, what: str) -> str:
    dst = str(raw)
    if not dst.startswith("/") or posixpath.normpath(dst) in ("/", "//"):
        raise BadRequest(
            f"{what} container path {dst!r} must be absolute and not /, e.g. /var/data"
        )
    return dst


def _uri(raw: Any, scheme: str, what: str) -> str:
    uri = str(raw)
    if not uri.startswith(f"{scheme}://"):
        raise BadRequest(
            f"{what} {uri!r} must be a {scheme}:// URI, e.g. "
            f"{scheme}://{CLUSTER}/{ORG}/{PROJECT}/<name>"
        )
    return uri


def _secret_env(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest('secret_env must be an object, e.g. {"TOKEN": "secret://..."}')
    for key in raw:
        if not _ENV_RE.match(str(key)):
            raise BadRequest(f"secret_env name {key!r} is not a variable name")
    return {str(k): _uri(v, "secret", f"secret_env {k}") for k, v in raw.items()}


def _mounts(raw: Any, kind: str) -> list[dict[str, Any]]:
    """``secret_volumes`` or ``disk_volumes``: their URIs and container paths."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise BadRequest(f"{kind}_volumes must be a list of objects")
    src = f"src_{kind}_uri"
    out: list[dict[str, Any]] = []
    for item in raw:
        if src not in item or "dst_path" not in item:
            raise BadRequest(f"each {kind} volume needs {src} and dst_path")
        entry: dict[str, Any] = {
            src: _uri(item[src], kind, f"{kind} volume"),
            "dst_path": _dst(item["dst_path"], f"{kind} volume"),
        }
        if kind == "disk":
            entry["read_only"] = bool(item.get("read_only", True))
        out.append(entry)
    return out


def _env(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest('env must be an object, e.g. {"NAME": "value"}')
    for key, value in raw.items():
        if not _ENV_RE.match(str(key)) or not isinstance(value, str):
            raise BadRequest(
                f"env entry {key!r} is invalid: names are letters, digits and _, "
                "values are strings"
            )
    return dict(raw)


def _resources(
    settings: Settings,
    body: Mapping[str, Any],
    container: Mapping[str, Any],
    from_preset: bool,
) -> tuple[dict[str, Any], str | None]:
    raw = container.get("resources") or {}
    if from_preset:
        if set(raw) - {"shm"}:
            raise BadRequest(
                "Both preset and resources are not allowed: drop resources"
            )
        name = _str(body, "preset_name") or settings.presets[0].name
        preset = settings.preset(name)
        if preset is None:
            known = ", ".join(p.name for p in settings.presets)
            raise BadRequest(f"Preset {name!r} does not exist: choose one of {known}")
        cpu, memory, shm = preset.cpu, preset.memory, bool(raw.get("shm", False))
    else:
        name = None
        try:
            cpu, memory = float(raw["cpu"]), int(raw["memory"])
        except (KeyError, TypeError, ValueError):
            raise BadRequest(
                "container.resources needs cpu (cores) and memory (bytes)"
            ) from None
        if cpu <= 0 or memory <= 0:
            raise BadRequest("resources cpu and memory must be positive")
        shm = bool(raw.get("shm", True))
    resources = {"cpu": cpu, "memory": memory, "memory_mb": memory // 2**20, "shm": shm}
    return resources, name


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
    cluster = _str(body, "cluster_name") or CLUSTER
    org = _str(body, "org_name") or ORG
    project = _str(body, "project_name") or PROJECT
    if (cluster, org, project) != (CLUSTER, ORG, PROJECT):
        raise BadRequest(
            f"cluster/org/project {cluster}/{org}/{project} does not exist here: the "
            f"local platform serves {CLUSTER}/{ORG}/{PROJECT}"
        )
    image = validate_image(container.get("image"))
    command = _str(container, "command")
    if command is None:
        raise BadRequest(
            "command is required on the local platform (images are not pulled, so "
            'there is no image default command): pass command="..."'
        )
    split_command(command)
    entrypoint = _str(container, "entrypoint")
    if entrypoint is not None:
        split_command(entrypoint, "entrypoint")
    working_dir = _str(container, "working_dir")
    if working_dir is not None and not working_dir.startswith("/"):
        raise BadRequest(f"working_dir {working_dir!r} must be an absolute path")
    resources, preset_name = _resources(settings, body, container, from_preset)
    name = _str(body, "name")
    if name is not None and not _NAME_RE.match(name):
        raise BadRequest(
            f"job name {name!r} is invalid: 1-40 lowercase letters, digits and '-', "
            "starting with a letter, e.g. my-job"
        )
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise BadRequest("tags must be a list of non-empty strings")
    life = body.get("max_run_time_minutes")
    if life is not None and (not isinstance(life, int) or life < 1):
        raise BadRequest("max_run_time_minutes must be a whole number >= 1")
    restart = body.get("restart_policy", "never")
    if restart not in ("never", "on-failure", "always"):
        raise BadRequest("restart_policy must be never, on-failure or always")
    if restart != "never":
        raise BadRequest(
            f"restart_policy {restart} is refused by the local platform: it does not "
            "restart jobs; drop --restart to run here (a real cluster honours it)"
        )
    if body.get("schedule_timeout"):
        raise BadRequest(
            "schedule_timeout is refused by the local platform: a job waits for room "
            "as long as it takes; drop --schedule-timeout to run here (a real "
            "cluster honours it)"
        )
    priority = str(body.get("priority", "normal")).lower()
    if priority not in ("low", "normal", "high"):
        raise BadRequest("priority must be low, normal or high")
    stored: dict[str, Any] = {
        "image": image,
        "command": command,
        "env": _env(container.get("env")),
        "volumes": _volumes(settings, container.get("volumes")),
        "resources": resources,
    }
    secret_env = _secret_env(container.get("secret_env"))
    if secret_env:
        stored["secret_env"] = secret_env
    for kind in ("secret", "disk"):
        mounts = _mounts(container.get(f"{kind}_volumes"), kind)
        if mounts:
            stored[f"{kind}_volumes"] = mounts
    for key, value in (("entrypoint", entrypoint), ("working_dir", working_dir)):
        if value is not None:
            stored[key] = value
    http = container.get("http")
    if http:
        stored["http"] = {
            "port": int(http.get("port", 80)),
            "requires_auth": bool(http.get("requires_auth", True)),
        }
    if container.get("tty"):
        stored["tty"] = True
    preset = settings.preset(preset_name) if preset_name else None
    preemptible = bool(body.get("preemptible_node")) or bool(
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
        tags=list(tags),
        description=_str(body, "description"),
        preset_name=preset_name,
        scheduler_enabled=bool(body.get("scheduler_enabled")) or preemptible,
        preemptible_node=preemptible,
        pass_config=bool(body.get("pass_config")),
        restart_policy=restart,
        priority=priority,
        max_run_time_minutes=life,
        schedule_timeout=body.get("schedule_timeout"),
    )
