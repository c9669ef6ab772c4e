"""Names and presets of the local platform's single cluster.

Presets and capacity come from ``config.json`` in the data directory, else from
the machine; the daemon adds its NVIDIA GPUs once found (``with_gpus``): the
``gpu-*`` presets unless ``config.json`` lists presets of its own, and the GPUs
as a capacity dimension.
"""

from __future__ import annotations

import getpass
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..client._local_home import LocalPaths
from ._gpu import Gpu, Gpus, NvidiaSettings
from ._scheduler import Capacity
from ._validate import BadRequest, flag, mapping, number, string, text, whole

CLUSTER = "local"
ORG = "local"
PROJECT = "default"
REGISTRY_URL = "http://registry.local.invalid"
_GiB = 2**30
_CONFIG_FIX = (
    "fix it (docs/local-platform.md, section config.json, lists the keys) or move it "
    "aside to use the defaults"
)


class ConfigError(ValueError):
    """``config.json`` cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class PresetSpec:
    name: str
    cpu: float
    memory: int
    preemptible: bool = False
    nvidia_gpu: int = 0
    nvidia_gpu_model: str | None = None  # None: any model
    nvidia_gpu_memory: int | None = None  # bytes, of one GPU

    @property
    def pool(self) -> str:
        kind = "gpu" if self.nvidia_gpu else "cpu"
        return f"local-{kind}" + ("-p" if self.preemptible else "")

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "credits_per_hour": "0",
            "cpu": self.cpu,
            "memory": self.memory,
            "scheduler_enabled": self.preemptible,
            "preemptible_node": self.preemptible,
            "resource_pool_names": [self.pool],
        }
        if self.nvidia_gpu:
            gpu: dict[str, Any] = {"count": self.nvidia_gpu}
            if self.nvidia_gpu_model:
                gpu["model"] = self.nvidia_gpu_model
            if self.nvidia_gpu_memory:
                gpu["memory"] = self.nvidia_gpu_memory
            data["nvidia_gpu"] = gpu
        return data

    def of_model(self, gpu: Gpu | None) -> PresetSpec:
        """A GPU preset without a model names the machine's (when it has one)."""
        if not self.nvidia_gpu or self.nvidia_gpu_model or gpu is None:
            return self
        return replace(self, nvidia_gpu_model=gpu.model, nvidia_gpu_memory=gpu.memory)


DEFAULT_PRESETS = (
    PresetSpec("cpu-small", 1.0, 1 * _GiB),
    PresetSpec("cpu-medium", 2.0, 4 * _GiB),
    PresetSpec("cpu-large", 4.0, 8 * _GiB),
    PresetSpec("cpu-small-p", 1.0, 1 * _GiB, preemptible=True),
)


