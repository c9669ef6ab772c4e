"""Every JSON field name the client sends or reads for jobs, presets and the
config lives here (the frames inside a running job: ``_stream_wire``).

Payload shapes follow what ``apolo_sdk`` 26.9.0 sends (reference §3), so the same
call produces the same JSON from either client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from yarl import URL

from ._config import Cluster, Config, ProjectKey
from ._models import (
    AMDGPUPreset,
    Container,
    DiskVolume,
    HTTPPort,
    IntelGPUPreset,
    JobDescription,
    JobDescriptionInternal,
    JobPriority,
    JobRestartPolicy,
    JobStatus,
    JobStatusHistory,
    JobStatusItem,
    NvidiaGPUPreset,
    Preset,
    RemoteImage,
    Resources,
    SecretFile,
    TPUPreset,
    Volume,
)

if TYPE_CHECKING:
    from ._parser import Parser

INVALID_IMAGE_NAME = "INVALID-IMAGE-NAME"
_G = TypeVar("_G", NvidiaGPUPreset, AMDGPUPreset, IntelGPUPreset)

# -- requests -----------------------------------------------------------------


def resources_to_api(resources: Resources) -> dict[str, Any]:
    value: dict[str, Any] = {
        "memory": resources.memory,
        "cpu": resources.cpu,
        "shm": resources.shm,
    }
    for gpu in ("nvidia", "amd", "intel"):
        count = getattr(resources, f"{gpu}_gpu")
        model = getattr(resources, f"{gpu}_gpu_model")
        if count:
            value[f"{gpu}_gpu"] = count
        if model:
            value[f"{gpu}_gpu_model"] = model
    if resources.tpu_type:
        value["tpu"] = {
            "type": resources.tpu_type,
            "software_version": resources.tpu_software_version,
        }
    return value


def volume_to_api(volume: Volume, storage_uri: URL) -> dict[str, Any]:
    return {
        "src_storage_uri": str(storage_uri),
        "dst_path": volume.container_path,
        "read_only": bool(volume.read_only),
    }


def container_to_api(
    *,
    image: RemoteImage,
    entrypoint: str | None,
    command: str | None,
    working_dir: str | None,
    http: HTTPPort | None,
    env: Mapping[str, str] | None,
    volumes: Sequence[dict[str, Any]],
    secret_env: Mapping[str, URL] | None,
    secret_files: Sequence[SecretFile],
    disk_volumes: Sequence[DiskVolume],
    tty: bool,
    shm: bool = False,
) -> dict[str, Any]:
    """The container part of a job request (already normalised volume dicts)."""
    payload: dict[str, Any] = {"image": image.as_docker_url()}
    if shm:
        payload["resources"] = {"shm": True}
    if entrypoint:
        payload["entrypoint"] = entrypoint
    if command:
        payload["command"] = command
    if working_dir:
        payload["working_dir"] = working_dir
    if http:
        payload["http"] = {"port": http.port, "requires_auth": http.requires_auth}
    if env:
        payload["env"] = dict(env)
    if volumes:
        payload["volumes"] = list(volumes)
    if secret_env:
        payload["secret_env"] = {k: str(v) for k, v in secret_env.items()}
    if secret_files:
        payload["secret_volumes"] = [
            {"src_secret_uri": str(s.secret_uri), "dst_path": s.container_path}
            for s in secret_files
        ]
    if disk_volumes:
        payload["disk_volumes"] = [
            {
                "src_disk_uri": str(d.disk_uri),
                "dst_path": d.container_path,
                "read_only": d.read_only,
            }
            for d in disk_volumes
        ]
    if tty:
        payload["tty"] = True
    return payload


def job_to_api(
    *,
    cluster_name: str,
    project_name: str,
    org_name: str | None,
    name: str | None = None,
    preset_name: str | None = None,
    tags: Sequence[str] = (),
    description: str | None = None,
    pass_config: bool = False,
    wait_for_jobs_quota: bool = False,
    schedule_timeout: float | None = None,
    restart_policy: JobRestartPolicy = JobRestartPolicy.NEVER,
    life_span: float | None = None,
    privileged: bool = False,
    priority: JobPriority | None = None,
    energy_schedule_name: str | None = None,
) -> dict[str, Any]:
    """The job part of a request, keys in the order the SDK emits them."""
    payload: dict[str, Any] = {
        "pass_config": pass_config,
        "project_name": project_name,
    }
    if name:
        payload["name"] = name
    if preset_name:
        payload["preset_name"] = preset_name
    if tags:
        payload["tags"] = list(tags)
    if description:
        payload["description"] = description
    if schedule_timeout:
        payload["schedule_timeout"] = schedule_timeout
    if restart_policy != JobRestartPolicy.NEVER:
        payload["restart_policy"] = str(restart_policy)
    if life_span is not None:
        payload["max_run_time_minutes"] = int(life_span // 60)
    if wait_for_jobs_quota:
        payload["wait_for_jobs_quota"] = True
    if privileged:
        payload["privileged"] = True
    if priority is not None:
        payload["priority"] = priority.name.lower()
    if energy_schedule_name:
        payload["energy_schedule_name"] = energy_schedule_name
    if org_name:
        payload["org_name"] = org_name
    payload["cluster_name"] = cluster_name
    return payload


def bump_life_span_to_api(additional_seconds: float) -> dict[str, Any]:
    return {"additional_max_run_time_minutes": int(additional_seconds // 60)}


# -- responses ----------------------------------------------------------------


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _status(value: Any) -> JobStatus:
    try:
        return JobStatus(value)
    except ValueError:
        return JobStatus.UNKNOWN


def _image_from_api(text: str, parser: Parser) -> RemoteImage:
    try:
        return parser.remote_image(text)
    except ValueError:
        return RemoteImage(name=INVALID_IMAGE_NAME)


def _resources_from_api(data: Mapping[str, Any]) -> Resources:
    tpu = data.get("tpu") or {}
    return Resources(
        memory=int(data["memory"]),
        cpu=float(data["cpu"]),
        shm=bool(data.get("shm", True)),
        nvidia_gpu=data.get("nvidia_gpu"),
        amd_gpu=data.get("amd_gpu"),
        intel_gpu=data.get("intel_gpu"),
        nvidia_gpu_model=data.get("nvidia_gpu_model"),
        amd_gpu_model=data.get("amd_gpu_model"),
        intel_gpu_model=data.get("intel_gpu_model"),
        tpu_type=tpu.get("type"),
        tpu_software_version=tpu.get("software_version"),
    )


def container_from_api(data: Mapping[str, Any], parser: Parser) -> Container:
    http = data.get("http")
    return Container(
        image=_image_from_api(data["image"], parser),
        resources=_resources_from_api(data["resources"]),
        entrypoint=data.get("entrypoint"),
        command=data.get("command"),
        working_dir=data.get("working_dir"),
        http=(
            HTTPPort(
                port=int(http.get("port", -1)),
                requires_auth=bool(http.get("requires_auth", False)),
            )
            if isinstance(http, Mapping)  # {} too: a port the platform did not name
            else None
        ),
        env=dict(data.get("env") or {}),
        volumes=[
            Volume(
                storage_uri=URL(v["src_storage_uri"]),
                container_path=v["dst_path"],
                read_only=bool(v.get("read_only", True)),
            )
            for v in data.get("volumes") or ()
        ],
        secret_env={k: URL(v) for k, v in (data.get("secret_env") or {}).items()},
        secret_files=[
            SecretFile(
                secret_uri=URL(s["src_secret_uri"]), container_path=s["dst_path"]
            )
            for s in data.get("secret_volumes") or ()
        ],
        disk_volumes=[
            DiskVolume(
                disk_uri=URL(d["src_disk_uri"]),
                container_path=d["dst_path"],
                read_only=bool(d.get("read_only", True)),
            )
            for d in data.get("disk_volumes") or ()
        ],
        tty=bool(data.get("tty", False)),
    )


def _status_item_from_api(item: Mapping[str, Any]) -> JobStatusItem:
    transition = _dt(item["transition_time"])
    assert transition is not None
    return JobStatusItem(
        status=_status(item.get("status", "unknown")),
        transition_time=transition,
        reason=item.get("reason") or "",
        description=item.get("description") or "",
        exit_code=item.get("exit_code"),
    )


def history_from_api(
    history: Mapping[str, Any], statuses: Sequence[Mapping[str, Any]]
) -> JobStatusHistory:
    return JobStatusHistory(
        status=_status(history.get("status", "unknown")),
        reason=history.get("reason") or "",
        description=history.get("description") or "",
        restarts=int(history.get("restarts", 0)),
        created_at=_dt(history.get("created_at")),
        started_at=_dt(history.get("started_at")),
        finished_at=_dt(history.get("finished_at")),
        run_time_seconds=history.get("run_time_seconds"),
        exit_code=history.get("exit_code"),
        transitions=[_status_item_from_api(item) for item in statuses],
    )


def job_description_from_api(data: Mapping[str, Any], parser: Parser) -> JobDescription:
    life_span = data.get("max_run_time_minutes")
    http_url = data.get("http_url_named") or data.get("http_url") or ""
    priority = data.get("priority")
    return JobDescription(
        id=data["id"],
        owner=data["owner"],
        cluster_name=data["cluster_name"],
        org_name=data.get("org_name"),
        project_name=data.get("project_name") or data["owner"],
        namespace=data.get("namespace", ""),
        status=_status(data["status"]),
        history=history_from_api(data["history"], data.get("statuses") or ()),
        container=container_from_api(data["container"], parser),
        scheduler_enabled=bool(data["scheduler_enabled"]),
        pass_config=bool(data["pass_config"]),
        uri=URL(data["uri"]),
        total_price_credits=Decimal(data["total_price_credits"]),
        price_credits_per_hour=Decimal(data["price_credits_per_hour"]),
        name=data.get("name"),
        # As apolo_sdk: the list the platform sent (job.tags == ["a"]), () if none.
        tags=list(tags) if (tags := data.get("tags")) is not None else (),
        description=data.get("description"),
        http_url=URL(http_url),
        internal_hostname=data.get("internal_hostname"),
        internal_hostname_named=data.get("internal_hostname_named"),
        restart_policy=JobRestartPolicy(data.get("restart_policy", "never")),
        life_span=life_span * 60.0 if life_span is not None else None,
        schedule_timeout=data.get("schedule_timeout"),
        preset_name=data.get("preset_name"),
        preemptible_node=bool(data.get("preemptible_node", False)),
        privileged=bool(data.get("privileged", False)),
        priority=JobPriority[priority.upper()] if priority else JobPriority.NORMAL,
        energy_schedule_name=data.get("energy_schedule_name"),
        _internal=JobDescriptionInternal(
            materialized=bool(data.get("materialized", False)),
            being_dropped=bool(data.get("being_dropped", False)),
            logs_removed=bool(data.get("logs_removed", False)),
        ),
    )


def _gpu_preset(data: Any, kind: type[_G]) -> _G | None:
    if not isinstance(data, Mapping):
        # An older platform sent a bare count.
        return kind(count=int(data)) if data else None
    return kind(
        count=int(data["count"]), model=data.get("model"), memory=data.get("memory")
    )


def preset_from_api(data: Mapping[str, Any]) -> Preset:
    """A preset from ``/config`` or a CLI db (both use the same keys)."""
    migs = data.get("nvidia_migs") or {}
    tpu = data.get("tpu")
    return Preset(
        credits_per_hour=Decimal(data.get("credits_per_hour", "0")),
        cpu=float(data["cpu"]),
        memory=int(data["memory"]),
        nvidia_gpu=_gpu_preset(data.get("nvidia_gpu"), NvidiaGPUPreset),
        nvidia_migs=(
            {k: p for k, v in migs.items() if (p := _gpu_preset(v, NvidiaGPUPreset))}
            or None
        ),
        amd_gpu=_gpu_preset(data.get("amd_gpu"), AMDGPUPreset),
        intel_gpu=_gpu_preset(data.get("intel_gpu"), IntelGPUPreset),
        tpu=TPUPreset(tpu["type"], tpu["software_version"]) if tpu else None,
        scheduler_enabled=bool(data.get("scheduler_enabled", False)),
        preemptible_node=bool(data.get("preemptible_node", False)),
        resource_pool_names=tuple(data.get("resource_pool_names") or ()),
        available_resource_pool_names=tuple(
            data.get("available_resource_pool_names") or ()
        ),
    )


def _optional_url(data: Mapping[str, Any], key: str) -> URL:
    """A service URL; empty when the platform (or an old CLI db) has none."""
    return URL(data.get(key) or "")


def cluster_from_api(data: Mapping[str, Any], presets_key: str) -> Cluster:
    """A cluster from ``/config`` (``resource_presets``) or a CLI db (``presets``)."""
    return Cluster(
        name=data["name"],
        orgs=tuple(data.get("orgs") or ()),
        registry_url=URL(data["registry_url"]),
        storage_url=URL(data["storage_url"]),
        monitoring_url=URL(data["monitoring_url"]),
        secrets_url=_optional_url(data, "secrets_url"),
        disks_url=_optional_url(data, "disks_url"),
        users_url=_optional_url(data, "users_url"),
        presets={p["name"]: preset_from_api(p) for p in data.get(presets_key) or ()},
    )


def config_from_api(
    data: Mapping[str, Any],
    *,
    api_url: URL,
    token: str,
    username: str,
    source: str,
    cluster_name: str | None = None,
    org_name: str | None = None,
    project_name: str | None = None,
) -> Config:
    """Build a Config from ``GET /config``; selection as ``apolo_sdk`` login does."""
    clusters = {
        c["name"]: cluster_from_api(c, "resource_presets")
        for c in data.get("clusters") or ()
    }
    if not clusters:
        raise ValueError(f"{api_url}/config lists no clusters for this user")
    cluster = clusters[cluster_name] if cluster_name else next(iter(clusters.values()))
    org = org_name or (cluster.orgs[0] if cluster.orgs else None)
    if project_name is None:
        names = sorted(
            p["name"]
            for p in data.get("projects") or ()
            if p.get("cluster_name") == cluster.name and p.get("org_name") == org
        )
        project_name = names[0] if names else None
    push = data.get(STATUS_WS_KEY)
    projects = [
        ProjectKey(p["cluster_name"], p.get("org_name"), p["name"])
        for p in data.get("projects") or ()
        if "name" in p and "cluster_name" in p
    ]
    return Config(
        api_url=api_url,
        auth_token=token,
        projects=projects,
        local=bool(data.get(LOCAL_KEY)),
        cluster_name=cluster.name,
        org_name=org,
        project_name=project_name,
        clusters=clusters,
        username=username,
        source=source,
        status_ws_url=URL(push) if push else None,
    )


# The local platform advertises its push endpoint for status changes under this
# key of /config (a base URL; the socket is <base>/<job id>/status_ws); the real
# platform does not, and apolo_sdk ignores unknown keys.
STATUS_WS_KEY = "apolo_jupyter_status_ws_url"
# ... and says it is the embedded local platform under this one.
LOCAL_KEY = "apolo_jupyter_local"
