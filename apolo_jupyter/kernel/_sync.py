"""``--sync [DIR]``: the notebook's folder in storage, for a job to mount.

A sync uploads what changed since the last one, into a storage folder of its own
(``storage:.apolo-jupyter/sync/<name>-<key>``), and removes there what was removed
here. "Changed" means a different size or modification time (``st_mtime_ns``)
than at the last sync: no file is read to find out, so a folder of thousands of
files is checked in milliseconds. The sizes and times of the last sync are kept
in a manifest inside that storage folder (``.apolo-sync.json``): it goes if the
folder goes, and any kernel, on any machine, syncing the same folder sees it.

What is left out: anything ``.gitignore`` or ``.apoloignore`` files exclude (in
the folder, below it, and above it, as git reads them), and ``DEFAULT_EXCLUDES``
(``.git/``, ``.ipynb_checkpoints/``, ``__pycache__/``, ``.venv/``), which an
ignore file may re-include with ``!``. Symlinked folders are not followed.
Only regular files go: a symlink is sent as its target's contents only if that
target is a file inside the folder; one that leads out of it (``creds ->
~/.aws/credentials``, ``env -> /proc/self/environ``), a broken one, and anything
not a file (a FIFO, a device) are skipped, and the summary line names them. A
folder over the size limit (``DEFAULT_LIMIT``, or ``APOLO_JUPYTER_SYNC_LIMIT``)
is refused with a message that says how to leave things out or raise it.
No Jupyter imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import socket
import stat
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from ..client import Client, FileFilter, ResourceNotFound
from ..client._file_filter import load_parent_ignore_files
from ._transfer import format_size

SYNC_ROOT = "storage:.apolo-jupyter/sync"
MANIFEST = ".apolo-sync.json"
IGNORE_FILES = frozenset({".gitignore", ".apoloignore"})
DEFAULT_EXCLUDES = (".git/", ".ipynb_checkpoints/", "__pycache__/", ".venv/")
DEFAULT_LIMIT = 256 * 10**6
LIMIT_VAR = "APOLO_JUPYTER_SYNC_LIMIT"
MOUNT_ROOT = "/apolo/sync"
_SHOWN_SKIPS = 5  # skipped entries named in the summary line
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


class SyncError(Exception):
    """The folder cannot be synced; the message says what to do."""


@dataclass(frozen=True)
class SyncResult:
    local: Path
    remote: URL  # the storage folder
    files: int  # files in the synced set
    total_bytes: int
    uploaded: tuple[str, ...]  # relative paths sent this time
    uploaded_bytes: int
    removed: tuple[str, ...]  # relative paths removed from storage this time
    skipped: tuple[str, ...] = ()  # "path (why)": never sent, see the module

    @property
    def up_to_date(self) -> bool:
        return not self.uploaded and not self.removed

    def mount_path(self) -> str:
        return f"{MOUNT_ROOT}/{self.local.name or 'root'}"

    def summary(self) -> str:
        what = f"{self.files} file{'' if self.files == 1 else 's'}, "
        what += format_size(self.total_bytes)
        if self.up_to_date:
            return f"sync {self.local} ({what}): up to date, 0 files uploaded" + (
                self._skipped()
            )
        removed = f", {len(self.removed)} removed" if self.removed else ""
        sent = len(self.uploaded)
        return (
            f"sync {self.local} ({what}): {sent} file{'' if sent == 1 else 's'} "
            f"uploaded ({format_size(self.uploaded_bytes)}){removed}{self._skipped()}"
        )

    def _skipped(self) -> str:
        if not self.skipped:
            return ""
        shown = ", ".join(self.skipped[:_SHOWN_SKIPS])
        more = len(self.skipped) - _SHOWN_SKIPS
        return f"; skipped {shown}" + (f" and {more} more" if more > 0 else "")


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``2GB``, ``1.5g`` or plain bytes."""
    match = _SIZE.match(text)
    if match is None:
        raise SyncError(
            f"{LIMIT_VAR}={text!r} is not a size: write e.g. 500M, 2G or 1000000"
        )
    number, unit = float(match[1]), match[2].lower()
    return int(number * 10 ** (3 * " kmgt".index(unit or " ")))


