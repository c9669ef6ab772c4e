"""``client.storage``: the platform's storage, with ``apolo_sdk``'s method names.

Every URI goes through :func:`normalize_storage_path_uri` (``storage:folder`` is
``folder`` in the current project). Transfers are streamed, never held whole in
memory: an upload is a CREATE with the first MiB and one WRITE per further MiB (the
``apolo_sdk`` protocol), a few in flight at once; a download is one streamed OPEN
written to disk while the next bytes arrive (see ``_storage_transfer``). One file's
``update``/``continue_`` and progress are in ``_storage_files``, folders in
``_storage_dirs``, ``glob`` in ``_storage_glob``; the methods here check their
arguments and hand over."""

from __future__ import annotations

import asyncio
import errno
import json
import stat
import time
from collections.abc import AsyncGenerator, AsyncIterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from ._config import Config
from ._core import DEFAULT_TIMEOUT, Core
from ._errors import NDJSONError, ResourceNotFound
from ._file_filter import AsyncFilterFunc
from ._storage_dirs import download_dir, upload_dir
from ._storage_files import (
    ServerClock,
    download_offset,
    fetch_file,
    send_file,
    upload_offset,
)
from ._storage_glob import glob
from ._storage_local import (
    get_local,
    one_file_local,
    put_local,
    regular_or_missing,
)
from ._storage_models import (
    DiskUsageInfo,
    FileStatus,
    disk_usage_from_api,
    file_status_from_ls,
    file_status_from_stat,
)
from ._storage_progress import (
    AbstractDeleteProgress,
    AbstractFileProgress,
    Reporter,
    StorageProgressDelete,
)
from ._storage_progress import AbstractRecursiveFileProgress as FolderProgress
from ._storage_transfer import local_path, next_piece
from ._url_utils import normalize_storage_path_uri
from ._utils import asyncgeneratorcontextmanager

NDJSON = "application/x-ndjson"
# Transfers may pause for longer than a minute (slow disks, big folders).
TRANSFER_TIMEOUT = aiohttp.ClientTimeout(
    total=None, connect=None, sock_read=None, sock_connect=DEFAULT_TIMEOUT.sock_connect
)


def _server_error(item: dict[str, Any]) -> None:
    """Raise the error a storage ndjson line carries, as ``apolo_sdk`` does."""
    if "error" not in item:
        return
    code = item.get("errno")
    if code is not None:
        number = code if isinstance(code, int) else getattr(errno, str(code), None)
        if isinstance(number, int):
            raise OSError(number, str(item["error"]))
    raise NDJSONError(str(item["error"]))


