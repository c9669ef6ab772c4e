"""Names and presets of the local platform's single cluster."""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field
from typing import Any

from ..client._local_home import LocalPaths
from ._scheduler import Capacity
from ._validate import BadRequest, flag, mapping, number, string, whole

CLUSTER = "local"
ORG = "local"
PROJECT = "default"
REGISTRY_URL = "http://registry.local.invalid"
_GiB = 2**30
_CONFIG_FIX = (
    "fix it (see the README's local platform section for the keys) or move it "
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
            PresetSpec(
                string(p.get("name"), f"presets[{i}].name", 255),
                number(p.get("cpu"), f"presets[{i}].cpu", 0.1, 1e6),
                whole(p.get("memory"), f"presets[{i}].memory", 2**24, 2**62),
                flag(p, "preemptible", False, f"presets[{i}].preemptible"),
            )
            for i, p in enumerate(
                mapping(p, "a preset", '{"name": ...}') for p in raw_presets
            )
        )
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
        )

    def preset(self, name: str) -> PresetSpec | None:
        return next((p for p in self.presets if p.name == name), None)