def gpu_presets(count: int, capacity: Capacity) -> tuple[PresetSpec, ...]:
    """``gpu-small`` (one GPU and its share of the machine, at most 4 CPU and
    16 GiB) and, with two GPUs or more, ``gpu-large`` (all of them)."""
    if count <= 0:
        return ()
    cpu = max(0.1, min(4.0, math.floor(capacity.cpu / count * 10) / 10))
    memory = max(2**24, min(16 * _GiB, (capacity.memory // count) >> 20 << 20))
    small = PresetSpec("gpu-small", cpu, memory, nvidia_gpu=1)
    if count < 2:
        return (small,)
    large = PresetSpec(
        "gpu-large", round(cpu * count, 1), memory * count, nvidia_gpu=count
    )
    return small, large


def _gpu_of_preset(value: Any, what: str) -> tuple[int, str | None]:
    """A preset's ``nvidia_gpu``: a count, or ``{"count": 1, "model": "..."}``."""
    if value is None:
        return 0, None
    if isinstance(value, dict):
        count = whole(value.get("count"), f"{what}.count", 0, 1024)
        return count, text(value, "model", 255, f"{what}.model")
    return whole(value, what, 0, 1024), None


def _preset(p: dict[str, Any], i: int) -> PresetSpec:
    gpus, model = _gpu_of_preset(p.get("nvidia_gpu"), f"presets[{i}].nvidia_gpu")
    return PresetSpec(
        string(p.get("name"), f"presets[{i}].name", 255),
        number(p.get("cpu"), f"presets[{i}].cpu", 0.1, 1e6),
        whole(p.get("memory"), f"presets[{i}].memory", 2**24, 2**62),
        flag(p, "preemptible", False, f"presets[{i}].preemptible"),
        nvidia_gpu=gpus,
        nvidia_gpu_model=model,
    )


def _nvidia(data: Any, paths: LocalPaths) -> NvidiaSettings:
    raw = mapping(data, "nvidia", '{"smi": "/usr/bin/nvidia-smi", "devices": "/dev"}')
    smi = text(raw, "smi", 4096, "nvidia.smi") or None
    devices = text(raw, "devices", 4096, "nvidia.devices") or "/dev"
    if not os.path.isabs(devices):
        raise BadRequest(f"nvidia.devices {devices!r} must be an absolute path")
    folder = Path(os.path.normpath(devices))
    home = Path(os.path.abspath(paths.home))
    if folder == home or home in folder.parents:
        raise BadRequest(
            f"nvidia.devices {devices!r} lies inside the platform's data directory, "
            "where jobs keep their files: name the folder of the device nodes "
            "(normally /dev)"
        )
    return NvidiaSettings(smi, folder)


@dataclass(frozen=True)
class Settings:
    paths: LocalPaths
    owner: str = field(default_factory=getpass.getuser)
    presets: tuple[PresetSpec, ...] = DEFAULT_PRESETS
    kill_grace: float = 5.0
    capacity: Capacity = field(default_factory=Capacity.of_machine)
    # Seconds in a life-span minute; only tests shorten it.
    minute: float = 60.0
    # A restarting job's back-off (restart policy): at once, then this, doubling
    # up to the maximum, as the kubelet does (10 s, 5 min).
    restart_backoff: float = 10.0
    restart_backoff_max: float = 300.0
    nvidia: NvidiaSettings = NvidiaSettings()
    gpus: Gpus = Gpus()  # found by the daemon at start (with_gpus)
    custom_presets: bool = False  # config.json lists the presets

    def with_gpus(self, gpus: Gpus) -> Settings:
        """These settings on a machine with ``gpus``: the GPU presets (unless
        config.json lists presets), GPU models filled in, GPUs as capacity."""
        presets = self.presets
        if gpus.count and not self.custom_presets:
            presets += gpu_presets(gpus.count, self.capacity)
        return replace(
            self,
            gpus=gpus,
            presets=tuple(p.of_model(gpus.common()) for p in presets),
            capacity=replace(self.capacity, gpus=gpus.models),
        )

    @classmethod
    def load(cls, paths: LocalPaths) -> Settings:
        """Defaults, overridden by ``config.json`` in the data directory;
        ConfigError (naming the file and the fix) if that is not usable."""
        path = paths.settings_file
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls(paths)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} cannot be read ({exc}); {_CONFIG_FIX}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(
                f"{path} is not valid JSON ({exc}); {_CONFIG_FIX}"
            ) from None
        except RecursionError:
            raise ConfigError(f"{path} is nested too deeply; {_CONFIG_FIX}") from None
        try:
            return cls._from(paths, data)
        except BadRequest as exc:
            raise ConfigError(f"{path}: {exc}; {_CONFIG_FIX}") from None

    @classmethod
    def _from(cls, paths: LocalPaths, data: Any) -> Settings:
        data = mapping(data, "the file", '{"capacity": {"cpu": 4}}')
        raw_presets = data.get("presets", [])
        if not isinstance(raw_presets, list):
            raise BadRequest("presets must be a list")
        presets = tuple(
            _preset(p, i)
            for i, p in enumerate(
                mapping(p, "a preset", '{"name": ...}') for p in raw_presets
            )
        )
        first, cap_seconds = _backoff(data)
        machine = Capacity.of_machine()
        cap = mapping(data.get("capacity", {}), "capacity", '{"cpu": 4}')
        return cls(
            paths,
            presets=presets or DEFAULT_PRESETS,
            kill_grace=number(data.get("kill_grace", 5.0), "kill_grace", 0, 3600),
            capacity=Capacity(
                cpu=number(cap.get("cpu", machine.cpu), "capacity.cpu", 0.1, 1e6),
                memory=whole(
                    cap.get("memory", machine.memory), "capacity.memory", 2**24, 2**62
                ),
            ),
            minute=number(
                data.get("minute_seconds", 60.0), "minute_seconds", 1e-3, 1e6
            ),
            restart_backoff=first,
            restart_backoff_max=cap_seconds,
            nvidia=_nvidia(data.get("nvidia", {}), paths),
            custom_presets=bool(presets),
        )

    def preset(self, name: str) -> PresetSpec | None:
        return next((p for p in self.presets if p.name == name), None)


def _backoff(data: dict[str, Any]) -> tuple[float, float]:
    """``restart_backoff_seconds`` and ``restart_backoff_max_seconds``: the first
    wait between two runs of a restarting job, and the longest."""
    first = number(
        data.get("restart_backoff_seconds", 10.0), "restart_backoff_seconds", 1e-3, 3600
    )
    cap = number(
        data.get("restart_backoff_max_seconds", 300.0),
        "restart_backoff_max_seconds",
        1e-3,
        86400,
    )
    if cap < first:
        raise BadRequest(
            f"restart_backoff_max_seconds ({cap:g}) is below restart_backoff_seconds "
            f"({first:g}): the longest wait must be at least the first"
        )
    return first, cap