class Storage:
    """List, read and write the platform's storage (``storage:`` URIs)."""

    def __init__(self, core: Core, config: Config) -> None:
        self._core = core
        self._config = config
        self._clock = ServerClock()  # for update= and continue_=
        # Storage origins that refused the folder transfers' socket: HTTP there.
        self._no_socket: set[str] = set()
        self._no_local: set[str] = set()  # and those that offer no local transfer
        self._local_socket: dict[str, str] = {}  # the Unix socket of those that do

    # ------------------------------------------------------------ addressing

    def _normalize(self, uri: URL) -> URL:
        if uri.scheme == "storage" and not uri.host and ".." in uri.path.split("/"):
            raise ValueError(
                f"'..' is not allowed in storage paths ({uri}); write the path "
                "from the project folder, e.g. storage:folder/file, or "
                "storage:/<project>/<path> for another project"
            )
        return normalize_storage_path_uri(uri, self._config)

    def _url(self, uri: URL) -> URL:
        """``uri`` (normalized) on the wire: ``{storage_url}/{org}/{project}/...``."""
        assert uri.host is not None
        return self._config.get_cluster(uri.host).storage_url / uri.path.lstrip("/")

    # ------------------------------------------------------------ metadata

    @asyncgeneratorcontextmanager
    async def ls(self, uri: URL) -> AsyncGenerator[FileStatus, None]:
        """The entries of a folder (``FileStatus.path`` is the entry's name)."""
        uri = self._normalize(uri)
        url = self._url(uri).with_query(op="LISTSTATUS")
        headers = {"Accept": NDJSON}
        sent = time.time()
        async with self._core.request("GET", url, headers=headers) as resp:
            self._clock.observe(sent, resp.headers)
            if resp.headers.get("Content-Type", "").startswith(NDJSON):
                async for line in resp.content:
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    _server_error(item)
                    yield file_status_from_ls(uri, item["FileStatus"])
            else:
                body = await resp.json()
                for item in body["FileStatuses"]["FileStatus"]:
                    yield file_status_from_ls(uri, item)

    async def stat(self, uri: URL) -> FileStatus:
        """One entry; ``ResourceNotFound`` if it does not exist."""
        uri = self._normalize(uri)
        assert uri.host is not None
        url = self._url(uri).with_query(op="GETFILESTATUS")
        sent = time.time()
        async with self._core.request("GET", url) as resp:
            self._clock.observe(sent, resp.headers)
            body = await resp.json()
        return file_status_from_stat(uri.host, body["FileStatus"])

    async def _exists(self, uri: URL) -> FileStatus | None:
        try:
            return await self.stat(uri)
        except ResourceNotFound:
            return None

    async def mkdir(
        self, uri: URL, *, parents: bool = False, exist_ok: bool = False
    ) -> None:
        """Create a folder; ``parents`` creates missing parents too, ``exist_ok``
        accepts an existing folder (as ``pathlib.Path.mkdir``)."""
        uri = self._normalize(uri)
        if not exist_ok and await self._exists(uri) is not None:
            raise FileExistsError(
                errno.EEXIST,
                "File exists (pass exist_ok=True to accept an existing folder)",
                str(uri),
            )
        if not parents:
            parent = URL(str(uri).rstrip("/")).parent
            if parent.path.strip("/") and await self._exists(parent) is None:
                raise FileNotFoundError(
                    errno.ENOENT,
                    "No such directory (pass parents=True to create missing folders)",
                    str(parent),
                )
        url = self._url(uri).with_query(op="MKDIRS")
        async with self._core.request("PUT", url):
            pass

    async def disk_usage(
        self,
        cluster_name: str | None = None,
        org_name: str | None = None,
        uri: URL | None = None,
    ) -> DiskUsageInfo:
        """Total, used and free bytes of the storage holding ``uri`` (or the
        current project)."""
        cluster = cluster_name or self._config.cluster_name
        org = org_name or self._config.org_name
        if uri is None:
            project = self._config.project_name_or_raise
            path = f"/{org}/{project}" if org else f"/{project}"
            target = URL.build(scheme="storage", host=cluster, path=path)
        else:
            target = self._normalize(uri)
        url = self._url(target).with_query(op="GETDISKUSAGE")
        async with self._core.request("GET", url) as resp:
            body = await resp.json()
        return disk_usage_from_api(cluster, org, uri, body)

    # ------------------------------------------------------------ changes

    async def rm(
        self,
        uri: URL,
        *,
        recursive: bool = False,
        progress: AbstractDeleteProgress | None = None,
    ) -> None:
        """Delete a file, or a folder with everything in it if ``recursive``.
        ``progress.delete`` gets a ``StorageProgressDelete`` for each removed
        entry as the platform reports it (children before their folder)."""
        uri = self._normalize(uri)
        url = self._url(uri).with_query(
            op="DELETE", recursive="true" if recursive else "false"
        )
        assert uri.host is not None
        base = URL.build(scheme="storage", host=uri.host)
        async with self._core.request(
            "DELETE", url, headers={"Accept": NDJSON}
        ) as resp:
            if resp.headers.get("Content-Type", "").startswith(NDJSON):
                async for line in resp.content:
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    _server_error(item)
                    if progress is not None:
                        path = str(item["path"]).lstrip("/")
                        progress.delete(
                            StorageProgressDelete(base / path, bool(item["is_dir"]))
                        )

    async def mv(self, src: URL, dst: URL) -> None:
        """Rename ``src`` to ``dst`` (both on the same cluster)."""
        src = self._normalize(src)
        dst = self._normalize(dst)
        if src.host != dst.host:
            raise ValueError(
                f"Cannot move cross-cluster ({src} -> {dst}): download and upload"
            )
        url = self._url(src).with_query(
            op="RENAME", destination="/" + dst.path.lstrip("/")
        )
        async with self._core.request("POST", url):
            pass

    # ------------------------------------------------------------ contents

    async def create(self, uri: URL, data: bytes | AsyncIterator[bytes]) -> None:
        """Create (or truncate) a file with ``data``, streamed if an iterator."""
        url = self._url(self._normalize(uri)).with_query(op="CREATE")
        async with self._core.request("PUT", url, data=data, timeout=TRANSFER_TIMEOUT):
            pass

    async def write(self, uri: URL, data: bytes, offset: int) -> None:
        """Write ``data`` into an existing file at ``offset``."""
        if not data:
            raise ValueError("empty data: write needs at least one byte")
        url = self._url(self._normalize(uri)).with_query(op="WRITE")
        headers = {"Content-Range": f"bytes {offset}-{offset + len(data) - 1}/*"}
        async with self._core.request(
            "PATCH", url, data=data, headers=headers, timeout=TRANSFER_TIMEOUT
        ):
            pass

    @asyncgeneratorcontextmanager
    async def open(
        self, uri: URL, offset: int = 0, size: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The bytes of a file, from ``offset``, at most ``size`` of them."""
        if offset < 0:
            raise ValueError(f"offset should be >= 0, got {offset}")
        if size is not None and size < 0:
            raise ValueError(f"size should be >= 0, got {size}")
        if size == 0:
            return
        url = self._url(self._normalize(uri)).with_query(op="OPEN")
        headers = {}
        if offset or size is not None:
            end = "" if size is None else str(offset + size - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        async with self._core.request(
            "GET", url, headers=headers, timeout=TRANSFER_TIMEOUT
        ) as resp:
            if headers:
                rng = resp.headers.get("Content-Range", "")
                if resp.status != 206 or not rng.startswith(f"bytes {offset}-"):
                    raise RuntimeError(
                        f"the platform ignored the byte range of {uri} "
                        f"(status {resp.status}, Content-Range {rng!r})"
                    )
            while data := await next_piece(resp.content):
                yield data

    async def _read_whole(self, uri: URL) -> list[bytes]:
        """All the bytes of a (small) file, in one request, as they came."""
        url = self._url(self._normalize(uri)).with_query(op="OPEN")
        async with self._core.request("GET", url, timeout=TRANSFER_TIMEOUT) as resp:
            blocks = []
            while data := await next_piece(resp.content):
                blocks.append(data)
            return blocks

    async def upload_file(
        self,
        src: URL | Path | str,
        dst: URL,
        *,
        update: bool = False,
        continue_: bool = False,
        progress: AbstractFileProgress | None = None,
    ) -> None:
        """Copy a local file to storage (``dst`` names the file, not a folder).
        ``update``: skip it if storage's copy is newer; ``continue_``: resume an
        interrupted upload (see ``_storage_files``)."""
        path = local_path(src)
        dst = self._normalize(dst)
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "No such file", str(path))
        if path.is_dir():
            raise IsADirectoryError(
                errno.EISDIR,
                "Is a directory (upload it with upload_dir, or %apolo_cp -r)",
                str(path),
            )
        existing = await self._exists(dst)
        if existing is not None and existing.is_dir():
            raise IsADirectoryError(
                errno.EISDIR,
                f"Is a directory (name the file, e.g. {dst}/{path.name})",
                str(dst),
            )
        if existing is None:
            folder = await self._exists(dst.parent)
            if folder is None or not folder.is_dir():
                what = "does not exist" if folder is None else "is a file"
                raise NotADirectoryError(
                    errno.ENOTDIR,
                    f"Not a directory (it {what}; create the folder with "
                    "mkdir(..., parents=True))",
                    str(dst.parent),
                )
        offset: int | None = 0
        if existing is not None and (update or continue_):
            local = await asyncio.to_thread(path.stat)
            offset = upload_offset(
                local, existing, self._clock, update=update, continue_=continue_
            )
        if offset is None:
            return
        if offset == 0:
            st = await asyncio.to_thread(path.stat)
            size, regular = st.st_size, stat.S_ISREG(st.st_mode)
            async with one_file_local(self, dst.parent, size, regular) as files:
                if files is not None:
                    await put_local(files, path, dst, size, Reporter(progress))
                    return
        await send_file(self, path, dst, offset, Reporter(progress))

    async def download_file(
        self,
        src: URL,
        dst: URL | Path | str,
        *,
        update: bool = False,
        continue_: bool = False,
        progress: AbstractFileProgress | None = None,
    ) -> None:
        """Copy a storage file to a local file (created or overwritten).
        ``update``: skip it if the local copy is newer; ``continue_``: resume an
        interrupted download."""
        src = self._normalize(src)
        path = local_path(dst)
        status = await self.stat(src)
        if not status.is_file():
            raise IsADirectoryError(
                errno.EISDIR,
                f"Is not a file ({status.type.value.lower()}; a folder comes "
                "with download_dir, or %apolo_cp -r)",
                str(src),
            )
        offset: int | None = 0
        if update or continue_:
            try:
                local = await asyncio.to_thread(path.stat)
            except OSError:
                local = None
            if local is not None and path.is_file():
                offset = download_offset(
                    local, status, self._clock, update=update, continue_=continue_
                )
        if offset is None:
            return
        if offset == 0:
            regular = await asyncio.to_thread(regular_or_missing, path)
            async with one_file_local(self, src.parent, status.size, regular) as files:
                if files is not None:
                    target = await asyncio.to_thread(path.absolute)
                    report = Reporter(progress)
                    await get_local(files, src, target, status.size, report)
                    return
        await fetch_file(self, src, path, status.size, offset, Reporter(progress))

    async def upload_dir(
        self,
        src: URL | Path | str,
        dst: URL,
        *,
        update: bool = False,
        continue_: bool = False,
        filter: AsyncFilterFunc | None = None,
        ignore_file_names: AbstractSet[str] = frozenset(),
        progress: FolderProgress | None = None,
    ) -> None:
        """Copy a local folder into storage folder ``dst`` (created), several
        files at once. ``filter(relative_path)`` chooses what goes;
        ``ignore_file_names`` (e.g. ``{".gitignore"}``) names rule files read in
        each folder and above it (see ``_file_filter``)."""
        await upload_dir(
            self,
            src,
            dst,
            update=update,
            continue_=continue_,
            filter=filter,
            ignore_file_names=ignore_file_names,
            progress=progress,
        )

    async def download_dir(
        self,
        src: URL,
        dst: URL | Path | str,
        *,
        update: bool = False,
        continue_: bool = False,
        filter: AsyncFilterFunc | None = None,
        progress: FolderProgress | None = None,
    ) -> None:
        """Copy storage folder ``src`` into local folder ``dst`` (created)."""
        await download_dir(
            self,
            src,
            dst,
            update=update,
            continue_=continue_,
            filter=filter,
            progress=progress,
        )

    @asyncgeneratorcontextmanager
    async def glob(
        self, uri: URL, *, dironly: bool = False
    ) -> AsyncGenerator[URL, None]:
        """Storage URIs matching the shell pattern ``uri`` (``**`` recurses).
        A ``?`` parsed as the start of a query is taken back into the path."""
        if uri.raw_query_string:
            uri = URL(f"{uri.with_query(None)}%3F{uri.raw_query_string}")
        async for found in glob(self, uri, dironly):
            yield found

    # apolo_sdk's name for ls
    list = ls