def sync_limit() -> int:
    text = os.environ.get(LIMIT_VAR, "").strip()
    return parse_size(text) if text else DEFAULT_LIMIT


def remote_folder(local: Path) -> URL:
    """The storage folder of ``local``: its name, plus a key for this machine and
    path, so two folders of one name never share it."""
    key = hashlib.sha256(f"{socket.gethostname()}:{local}".encode()).hexdigest()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", local.name) or "root"
    return URL(f"{SYNC_ROOT}/{name}-{key[:10]}")


# ------------------------------------------------------------------ the local side


@dataclass(frozen=True)
class Listing:
    files: dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)
    dirs: frozenset[str]  # relative paths, "a/b"
    skipped: tuple[str, ...] = ()  # "a/b (why)"

    @property
    def total(self) -> int:
        return sum(size for size, _ in self.files.values())


def _base_rules(local: Path, names: AbstractSet[str]) -> FileFilter:
    defaults = FileFilter()
    for pattern in DEFAULT_EXCLUDES:
        defaults.exclude(pattern)
    defaults.exclude(f"/{MANIFEST}")
    chained = load_parent_ignore_files(defaults.match, names, local)
    rules = getattr(chained, "__self__", None)
    assert isinstance(rules, FileFilter)
    return rules


def scan(local: Path, limit: int, names: AbstractSet[str] = IGNORE_FILES) -> Listing:
    """What a sync of ``local`` takes (a blocking walk: run it in a thread)."""
    files: dict[str, tuple[int, int]] = {}
    dirs: set[str] = set()
    sizes: dict[str, int] = {}  # top-level entry -> bytes, for the limit message
    skipped: list[str] = []
    root = os.path.realpath(local)
    total = 0
    stack: list[tuple[Path, str, FileFilter]] = [(local, "", _base_rules(local, names))]
    while stack:
        folder, rel, rules = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name in names and entry.is_file():
                inner = FileFilter(rules.match)
                inner.read_from_file(Path(entry.path), prefix=rel)
                rules = inner
        for entry in entries:
            child = rel + entry.name
            if entry.is_dir(follow_symlinks=False):
                if rules.match_now(child + "/"):
                    dirs.add(child)
                    stack.append((Path(entry.path), child + "/", rules))
                continue
            if not rules.match_now(child):
                continue
            why = _not_sent(entry, root)
            if why:
                skipped.append(f"{child} ({why})")
                continue
            st = entry.stat()
            files[child] = (st.st_size, st.st_mtime_ns)
            top = child.split("/", 1)[0] + ("/" if "/" in child else "")
            sizes[top] = sizes.get(top, 0) + st.st_size
            total += st.st_size
            if total > limit:
                raise SyncError(_too_big(local, limit, sizes))
    return Listing(files, frozenset(dirs), tuple(skipped))


def _not_sent(entry: os.DirEntry[str], root: str) -> str:
    """Why ``entry`` (not a folder) is not sent, or "" if it is a file to send."""
    if entry.is_symlink():
        target = os.path.realpath(entry.path)
        if not target.startswith(root.rstrip("/") + "/"):
            return "a symlink out of the folder"
    try:
        st = entry.stat()
    except OSError:
        return "a broken symlink"
    if stat.S_ISDIR(st.st_mode):
        return "a symlinked folder, not followed"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return ""


def _too_big(local: Path, limit: int, sizes: dict[str, int]) -> str:
    biggest = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    named = ", ".join(f"{name} ({format_size(size)})" for name, size in biggest)
    return (
        f"{local} holds more than the sync limit of {format_size(limit)} (the "
        f"largest: {named}). Leave big things out with a line per pattern in "
        f"{local / '.apoloignore'} (as in .gitignore, e.g. 'data/' or '*.ckpt'), or "
        f"raise the limit: %env {LIMIT_VAR}=2G in the notebook, or "
        f"export {LIMIT_VAR}=2G before starting it"
    )


