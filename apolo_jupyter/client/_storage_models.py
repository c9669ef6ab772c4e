"""Frozen data of the storage API and its JSON form (reference §5)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from yarl import URL

from ._users import Action

PERMISSIONS = tuple(action.value for action in Action)


class FileStatusType(str, enum.Enum):
    DIRECTORY = "DIRECTORY"
    FILE = "FILE"
    SYMLINK = "SYMLINK"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class FileStatus:
    """One storage entry, as ``ls`` and ``stat`` return it."""

    path: str
    size: int
    type: FileStatusType
    modification_time: int
    permission: Action
    uri: URL
    target: str | None = None

    def is_file(self) -> bool:
        return self.type == FileStatusType.FILE

    def is_dir(self) -> bool:
        return self.type == FileStatusType.DIRECTORY

    def is_symlink(self) -> bool:
        return self.type == FileStatusType.SYMLINK

    @property
    def name(self) -> str:
        if "/" not in self.path and self.path != ".":  # an ls entry: the name
            return self.path
        return PurePosixPath(self.path).name


@dataclass(frozen=True)
class DiskUsageInfo:
    cluster_name: str
    total: int
    used: int
    free: int
    org_name: str | None
    uri: URL | None = None


def _status(path: str, uri: URL, values: dict[str, Any]) -> FileStatus:
    try:
        kind = FileStatusType(values["type"])
    except ValueError:
        kind = FileStatusType.UNKNOWN
    permission = str(values["permission"])
    if permission not in PERMISSIONS:
        raise ValueError(
            f"the platform sent an unknown permission {permission!r} for {uri} "
            f"(expected one of {', '.join(PERMISSIONS)})"
        )
    target = values.get("target")
    return FileStatus(
        path=path,
        size=int(values["length"]),
        type=kind,
        modification_time=int(values["modificationTime"]),
        permission=Action(permission),
        uri=uri,
        target=None if target is None else str(target),
    )


def file_status_from_ls(base: URL, values: dict[str, Any]) -> FileStatus:
    """A LISTSTATUS item: ``path`` is the entry's name inside ``base``."""
    name = str(values["path"])
    return _status(name, base / name, values)


def file_status_from_stat(cluster: str, values: dict[str, Any]) -> FileStatus:
    """A GETFILESTATUS answer: ``path`` is ``/{org}/{project}/{path}``."""
    path = str(values["path"])
    base = URL.build(scheme="storage", host=cluster)
    return _status(path, base / path.lstrip("/"), values)


def disk_usage_from_api(
    cluster: str, org: str | None, uri: URL | None, values: dict[str, Any]
) -> DiskUsageInfo:
    return DiskUsageInfo(
        cluster_name=cluster,
        total=int(values["total"]),
        used=int(values["used"]),
        free=int(values["free"]),
        org_name=org,
        uri=uri,
    )
