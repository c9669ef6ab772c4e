"""The mount list behind ``MountPicker``: validation and results, no widgets."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from ..client import Volume

ParseVolume = Callable[[str], Volume]


@dataclass(frozen=True)
class Mount:
    """A storage folder (relative to the project, e.g. ``data/raw``) at a path."""

    folder: str
    container_path: str
    read_only: bool = False

    @property
    def spec(self) -> str:
        """The CLI form, e.g. ``storage:data:/var/data:ro``."""
        return f"storage:{self.folder}:{self.container_path}" + (
            ":ro" if self.read_only else ""
        )


def default_container_path(folder: str) -> str:
    name = posixpath.basename(folder.rstrip("/")) or "data"
    return f"/mnt/{name}"


class MountList:
    """Mounts chosen so far; every change is validated by the client's parser."""

    def __init__(self, parse_volume: ParseVolume) -> None:
        self._parse = parse_volume
        self._mounts: list[Mount] = []

    @property
    def mounts(self) -> tuple[Mount, ...]:
        return tuple(self._mounts)

    def add(self, folder: str, container_path: str, read_only: bool) -> Mount:
        """Add a mount; ValueError (saying how to fix it) if it is not valid."""
        folder = folder.strip().strip("/")
        container_path = container_path.strip()
        if not folder:
            raise ValueError("choose a storage folder first (or create one)")
        if not container_path.startswith("/"):
            raise ValueError(
                f"container path {container_path!r} must be absolute, e.g. /var/data"
            )
        normalized = posixpath.normpath(container_path)
        if normalized == "/":
            raise ValueError("a volume cannot be mounted at /; use e.g. /var/data")
        for mount in self._mounts:
            if posixpath.normpath(mount.container_path) == normalized:
                raise ValueError(
                    f"{normalized} is already used by storage:{mount.folder}; "
                    "pick another container path or remove that mount"
                )
        mount = Mount(folder, normalized, read_only)
        self._parse(mount.spec)  # raises the parser's own ValueError
        self._mounts.append(mount)
        return mount

    def set_read_only(self, container_path: str, read_only: bool) -> Mount:
        """Make an added mount read-only, or writable again."""
        for i, mount in enumerate(self._mounts):
            if mount.container_path == container_path:
                changed = Mount(mount.folder, mount.container_path, read_only)
                self._parse(changed.spec)
                self._mounts[i] = changed
                return changed
        raise ValueError(f"no mount at {container_path}; add it first")

    def remove(self, container_path: str) -> None:
        self._mounts = [m for m in self._mounts if m.container_path != container_path]

    def clear(self) -> None:
        self._mounts.clear()

    @property
    def value(self) -> list[str]:
        return [m.spec for m in self._mounts]

    @property
    def volumes(self) -> list[Volume]:
        return [self._parse(m.spec) for m in self._mounts]
