"""Frozen data models; public names and fields mirror ``apolo_sdk``."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from yarl import URL

_MiB = 2**20


class JobStatus(str, enum.Enum):
    """Job status. ``pending`` and ``suspended`` count as pending."""

    PENDING = "pending"
    SUSPENDED = "suspended"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_pending(self) -> bool:
        return self in (JobStatus.PENDING, JobStatus.SUSPENDED)

    @property
    def is_running(self) -> bool:
        return self is JobStatus.RUNNING

    @property
    def is_finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

    @classmethod
    def items(cls) -> set[JobStatus]:
        return {item for item in cls if item is not cls.UNKNOWN}

    @classmethod
    def active_items(cls) -> set[JobStatus]:
        return {item for item in cls.items() if not item.is_finished}

    @classmethod
    def finished_items(cls) -> set[JobStatus]:
        return {item for item in cls.items() if item.is_finished}

    __format__ = str.__format__  # type: ignore[assignment]
    __str__ = str.__str__


class JobRestartPolicy(str, enum.Enum):
    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:  # as apolo_sdk: 'never'
        return repr(self.value)


class JobPriority(enum.IntEnum):
    LOW = enum.auto()
    NORMAL = enum.auto()
    HIGH = enum.auto()


@dataclass(frozen=True, init=False)
class Resources:
    """Resources of a container.

    ``memory`` is in bytes, as in ``apolo_sdk`` today; the older spelling
    ``Resources(memory_mb=100, cpu=0.5)`` from the SDK docs is accepted too.
    """

    memory: int
    cpu: float
    nvidia_gpu: int | None = None
    amd_gpu: int | None = None
    intel_gpu: int | None = None
    nvidia_gpu_model: str | None = None
    amd_gpu_model: str | None = None
    intel_gpu_model: str | None = None
    shm: bool = True
    tpu_type: str | None = None
    tpu_software_version: str | None = None

    def __init__(
        self,
        memory: int | None = None,
        cpu: float | None = None,
        nvidia_gpu: int | None = None,
        amd_gpu: int | None = None,
        intel_gpu: int | None = None,
        nvidia_gpu_model: str | None = None,
        amd_gpu_model: str | None = None,
        intel_gpu_model: str | None = None,
        shm: bool = True,
        tpu_type: str | None = None,
        tpu_software_version: str | None = None,
        *,
        memory_mb: int | None = None,
    ) -> None:
        if memory is not None and memory_mb is not None:
            raise TypeError(
                "Resources() takes memory (bytes) or memory_mb, not both; "
                f"got memory={memory!r} and memory_mb={memory_mb!r}"
            )
        if memory is None:
            if memory_mb is None:
                raise TypeError(
                    "Resources() needs memory in bytes or memory_mb, "
                    "e.g. Resources(memory_mb=100, cpu=0.5)"
                )
            memory = int(memory_mb) * _MiB
        if cpu is None:
            raise TypeError(
                "Resources() needs cpu, e.g. Resources(memory_mb=100, cpu=0.5)"
            )
        if memory <= 0:
            raise ValueError(f"Resources memory must be positive, got {memory} bytes")
        if cpu <= 0:
            raise ValueError(f"Resources cpu must be positive, got {cpu}")
        values: dict[str, Any] = {
            "memory": int(memory),
            "cpu": float(cpu),
            "nvidia_gpu": nvidia_gpu,
            "amd_gpu": amd_gpu,
            "intel_gpu": intel_gpu,
            "nvidia_gpu_model": nvidia_gpu_model,
            "amd_gpu_model": amd_gpu_model,
            "intel_gpu_model": intel_gpu_model,
            "shm": shm,
            "tpu_type": tpu_type,
            "tpu_software_version": tpu_software_version,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def memory_mb(self) -> int:
        return self.memory // _MiB


@dataclass(frozen=True)
class RemoteImage:
    name: str
    tag: str | None = None
    registry: str | None = None
    cluster_name: str | None = None
    org_name: str | None = None
    project_name: str | None = None

    @classmethod
    def new_external_image(
        cls, name: str, registry: str | None = None, *, tag: str | None = None
    ) -> RemoteImage:
        return cls(name=name, tag=tag, registry=registry)

    @classmethod
    def new_platform_image(
        cls,
        name: str,
        registry: str,
        *,
        cluster_name: str,
        org_name: str | None,
        project_name: str,
        tag: str | None = None,
    ) -> RemoteImage:
        return cls(
            name=name,
            tag=tag,
            registry=registry,
            cluster_name=cluster_name,
            org_name=org_name,
            project_name=project_name,
        )

    @property
    def _is_in_apolo_registry(self) -> bool:
        """A platform image (``image:…``), as opposed to one of docker hub."""
        return bool(self.registry and self.cluster_name and self.project_name)

    def _with_tag(self, name: str) -> str:
        return f"{name}:{self.tag}" if self.tag else name

    def __str__(self) -> str:
        if self.cluster_name is None:
            return self._with_tag(self.name)
        path = "/".join(p for p in (self.org_name, self.project_name, self.name) if p)
        return self._with_tag(f"image://{self.cluster_name}/{path}")

    def as_docker_url(self, with_scheme: bool = False) -> str:
        """The image reference the platform pulls, as sent on the wire."""
        if self.cluster_name is None or self.registry is None:
            return self._with_tag(self.name)
        path = "/".join(p for p in (self.org_name, self.project_name, self.name) if p)
        prefix = "https://" if with_scheme else ""
        return self._with_tag(f"{prefix}{self.registry}/{path}")


@dataclass(frozen=True)
class LocalImage:
    """An image of the local docker daemon (``name:tag``)."""

    name: str
    tag: str | None = None

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag else self.name


@dataclass(frozen=True)
class HTTPPort:
    port: int
    requires_auth: bool = True


@dataclass(frozen=True)
class Volume:
    storage_uri: URL
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class SecretFile:
    secret_uri: URL
    container_path: str


@dataclass(frozen=True)
class DiskVolume:
    disk_uri: URL
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class Container:
    image: RemoteImage
    resources: Resources
    entrypoint: str | None = None
    command: str | None = None
    working_dir: str | None = None
    http: HTTPPort | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: Sequence[Volume] = field(default_factory=list)
    secret_env: Mapping[str, URL] = field(default_factory=dict)
    secret_files: Sequence[SecretFile] = field(default_factory=list)
    disk_volumes: Sequence[DiskVolume] = field(default_factory=list)
    tty: bool = False


@dataclass(frozen=True)
class JobStatusItem:
    status: JobStatus
    transition_time: datetime
    reason: str = ""
    description: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class JobStatusHistory:
    status: JobStatus
    reason: str
    description: str
    restarts: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_time_seconds: int | None = None
    exit_code: int | None = None
    transitions: Sequence[JobStatusItem] = field(default_factory=list)

    @property
    def changed_at(self) -> datetime:
        """When the job entered its current status."""
        if self.transitions:
            return self.transitions[-1].transition_time
        when = self.finished_at or self.started_at or self.created_at
        if when is None:
            raise ValueError("job history carries no timestamps")
        return when


@dataclass(frozen=True)
class JobDescriptionInternal:
    """The platform's bookkeeping flags of a job record; ``apolo_sdk`` keeps them
    out of the public fields, under ``JobDescription._internal``."""

    materialized: bool = False
    being_dropped: bool = False
    logs_removed: bool = False


@dataclass(frozen=True)
class JobDescription:
    id: str
    owner: str
    cluster_name: str
    org_name: str | None
    project_name: str
    namespace: str
    status: JobStatus
    history: JobStatusHistory
    container: Container
    scheduler_enabled: bool
    pass_config: bool
    uri: URL
    total_price_credits: Decimal
    price_credits_per_hour: Decimal
    name: str | None = None
    tags: Sequence[str] = ()
    description: str | None = None
    http_url: URL = URL()
    internal_hostname: str | None = None
    internal_hostname_named: str | None = None
    restart_policy: JobRestartPolicy = JobRestartPolicy.NEVER
    life_span: float | None = None
    schedule_timeout: float | None = None
    preset_name: str | None = None
    preemptible_node: bool = False
    privileged: bool = False
    priority: JobPriority = JobPriority.NORMAL
    energy_schedule_name: str | None = None
    _internal: JobDescriptionInternal = JobDescriptionInternal()

    @property
    def reason(self) -> str:
        """The reason of the current status (older SDKs' ``job.reason``)."""
        return self.history.reason

    @property
    def exit_code(self) -> int | None:
        return self.history.exit_code

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """What IPython shows for a job (a magic's result): one line, the fields a
        user looks at. ``repr()`` still has every field."""
        fields = [f"id={self.id!r}", f"status={self.status.value}"]
        if self.name:
            fields.append(f"name={self.name!r}")
        fields.append(f"image={str(self.container.image)!r}")
        if self.preset_name:
            fields.append(f"preset={self.preset_name!r}")
        if self.history.reason:
            fields.append(f"reason={self.history.reason!r}")
        if self.history.exit_code is not None:
            fields.append(f"exit_code={self.history.exit_code}")
        printer.text(f"JobDescription({', '.join(fields)})")


@dataclass(frozen=True)
class _GPUPreset:
    count: int
    model: str | None = None
    memory: int | None = None


@dataclass(frozen=True)
class NvidiaGPUPreset(_GPUPreset):
    """NVIDIA GPUs of a preset: how many, and which model if the preset fixes it."""


@dataclass(frozen=True)
class AMDGPUPreset(_GPUPreset):
    pass


@dataclass(frozen=True)
class IntelGPUPreset(_GPUPreset):
    pass


@dataclass(frozen=True)
class TPUPreset:
    type: str
    software_version: str


@dataclass(frozen=True)
class Preset:
    credits_per_hour: Decimal
    cpu: float
    memory: int
    nvidia_gpu: NvidiaGPUPreset | None = None
    nvidia_migs: Mapping[str, NvidiaGPUPreset] | None = None
    amd_gpu: AMDGPUPreset | None = None
    intel_gpu: IntelGPUPreset | None = None
    tpu: TPUPreset | None = None
    scheduler_enabled: bool = False
    preemptible_node: bool = False
    resource_pool_names: tuple[str, ...] = ()
    available_resource_pool_names: tuple[str, ...] = ()

    @property
    def memory_mb(self) -> int:
        return self.memory // _MiB

    def resources(self, *, shm: bool = True) -> Resources:
        """Every resource of the preset (GPUs and TPU too), as a container needs."""
        return Resources(
            memory=self.memory,
            cpu=self.cpu,
            nvidia_gpu=self.nvidia_gpu.count if self.nvidia_gpu else None,
            amd_gpu=self.amd_gpu.count if self.amd_gpu else None,
            intel_gpu=self.intel_gpu.count if self.intel_gpu else None,
            nvidia_gpu_model=self.nvidia_gpu.model if self.nvidia_gpu else None,
            amd_gpu_model=self.amd_gpu.model if self.amd_gpu else None,
            intel_gpu_model=self.intel_gpu.model if self.intel_gpu else None,
            shm=shm,
            tpu_type=self.tpu.type if self.tpu else None,
            tpu_software_version=self.tpu.software_version if self.tpu else None,
        )
