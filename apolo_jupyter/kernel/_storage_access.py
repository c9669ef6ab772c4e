"""MountPicker's default callables: the notebook runtime's client and storage."""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

from ..client import Client, Volume
from ..widgets._mount_picker import CreateFolder, ListFolders
from ..widgets._mounts import ParseVolume
from ._runtime import runtime


async def _folders(client: Client, path: str) -> list[str]:
    names = []
    async with client.storage.ls(URL(f"storage:{path}")) as entries:
        async for entry in entries:
            if entry.is_dir():
                names.append(entry.name)
    return names


@dataclass(frozen=True)
class StorageCallables:
    list_folders: ListFolders
    create_folder: CreateFolder
    parse_volume: ParseVolume


def runtime_callables() -> StorageCallables:
    rt = runtime()
    client = rt.client()

    def list_folders(path: str) -> list[str]:
        return rt.run(_folders(client, path), timeout=30)

    def create_folder(path: str) -> None:
        rt.run(client.storage.mkdir(URL(f"storage:{path}"), parents=True), timeout=30)

    def parse_volume(spec: str) -> Volume:
        return client.parse.volume(spec)

    return StorageCallables(list_folders, create_folder, parse_volume)
