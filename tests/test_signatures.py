"""Every method and model we mirror has the installed apolo_sdk's signature.

SDK code calls with keywords (``parse.volume(volume=...)``) and positionally
(``RemoteImage("ubuntu", "22.04")``); both must work with ours. For each pair:
the SDK's parameters appear in ours with the same names, in the same positional
order and of the same kind (positional-or-keyword vs keyword-only); whatever
ours adds comes after them with a default. Defaults must match where the SDK's
is a plain value.
"""

from __future__ import annotations

import enum
import inspect
from typing import Any

import pytest

import apolo_jupyter as ours
from apolo_jupyter.client import (
    _config,
    _disks,
    _jobs,
    _parser,
    _secrets,
    _storage,
    _users,
)

sdk: Any = pytest.importorskip("apolo_sdk")

P = inspect.Parameter
_PLAIN = (type(None), bool, int, float, str, tuple)


def _pairs() -> list[tuple[str, Any, Any]]:
    s = sdk
    models = [
        "Container", "Resources", "HTTPPort", "Volume", "SecretFile", "DiskVolume",
        "RemoteImage", "Preset", "JobStatusItem", "VolumeParseResult",
        "EnvParseResult", "Secret", "Disk", "DiskUsageInfo", "LocalImage",
        "ImageProgressPull", "ImageProgressPush", "ImageProgressSave",
        "ImageProgressStep", "ImageCommitStarted", "ImageCommitFinished",
    ]  # fmt: skip
    pairs = [(name, getattr(ours, name), getattr(s, name)) for name in models]
    for name in ("NvidiaGPUPreset", "AMDGPUPreset", "IntelGPUPreset", "TPUPreset"):
        pairs.append((name, getattr(ours, name), getattr(s, f"_{name}")))
    methods = {
        (_jobs.Jobs, s.Jobs): [
            "run", "start", "status", "kill", "bump_life_span", "monitor",
            "port_forward", "list", "exec", "attach", "top", "send_signal",
            "get_capacity", "save",
        ],
        (_parser.Parser, s.Parser): [
            "volume", "volumes", "envs", "remote_image", "local_image", "str_to_uri",
            "normalize_uri", "uri_to_str",
        ],
        (_secrets.Secrets, s.Secrets): ["add", "list", "get", "rm"],
        (_disks.Disks, s.Disks): ["create", "list", "get", "rm"],
        (_users.Users, s.Users): ["share"],
        (_config.Config, s.Config): [
            "token", "switch_project", "switch_cluster", "switch_org", "get_cluster",
        ],
        (_storage.Storage, s.Storage): [
            "list", "stat", "mkdir", "create", "write", "open", "rm", "mv", "upload_file",
            "download_file", "disk_usage", "upload_dir", "download_dir", "glob",
        ],
        (ours.AbstractDockerImageProgress, s.AbstractDockerImageProgress): [
            "pull", "push", "step", "save", "commit_started", "commit_finished",
        ],
        (type(ours.RemoteImage), type(s.RemoteImage)): [],
    }  # fmt: skip
    for (mine, theirs), names in methods.items():
        for name in names:
            pairs.append(
                (
                    f"{theirs.__name__}.{name}",
                    getattr(mine, name),
                    getattr(theirs, name),
                )
            )
    for name in ("new_external_image", "new_platform_image"):
        pairs.append(
            (
                f"RemoteImage.{name}",
                getattr(ours.RemoteImage, name),
                getattr(sdk.RemoteImage, name),
            )
        )
    pairs.append(("get", ours.get, s.get))
    return pairs


PAIRS = _pairs()


def _default_matches(mine: Any, theirs: Any) -> bool:
    if isinstance(theirs, enum.Enum):
        return type(mine).__name__ == type(theirs).__name__ and mine.name == theirs.name
    if isinstance(theirs, _PLAIN):
        return bool(mine == theirs) or (mine == () and theirs in ((), None))
    return type(mine).__name__ == type(theirs).__name__


def compare(mine: Any, theirs: Any) -> list[str]:
    """What breaks a call that is valid against the SDK (empty: nothing)."""
    ours_sig, sdk_sig = inspect.signature(mine), inspect.signature(theirs)
    ours_params, sdk_params = dict(ours_sig.parameters), dict(sdk_sig.parameters)
    problems = []
    positional = (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
    sdk_pos = [n for n, p in sdk_params.items() if p.kind in positional]
    ours_pos = [n for n, p in ours_params.items() if p.kind in positional]
    if ours_pos[: len(sdk_pos)] != sdk_pos:
        problems.append(f"positional order {ours_pos} != the SDK's {sdk_pos}")
    for name, param in sdk_params.items():
        if name not in ours_params:
            if param.kind is not P.VAR_KEYWORD:
                problems.append(f"missing parameter {name!r}")
            continue
        mine_param = ours_params[name]
        if param.kind != mine_param.kind and param.kind is not P.VAR_KEYWORD:
            problems.append(
                f"{name!r} is {mine_param.kind.name}, the SDK's {param.kind.name}"
            )
        if param.default is not P.empty and mine_param.default is P.empty:
            problems.append(
                f"{name!r} default: ours {mine_param.default!r}, SDK's {param.default!r}"
            )
        elif param.default is not P.empty and not _default_matches(
            mine_param.default, param.default
        ):
            problems.append(
                f"{name!r} default {mine_param.default!r} != {param.default!r}"
            )
    for name, param in ours_params.items():
        if (
            name not in sdk_params
            and param.default is P.empty
            and param.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)
        ):
            problems.append(f"ours-only {name!r} has no default")
    return problems


@pytest.mark.parametrize(("name", "mine", "theirs"), PAIRS, ids=[p[0] for p in PAIRS])
def test_signature_matches_the_sdk(name: str, mine: Any, theirs: Any) -> None:
    assert compare(mine, theirs) == []


def test_the_comparison_catches_what_breaks_sdk_calls() -> None:
    """The checker itself: each kind of drift the issue found is reported."""

    def sdk_volume(self: Any, volume: str, cluster_name: str | None = None) -> None: ...
    def renamed(self: Any, spec: str, cluster_name: str | None = None) -> None: ...
    def keyword_only(self: Any, *, volume: str) -> None: ...
    def reordered(self: Any, cluster_name: str | None, volume: str) -> None: ...
    def no_default(self: Any, volume: str, extra: int) -> None: ...

    assert compare(sdk_volume, sdk_volume) == []
    for broken in (renamed, keyword_only, reordered, no_default):
        assert compare(broken, sdk_volume), broken.__name__


def test_count_of_pinned_signatures() -> None:
    assert len(PAIRS) >= 50
