"""``%apolo_cp`` / ``apolo-jupyter cp``: what to copy where, then the copy.

One side is a local path (or ``file:`` URL), the other a ``storage:`` URI, as
``apolo cp``: SRC may be a shell pattern (``storage:results/*.csv``,
``data/*.bin``); a folder needs ``-r``; when DST is an existing folder (or ends
with ``/``), each source goes inside it under its own name, else DST is the new
name (and missing folders on the way to it are made). No Jupyter imports: the
CLI runs the same code.
"""

from __future__ import annotations

import asyncio
import glob
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from yarl import URL

from ..client import Client, ResourceNotFound
from ..client._storage_glob import has_magic
from ._transfer import Tracker


class CopyError(Exception):
    """Bad input for a copy; the message says how to fix it."""


@dataclass(frozen=True)
class Step:
    kind: str  # "upload_file", "upload_dir", "download_file", "download_dir"
    src: str
    dst: str
    size: int  # bytes, when known up front
    files: int


def _is_storage(text: str) -> bool:
    return text.startswith("storage:")


def _local(text: str) -> Path:
    if text.startswith("file:"):
        return Path(URL(text).path)
    return Path(os.path.expanduser(text)).absolute()


def _local_size(path: Path) -> tuple[int, int]:
    if path.is_file():
        return path.stat().st_size, 1
    size = files = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                size += os.stat(os.path.join(folder, name)).st_size
                files += 1
            except OSError:
                continue
    return size, files


async def _storage_size(client: Client, uri: URL) -> tuple[int, int]:
    size = files = 0
    async with client.storage.ls(uri) as entries:
        listed = [e async for e in entries]
    for entry in listed:
        if entry.is_dir():
            more, count = await _storage_size(client, entry.uri)
            size, files = size + more, files + count
        elif entry.is_file():
            size, files = size + entry.size, files + 1
    return size, files


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


async def plan(client: Client, src: str, dst: str, *, recursive: bool) -> list[Step]:
    """The transfers that copy ``src`` to ``dst``; ``CopyError`` if they can't."""
    if _is_storage(src) == _is_storage(dst):
        where = "storage" if _is_storage(src) else "local paths"
        raise CopyError(
            f"both sides are {where}: copy between a local path and storage:, "
            "e.g. %apolo_cp -r data storage:data"
        )
    if _is_storage(dst):
        return await _plan_upload(client, src, dst, recursive)
    return await _plan_download(client, src, dst, recursive)


async def _plan_upload(
    client: Client, src: str, dst: str, recursive: bool
) -> list[Step]:
    sources = [Path(p) for p in sorted(glob.glob(str(_local(src))))]
    if not has_magic(src):
        sources = [_local(src)]
    if not sources:
        raise CopyError(f"no local file matches {src!r}")
    target = await _storage_kind(client, URL(dst))
    into = target == "dir" or dst.endswith("/") or len(sources) > 1
    if into and target is None:
        raise CopyError(
            f"{dst} is not a storage folder: create it first, or name one file as DST"
        )
    steps = []
    for path in sources:
        if not path.exists():
            raise CopyError(f"no such local file or folder: {path}")
        name = _join(dst, path.name) if into else dst
        if path.is_dir():
            if not recursive:
                raise CopyError(f"{path} is a folder: add -r to copy it with its files")
            size, files = await asyncio.to_thread(_local_size, path)
            steps.append(Step("upload_dir", str(path), name, size, files))
        else:
            steps.append(Step("upload_file", str(path), name, path.stat().st_size, 1))
    return steps


async def _storage_kind(client: Client, uri: URL) -> str | None:
    try:
        status = await client.storage.stat(uri)
    except ResourceNotFound:
        return None
    return "dir" if status.is_dir() else "file"


async def _plan_download(
    client: Client, src: str, dst: str, recursive: bool
) -> list[Step]:
    if has_magic(src):
        try:
            async with client.storage.glob(URL(src)) as found:
                sources = [u async for u in found]
        except (ResourceNotFound, NotADirectoryError):  # the folder isn't there
            sources = []
        if not sources:
            raise CopyError(f"nothing in storage matches {src!r}")
    else:
        sources = [URL(src)]
    target = _local(dst)
    into = target.is_dir() or dst.endswith("/") or len(sources) > 1
    if into and not target.is_dir():
        raise CopyError(
            f"{target} is not a local folder: create it first, or name one file as DST"
        )
    steps = []
    for uri in sources:
        try:
            status = await client.storage.stat(uri)
        except ResourceNotFound:
            raise CopyError(f"no such file or folder in storage: {uri}") from None
        name = str(target / status.name) if into else str(target)
        if status.is_dir():
            if not recursive:
                raise CopyError(f"{uri} is a folder: add -r to copy it with its files")
            size, files = await _storage_size(client, uri)
            steps.append(Step("download_dir", str(uri), name, size, files))
        else:
            steps.append(Step("download_file", str(uri), name, status.size, 1))
    return steps


def describe(steps: list[Step]) -> str:
    verb = "upload" if steps[0].kind.startswith("upload") else "download"
    if len(steps) == 1:
        return f"{verb} {Path(steps[0].src.rstrip('/')).name or steps[0].src}"
    return f"{verb} {len(steps)} items"


def copier(
    client: Client, steps: list[Step], *, update: bool, continue_: bool
) -> Callable[[Tracker], Awaitable[None]]:
    """The copy itself, reporting to a tracker."""

    async def run(tracker: Tracker) -> None:
        storage = client.storage
        for step in steps:
            # missing folders on the way to DST are made, as mkdir -p does
            if step.kind.startswith("upload"):
                parent = URL(step.dst.rstrip("/")).parent
                await storage.mkdir(parent, parents=True, exist_ok=True)
            else:
                Path(step.dst).parent.mkdir(parents=True, exist_ok=True)
            if step.kind == "upload_file":
                await storage.upload_file(
                    Path(step.src), URL(step.dst), update=update,
                    continue_=continue_, progress=tracker,
                )  # fmt: skip
            elif step.kind == "upload_dir":
                await storage.upload_dir(
                    Path(step.src), URL(step.dst), update=update,
                    continue_=continue_, progress=tracker,
                )  # fmt: skip
            elif step.kind == "download_file":
                await storage.download_file(
                    URL(step.src), Path(step.dst), update=update,
                    continue_=continue_, progress=tracker,
                )  # fmt: skip
            else:
                await storage.download_dir(
                    URL(step.src), Path(step.dst), update=update,
                    continue_=continue_, progress=tracker,
                )  # fmt: skip

    return run