# ------------------------------------------------------------------ storage


async def _read_manifest(client: Client, remote: URL) -> dict[str, Any]:
    try:
        async with client.storage.open(remote / MANIFEST) as chunks:
            manifest = json.loads(b"".join([chunk async for chunk in chunks]))
    except ResourceNotFound:
        return {}
    except ValueError:  # damaged: a full sync rebuilds it
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _changes(
    listing: Listing, manifest: dict[str, Any]
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Files to send, folders to create, files and folders to remove."""
    old_files = {k: tuple(v) for k, v in dict(manifest.get("files", {})).items()}
    old_dirs = set(manifest.get("dirs", []))
    send = [rel for rel, sig in listing.files.items() if old_files.get(rel) != sig]
    new_dirs = sorted(listing.dirs - old_dirs)
    gone_dirs = sorted(old_dirs - listing.dirs)
    top_gone = [
        d for d in gone_dirs if not any(d.startswith(o + "/") for o in gone_dirs)
    ]
    gone = [
        rel
        for rel in old_files
        if rel not in listing.files
        and not any(rel.startswith(d + "/") for d in top_gone)
    ]
    return send, new_dirs, sorted(gone), top_gone


async def sync_folder(
    client: Client,
    local: Path,
    *,
    limit: int | None = None,
    progress: Any = None,
    remote: URL | None = None,
) -> SyncResult:
    """Make ``remote`` (default: ``remote_folder(local)``) hold what ``local``
    holds, sending only what changed since the last sync."""
    local = await asyncio.to_thread(lambda: local.expanduser().absolute())
    if not await asyncio.to_thread(local.is_dir):
        raise SyncError(
            f"--sync {local}: not a folder; name the folder to send to the job"
        )
    remote = remote or remote_folder(local)
    cap = sync_limit() if limit is None else limit
    listing, manifest = await asyncio.gather(
        asyncio.to_thread(scan, local, cap), _read_manifest(client, remote)
    )
    send, new_dirs, gone, gone_dirs = _changes(listing, manifest)
    if send or new_dirs or gone or gone_dirs or not manifest:
        await _apply(
            client, local, remote, listing, send + new_dirs, gone, gone_dirs, progress
        )
    return SyncResult(
        local=local,
        remote=remote,
        files=len(listing.files),
        total_bytes=listing.total,
        uploaded=tuple(send),
        uploaded_bytes=sum(listing.files[rel][0] for rel in send),
        removed=tuple(gone + gone_dirs),
        skipped=listing.skipped,
    )


async def _apply(
    client: Client,
    local: Path,
    remote: URL,
    listing: Listing,
    targets: list[str],
    gone: list[str],
    gone_dirs: list[str],
    progress: Any,
) -> None:
    """Remove what is gone, send ``targets`` (files, and folders to create), then
    record the new state."""
    storage = client.storage
    await storage.mkdir(remote, parents=True, exist_ok=True)
    for rel in gone_dirs:
        await _remove(client, remote / rel, recursive=True)
    for rel in gone:
        await _remove(client, remote / rel, recursive=False)
    wanted = {t if t in listing.files else t + "/" for t in targets}
    for target in list(wanted):  # the folders on the way to each
        parts = target.rstrip("/").split("/")
        wanted.update("/".join(parts[:i]) + "/" for i in range(1, len(parts)))

    async def chosen(path: str) -> bool:
        return path in wanted

    if targets:
        await storage.upload_dir(local, remote, filter=chosen, progress=progress)
    manifest = {
        "version": 1,
        "local": str(local),
        "files": {rel: list(sig) for rel, sig in sorted(listing.files.items())},
        "dirs": sorted(listing.dirs),
    }
    await storage.create(remote / MANIFEST, json.dumps(manifest).encode())


async def _remove(client: Client, uri: URL, *, recursive: bool) -> None:
    with contextlib.suppress(ResourceNotFound, FileNotFoundError):
        await client.storage.rm(uri, recursive=recursive)
