"""Names and presets of the local platform's single cluster."""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field
from typing import Any

from ..client._local_home import LocalPaths
from ._scheduler import Capacity

CLUSTER = "local"
ORG = "local"
PROJECT = "default"
REGISTRY_URL = "http://registry.local.invalid"
_GiB = 2**30


@dataclass(frozen=True)
class PresetSpec:
    name: str
    cpu: float
    memory: int
    preemptible: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "credits_per_hour": "0",
            "cpu": self.cpu,
            "memory": self.memory,
            "scheduler_enabled": self.preemptible,
            "preemptible_node": self.preemptible,
            "resource_pool_names": ["local-cpu-p" if self.preemptible else "local-cpu"],
        }


DEFAULT_PRESETS = (
    PresetSpec("cpu-small", 1.0, 1 * _GiB),
    PresetSpec("cpu-medium", 2.0, 4 * _GiB),
    PresetSpec("cpu-large", 4.0, 8 * _GiB),
    PresetSpec("cpu-small-p", 1.0, 1 * _GiB, preemptible=True),
)


@dataclass(frozen=True)
class Settings:
    paths: LocalPaths
    owner: str = field(default_factory=getpass.getuser)
    presets: tuple[PresetSpec, ...] = DEFAULT_PRESETS
    kill_grace: float = 5.0
    capacity: Capacity = field(default_factory=Capacity.of_machine)
    # Seconds in a life-span minute; only tests shorten it.
    minute: float = 60.0

    @classmethod
    def load(cls, paths: LocalPaths) -> Settings:
        """Defaults, overridden by ``config.json`` in the data directory."""
        try:
            data = json.loads(paths.settings_file.read_text())
        except FileNotFoundError:
            return cls(paths)
        presets = tuple(
            PresetSpec(
                p["name"], float(p["cpu"]), int(p["memory"]), bool(p.get("preemptible"))
            )
            for p in data.get("presets", [])
        )
        machine = Capacity.of_machine()
        cap = data.get("capacity", {})
        return cls(
            paths,
            presets=presets or DEFAULT_PRESETS,
            kill_grace=float(data.get("kill_grace", 5.0)),
            capacity=Capacity(
                cpu=float(cap.get("cpu", machine.cpu)),
                memory=int(cap.get("memory", machine.memory)),
            ),
            minute=float(data.get("minute_seconds", 60.0)),
        )

    def preset(self, name: str) -> PresetSpec | None:
        return next((p for p in self.presets if p.name == name), None)
