"""Disks of the local platform: a folder each under the data directory, which the
jobs that mount them (``-v disk:NAME:/path``) share and which outlives them.

A disk's size is recorded as asked; the folder is not capped at that size.

A disk a job wrote may hold millions of files, so nothing on the event loop ever
walks or removes one: looking a disk up (``get``, used when a job is created and
started) reads its record only; its usage (``usage``, for ``disks.get``) is
measured by a walk in a thread, one at a time per disk (concurrent requests share
it), and ``disks.list`` shows the last measured figure; removal deletes the
folder in a thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from ._project import name_in_uri
from ._records import now_iso
from ._requests import BadRequest
from ._settings import ORG, PROJECT

_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?")
_ID = re.compile(r"disk-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class DiskNotFound(LookupError):
    pass


def _used_bytes(folder: Path) -> int:
    """The sizes of the files under ``folder`` (blocking: run it in a thread)."""
    used, stack = 0, [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            used += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return used


class DiskStore:
    def __init__(self, folder: Path, owner: str) -> None:
        self._folder = folder
        self._owner = owner
        self._walks: dict[str, asyncio.Future[int]] = {}  # disk id -> walk in a thread
        self._measured: dict[str, int] = {}  # disk id -> last measured usage

    def _meta(self, disk_id: str) -> Path:
        return self._folder / f"{disk_id}.json"

    def data_dir(self, disk_id: str) -> Path:
        """The folder a job sees at the disk's mount path."""
        return self._folder / disk_id

    def all(self) -> list[dict[str, Any]]:
        try:
            files = sorted(self._folder.glob("disk-*.json"))
        except FileNotFoundError:
            return []
        items = [json.loads(path.read_text()) for path in files]
        items = [{**d, "used_bytes": self._measured.get(d["id"], 0)} for d in items]
        return sorted(items, key=lambda d: str(d["created_at"]))

    def create(self, storage: Any, name: Any, life_span: Any) -> dict[str, Any]:
        if isinstance(storage, bool) or not isinstance(storage, int) or storage <= 0:
            raise BadRequest("storage must be a positive number of bytes, e.g. 10G")
        if name is not None:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise BadRequest(
                    f"disk name {name!r} is invalid: 1-40 lowercase letters, digits "
                    "and '-', starting with a letter, e.g. my-disk"
                )
            if any(d.get("name") == name for d in self.all()):
                raise BadRequest(
                    f"a disk named {name!r} exists already: pick another name or "
                    "remove it first"
                )
        disk_id = f"disk-{uuid.uuid4()}"
        disk = {
            "id": disk_id,
            "storage": storage,
            "owner": self._owner,
            "status": "Ready",
            "org_name": ORG,
            "project_name": PROJECT,
            "name": name,
            "created_at": now_iso(),
            "last_usage": None,
            "life_span": life_span,
            "used_bytes": 0,
        }
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir(disk_id).mkdir(mode=0o755)
        self._meta(disk_id).write_text(json.dumps(disk))
        return disk

    def get(self, id_or_name: str) -> dict[str, Any]:
        """The disk's record (its usage as last measured): no walk of its files."""
        if _ID.fullmatch(id_or_name):
            try:
                disk: dict[str, Any] = json.loads(self._meta(id_or_name).read_text())
            except FileNotFoundError:
                pass
            else:
                return {**disk, "used_bytes": self._measured.get(disk["id"], 0)}
        for disk in self.all():
            if disk.get("name") == id_or_name:
                return disk
        raise DiskNotFound(
            f"Disk {id_or_name!r} not found: list them with apolo-jupyter disk ls"
        )

    async def with_usage(self, id_or_name: str) -> dict[str, Any]:
        """The disk's record with its usage measured now (a walk in a thread,
        shared with concurrent requests for the same disk)."""
        disk = self.get(id_or_name)
        disk_id = disk["id"]
        walk = self._walks.get(disk_id)
        if walk is None:
            walk = asyncio.ensure_future(
                asyncio.to_thread(_used_bytes, self.data_dir(disk_id))
            )
            self._walks[disk_id] = walk
            walk.add_done_callback(lambda _: self._walks.pop(disk_id, None))
        used = await asyncio.shield(walk)
        self._measured[disk_id] = used
        return {**disk, "used_bytes": used}

    def touch(self, disk_id: str) -> None:
        """Record that a job mounted the disk now."""
        disk = json.loads(self._meta(disk_id).read_text())
        disk["last_usage"] = now_iso()
        self._meta(disk_id).write_text(json.dumps(disk))

    async def remove(self, id_or_name: str) -> None:
        """Forget the disk, then delete its folder in a thread."""
        disk_id = self.get(id_or_name)["id"]
        self._meta(disk_id).unlink()
        self._measured.pop(disk_id, None)
        await asyncio.to_thread(shutil.rmtree, self.data_dir(disk_id), True)

    def id_of(self, uri: str) -> str:
        """The id of the disk a ``disk://local/local/default/ID`` URI names."""
        name = name_in_uri(uri, "disk", "disk", "name")
        try:
            return str(self.get(name)["id"])
        except DiskNotFound as exc:
            raise BadRequest(str(exc)) from None
