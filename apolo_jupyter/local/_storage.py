"""Storage API: ``{storage_url}/{org}/{project}/{path}?op=...`` (reference §5).

The storage lives in ``settings.paths.storage_dir``, laid out ``<org>/<project>/
<path>`` as on the real platform (jobs mount the same folders, see
``_volume_fs``). A path's parts are checked before anything is touched
(``_storage_fs.locate``), and its folder is reached from the root through folder
fds that follow no symlink on the way (``_storage_fs.parent_of``). A small
file (up to ``SMALL_FILE``) costs one request handled in one go: its body read
whole and written with one call, or its bytes read with one call and sent with
the headers. Larger bodies are streamed both ways (``_storage_io``): whole-chunk
disk writes run in a thread and files go out with ``sendfile``, so a large
transfer never stalls the event loop.
Errors are ``{"error", "errno"}`` JSON: 404 for a missing path (the SDK's
``ResourceNotFound``, which its probes expect), else 400 (an ``OSError`` there).

Folder transfers have two ways more: ``op=WEBSOCKET``, many file ops over one
socket as on the real platform (``_storage_socket``), and, from the same
machine, open files passed over a Unix socket (``_storage_local``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from ._settings import ORG, PROJECT
from ._storage_fs import Entry, StorageError, locate, os_error, storage_root
from ._storage_io import (
    SMALL_BODY,
    SMALL_FILE,
    byte_range,
    read_body,
    receive,
    send,
)
from ._storage_local import LocalTransfer
from ._storage_ops import (
    check_depth,
    disk_usage,
    file_status,
    is_dir,
    list_dir,
    make_dirs,
    new_version,
    open_file,
    regular_size,
    remove,
    rename,
    write_new,
)
from ._storage_socket import READ_ONLY, refuse_plain_get, session
from ._web import SETTINGS

log = logging.getLogger(__name__)
_STARTED = "apolo_storage_response"  # the response whose headers were sent
NDJSON = "application/x-ndjson"
NDJSON_BATCH = 1000
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

# The project folder, and the resolved storage root, found once.
_ROOT: web.AppKey[tuple[str, str]] = web.AppKey("storage_root", tuple)
_LOCAL: web.AppKey[LocalTransfer] = web.AppKey("storage_local", LocalTransfer)

OpHandler = Callable[[web.Request, Entry], Awaitable[web.StreamResponse]]


def _error(exc: StorageError) -> web.Response:
    return web.Response(
        status=exc.status,
        text=json.dumps(exc.to_api()),
        content_type="application/json",
    )


async def _start(request: web.Request, resp: web.StreamResponse) -> None:
    """Send the headers; from then on an error can only cut the body short."""
    request[_STARTED] = resp
    await resp.prepare(request)


async def _ndjson(request: web.Request, lines: list[str]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": NDJSON})
    await _start(request, resp)
    with contextlib.suppress(ConnectionError):  # the client went away
        for start in range(0, len(lines), NDJSON_BATCH):
            batch = lines[start : start + NDJSON_BATCH]
            await resp.write(("\n".join(batch) + "\n").encode())
        await resp.write_eof()
    return resp


def _wants_ndjson(request: web.Request) -> bool:
    return request.headers.get("Accept", "").startswith(NDJSON)


# ---------------------------------------------------------------- reading


async def list_status(request: web.Request, entry: Entry) -> web.StreamResponse:
    items = await asyncio.to_thread(list_dir, entry)
    if _wants_ndjson(request):
        return await _ndjson(request, [json.dumps({"FileStatus": i}) for i in items])
    return web.json_response({"FileStatuses": {"FileStatus": items}})


async def get_file_status(request: web.Request, entry: Entry) -> web.StreamResponse:
    return web.json_response({"FileStatus": file_status(entry)})


async def get_disk_usage(request: web.Request, entry: Entry) -> web.StreamResponse:
    return web.json_response(disk_usage(entry.root))


def _read_headers(
    resp: web.StreamResponse, rng: tuple[int, int] | None, size: int
) -> None:
    resp.content_type = "application/octet-stream"
    resp.headers["Accept-Ranges"] = "bytes"
    if rng:
        resp.headers["Content-Range"] = f"bytes {rng[0]}-{rng[1] - 1}/{size}"


async def read_file(request: web.Request, entry: Entry) -> web.StreamResponse:
    fd = open_file(entry, os.O_RDONLY)
    try:
        size = regular_size(fd, entry)
        rng = byte_range(request, size)
        start, end = rng or (0, size)
        if end - start <= SMALL_FILE:
            # One read, and the bytes go out with the headers in one write.
            data = os.pread(fd, end - start, start)
            if len(data) == end - start:  # else cut short meanwhile: see below
                small = web.Response(status=206 if rng else 200, body=data)
                _read_headers(small, rng, size)
                return small
        resp = web.StreamResponse(status=206 if rng else 200)
        resp.content_length = end - start
        _read_headers(resp, rng, size)
        await _start(request, resp)
        with contextlib.suppress(ConnectionError):  # the client went away
            await send(request, fd, start, end - start)
            await resp.write_eof()
        return resp
    finally:
        os.close(fd)


# ---------------------------------------------------------------- writing


async def create_file(request: web.Request, entry: Entry) -> web.StreamResponse:
    """The body goes to a temporary file that replaces the old one only once it
    is complete: a failed upload leaves the old file as it was."""
    check_depth(entry)
    length = request.content_length
    if length is not None and length <= SMALL_BODY:
        # Read whole, then written with one call. A small file is created right
        # here: a thread hop would cost more than the write.
        data = await read_body(request)
        if length <= SMALL_FILE:
            write_new(entry, data)
        else:
            await asyncio.to_thread(write_new, entry, data)
        return web.Response(status=201)
    with new_version(entry) as (fd, commit):
        await receive(request, fd, 0)
        commit()
    return web.Response(status=201)


async def write_file(request: web.Request, entry: Entry) -> web.StreamResponse:
    check_depth(entry)
    match = _CONTENT_RANGE.fullmatch(request.headers.get("Content-Range", ""))
    if match is None or int(match[2]) < int(match[1]):
        raise StorageError(
            400, "WRITE needs a header 'Content-Range: bytes <first>-<last>/*'", None
        )
    first, last = int(match[1]), int(match[2])
    fd = open_file(entry, os.O_WRONLY)
    try:
        size = regular_size(fd, entry)
        complete = False
        try:
            written = await receive(request, fd, first)
            complete = written == last - first + 1
        finally:
            if not complete and os.fstat(fd).st_size > size:
                # A failed append (client gone, disk full, short body) leaves the
                # file as it was; bytes rewritten inside the old size stay.
                os.ftruncate(fd, size)
    finally:
        os.close(fd)
    if not complete:
        raise StorageError(
            400,
            f"the body has {written} bytes but Content-Range names "
            f"{last - first + 1}: {entry.uri}",
            None,
        )
    return web.Response(status=200)


async def mkdirs(request: web.Request, entry: Entry) -> web.StreamResponse:
    if not is_dir(entry):
        check_depth(entry, 2)
        make_dirs(entry)
    return web.Response(status=201)


async def delete(request: web.Request, entry: Entry) -> web.StreamResponse:
    check_depth(entry)
    recursive = request.query.get("recursive", "").lower() == "true"
    removed = await asyncio.to_thread(remove, entry, recursive)
    if not _wants_ndjson(request):
        return web.Response(status=204)
    lines = [json.dumps({"path": path, "is_dir": is_dir}) for path, is_dir in removed]
    return await _ndjson(request, lines)


async def move(request: web.Request, entry: Entry) -> web.StreamResponse:
    destination = request.query.get("destination")
    if not destination:
        raise StorageError(
            400, "RENAME needs destination=/<org>/<project>/<path>", None
        )
    dst = locate(entry.root, destination)
    check_depth(entry)
    check_depth(dst)
    rename(entry, dst)
    return web.Response(status=204)


async def open_socket(request: web.Request, entry: Entry) -> web.StreamResponse:
    """op=WEBSOCKET (and its READ/WRITE forms): one socket for many file ops."""
    op = request.query.get("op", "").upper()
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise refuse_plain_get(op)

    def started(resp: web.StreamResponse) -> None:
        request[_STARTED] = resp

    local = request.app[_LOCAL]
    path = str(local.path) if local.running else None
    return await session(request, entry, op, started, path)


# ---------------------------------------------------------------- dispatch

OPS: dict[str, dict[str, OpHandler]] = {
    "GET": {
        "LISTSTATUS": list_status,
        "GETFILESTATUS": get_file_status,
        "OPEN": read_file,
        "GETDISKUSAGE": get_disk_usage,
        "WEBSOCKET": open_socket,
        READ_ONLY: open_socket,
        "WEBSOCKET_WRITE": open_socket,
    },
    "PUT": {"MKDIRS": mkdirs, "CREATE": create_file},
    "PATCH": {"WRITE": write_file},
    "POST": {"RENAME": move},
    "DELETE": {"DELETE": delete},
}


def _root(app: web.Application) -> str:
    """The resolved storage root; the project folder is made again if it was
    removed meanwhile (it must stat as a dir)."""
    project, root = app[_ROOT]
    if not os.path.isdir(project):
        storage_root(app[SETTINGS].paths.storage_dir, (ORG, PROJECT))
    return root


def _no_handler(method: str, op: str) -> StorageError:
    for other, handlers in OPS.items():
        if op in handlers:
            return StorageError(
                405, f"op={op} needs method {other}, not {method}", None
            )
    known = ", ".join(sorted(name for h in OPS.values() for name in h))
    return StorageError(400, f"unknown storage op={op!r}: use one of {known}", None)


async def storage(request: web.Request) -> web.StreamResponse:
    op = request.query.get("op", "").upper()
    handler = OPS.get(request.method, {}).get(op)
    api_path = "/"
    try:
        if handler is None:
            raise _no_handler(request.method, op)
        entry = locate(_root(request.app), request.match_info.get("path", ""))
        api_path = entry.api_path
        return await handler(request, entry)
    except StorageError as exc:
        error = exc
    except OSError as exc:
        error = os_error(exc, api_path)
    except ValueError as exc:  # e.g. a name the file system cannot encode
        error = StorageError(400, f"invalid storage path: {exc}", None)
    started: web.StreamResponse | None = request.get(_STARTED)
    if started is not None:
        # The headers are out: a second response would be read as the answer to
        # the connection's next request. Cut this one short instead.
        log.warning("storage %s %s failed mid-response: %s", op, api_path, error)
        if request.transport is not None:
            request.transport.close()
        return started
    return _error(error)


def add_storage_routes(app: web.Application, secret: bytes) -> None:
    paths = app[SETTINGS].paths
    project = os.path.join(paths.storage_dir, ORG, PROJECT)
    root = storage_root(paths.storage_dir, (ORG, PROJECT))
    app[_ROOT] = (project, root)
    local = app[_LOCAL] = LocalTransfer(paths.home, root, secret)

    async def start_local(app: web.Application) -> None:
        try:
            local.start()
        except OSError as exc:  # folder transfers use the WebSocket instead
            log.warning("no same-host storage transfers (%s): %s", local.path, exc)

    async def stop_local(app: web.Application) -> None:
        local.stop()

    app.on_startup.append(start_local)
    app.on_cleanup.append(stop_local)
    app.router.add_route("*", "/api/v1/storage", storage)
    # [\s\S]: any character, newlines included (a file name may hold one)
    app.router.add_route("*", r"/api/v1/storage/{path:[\s\S]*}", storage)
