"""The storage API's WebSocket (``?op=WEBSOCKET``) on the local platform, as
platform-storage-api speaks it, and our CBOR against the real server's codec
(cbor2); then the client's folder transfers over each transport."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import cbor2
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from apolo_jupyter import Client, get
from apolo_jupyter.client import _cbor
from apolo_jupyter.client import _storage_frames as frames
from apolo_jupyter.client._hops import Hops
from apolo_jupyter.client._storage_progress import (
    Reporter,
    StorageProgressComplete,
    StorageProgressStart,
    StorageProgressStep,
)
from apolo_jupyter.client._storage_socket import open_socket
from apolo_jupyter.client._storage_socket_files import fetch_new, send_new

from .conftest import OpsSent, Platform, Recorder, storage_host

MiB = 1 << 20


def _folder() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


def request(op: str, rid: int, path: str | None = None, **fields: object) -> bytes:
    """A request framed as the real server's own tests frame them (cbor2)."""
    header: dict[str, Any] = {"op": op, "id": rid, **fields}
    if path is not None:
        header["path"] = path
    raw = cbor2.dumps(header)
    return struct.pack("!I", len(raw) + 4) + raw


def _framed(raw: bytes) -> bytes:
    return struct.pack("!I", len(raw) + 4) + raw


def answer(message: bytes) -> tuple[dict[str, Any], bytes]:
    (end,) = struct.unpack("!I", message[:4])
    return cbor2.loads(message[4:end]), message[end:]


class Socket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(
        self, op: str, path: str | None = None, data: bytes = b"", **fields: object
    ) -> tuple[dict[str, Any], bytes]:
        self.next_id += 1
        await self.ws.send_bytes(request(op, self.next_id, path, **fields) + data)
        header, payload = answer(await self.ws.receive_bytes(timeout=30))
        assert header["rid"] == self.next_id and header["rop"] == op
        assert abs(header["timestamp"] - time.time()) < 5
        return header, payload

    async def raw(self, message: bytes | str) -> dict[str, Any]:
        if isinstance(message, str):
            await self.ws.send_str(message)
        else:
            await self.ws.send_bytes(message)
        header, _ = answer(await self.ws.receive_bytes(timeout=30))
        return header


def _ws_url(platform: Platform, folder: str, op: str = "WEBSOCKET") -> str:
    return f"{platform.url}/storage/local/default/{folder}?op={op}"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _open(
    session: aiohttp.ClientSession,
    platform: Platform,
    folder: str,
    op: str = "WEBSOCKET",
) -> Socket:
    ws = await session.ws_connect(
        _ws_url(platform, folder, op),
        headers={"Authorization": f"Bearer {platform.token}"},
        max_msg_size=frames.MAX_MESSAGE,
    )
    return Socket(ws)


async def test_create_write_stat_read_as_the_real_server(
    session: aiohttp.ClientSession, platform: Platform
) -> None:
    folder = _folder()
    sock = await _open(session, platform, folder)
    rel = "path/to/file"
    header, _ = await sock.call(frames.STAT, rel)
    assert header["op"] == frames.ERROR and header["errno"] == "ENOENT"
    assert "No such" in header["error"] and folder in header["error"]

    # CREATE sizes the file (folders made); WRITE puts bytes at an offset
    header, _ = await sock.call(frames.CREATE, rel, size=54321)
    assert header["op"] == frames.ACK
    header, _ = await sock.call(frames.WRITE, rel, b"abcde", offset=12345)
    assert header["op"] == frames.ACK
    header, _ = await sock.call(frames.STAT, rel)
    status = header["FileStatus"]
    assert (status["type"], status["length"]) == ("FILE", 54321)
    assert status["path"].endswith(f"/{folder}/{rel}")
    header, data = await sock.call(frames.READ, rel, offset=12345, size=5)
    assert header["op"] == frames.ACK and data == b"abcde"
    # a READ past the end gets what there is
    header, data = await sock.call(frames.READ, rel, offset=54320, size=100)
    assert len(data) == 1
    host = storage_host(platform, folder, "path", "to", "file").read_bytes()
    assert len(host) == 54321 and host[12345:12350] == b"abcde"

    # WRITE before any CREATE makes the file (and its folders) too
    header, _ = await sock.call(frames.WRITE, "other/new", b"xyz", offset=3)
    assert header["op"] == frames.ACK
    assert storage_host(platform, folder, "other", "new").read_bytes() == b"\0\0\0xyz"
    # CREATE cuts a file to its size
    await sock.call(frames.CREATE, "other/new", size=2)
    assert storage_host(platform, folder, "other", "new").read_bytes() == b"\0\0"
    await sock.ws.close()


async def test_mkdirs_and_list(
    session: aiohttp.ClientSession, platform: Platform
) -> None:
    folder = _folder()
    sock = await _open(session, platform, folder)
    header, _ = await sock.call(frames.MKDIRS, "nested/dir")
    assert header["op"] == frames.ACK
    header, _ = await sock.call(frames.MKDIRS, "nested/dir")  # there already: fine
    assert header["op"] == frames.ACK
    await sock.call(frames.CREATE, "nested/file", size=7)
    header, _ = await sock.call(frames.LIST)  # the socket's own folder
    names = [(s["path"], s["type"]) for s in header["FileStatuses"]["FileStatus"]]
    assert names == [("nested", "DIRECTORY")]
    header, _ = await sock.call(frames.LIST, "nested")
    listed = {
        s["path"]: (s["type"], s["length"])
        for s in header["FileStatuses"]["FileStatus"]
    }
    assert listed == {"dir": ("DIRECTORY", listed["dir"][1]), "file": ("FILE", 7)}
    header, _ = await sock.call(frames.STAT)
    assert header["FileStatus"]["type"] == "DIRECTORY"
    # MKDIRS over a file
    header, _ = await sock.call(frames.MKDIRS, "nested/file")
    assert header["op"] == frames.ERROR and header["errno"] == "EEXIST"
    await sock.ws.close()


async def test_read_only_socket_and_refusals(
    session: aiohttp.ClientSession, platform: Platform
) -> None:
    folder = _folder()
    (storage_host(platform, folder)).mkdir(parents=True)
    (storage_host(platform, folder, "f")).write_bytes(b"data")
    sock = await _open(session, platform, folder, "WEBSOCKET_READ")
    header, data = await sock.call(frames.READ, "f", offset=0, size=10)
    assert data == b"data"
    for op, fields in (
        (frames.WRITE, {"offset": 0}),
        (frames.CREATE, {"size": 1}),
        (frames.MKDIRS, {}),
    ):
        header, _ = await sock.call(op, "f", b"", **fields)
        assert header["op"] == frames.ERROR
        assert "Requires writing permission" in header["error"]
    assert storage_host(platform, folder, "f").read_bytes() == b"data"
    await sock.ws.close()

    sock = await _open(session, platform, folder)
    cases: list[tuple[str, str | None, dict[str, Any], str]] = [
        (
            frames.READ,
            "f",
            {"offset": 0, "size": frames.MAX_READ + 1},
            "Too large read size",
        ),
        (frames.READ, "f", {"offset": -1, "size": 1}, "whole number"),
        (frames.CREATE, "f", {"size": "big"}, "whole number"),
        (frames.WRITE, "f", {}, "whole number"),
        (frames.STAT, "/etc/passwd", {}, "relative"),
        (frames.STAT, "../other", {}, "'..'"),
        (frames.STAT, "a/./b", {}, "'.'"),
        ("RENAME", "f", {}, "Unknown operation"),
        (frames.DISCOVER_OP + "X", "f", {}, "Unknown operation"),
    ]
    for op, path, fields, why in cases:
        header, _ = await sock.call(op, path, b"", **fields)
        assert header["op"] == frames.ERROR, (op, path, fields)
        assert why in header["error"], (op, path, header)
    # a path of a wrong type
    raw = cbor2.dumps({"op": frames.STAT, "id": 99, "path": 5})
    header = await sock.raw(struct.pack("!I", len(raw) + 4) + raw)
    assert header["op"] == frames.ERROR and header["rid"] == 99
    # nothing outside the project may be written
    outside = await _open(session, platform, "")
    header, _ = await outside.call(frames.CREATE, "../x", size=1)
    assert header["op"] == frames.ERROR
    root_sock = Socket(
        await session.ws_connect(
            f"{platform.url}/storage/local?op=WEBSOCKET",
            headers={"Authorization": f"Bearer {platform.token}"},
        )
    )
    header, _ = await root_sock.call(frames.CREATE, "default", size=1)
    assert header["op"] == frames.ERROR and "project folder" in header["error"]
    await root_sock.ws.close()
    top = Socket(
        await session.ws_connect(
            f"{platform.url}/storage?op=WEBSOCKET",
            headers={"Authorization": f"Bearer {platform.token}"},
        )
    )
    header, _ = await top.call(frames.MKDIRS, "other-org")
    assert header["op"] == frames.ERROR and "project folder" in header["error"]
    header, _ = await top.call(frames.WRITE, "local/f", b"x", offset=0)
    assert header["op"] == frames.ERROR
    assert not (platform.paths.storage_dir / "other-org").exists()
    assert not (platform.paths.storage_dir / "local" / "f").exists()
    await top.ws.close()
    await outside.ws.close()
    await sock.ws.close()


async def test_bad_frames_get_an_error_and_the_socket_goes_on(
    session: aiohttp.ClientSession, platform: Platform
) -> None:
    folder = _folder()
    sock = await _open(session, platform, folder)
    bad: list[tuple[bytes | str, str]] = [
        (b"ab", "shorter"),
        (struct.pack("!I", 1000) + b"\xa0", "header length"),
        (struct.pack("!I", 2), "header length"),
        (struct.pack("!I", 5) + b"\xff", "not valid"),  # a stray break
        (struct.pack("!I", 6) + b"\xc1\x00", "tag"),  # a datetime tag
        (struct.pack("!I", 5) + b"\x80", "not a CBOR map"),  # a list
        (request("STAT", 1)[:-1], "header length"),  # cut short
        (_framed(b"\xa1\x62op"), "not valid"),  # a map cut short
        (_framed(cbor2.dumps({"id": 1})), "'op'"),
        (_framed(cbor2.dumps({"op": "STAT"})), "'id'"),
        (_framed(cbor2.dumps({"op": "STAT", "id": [1]})), "'id'"),
        ("a text message", "binary"),
    ]
    deep = b"\x81" * 100_000 + b"\x00"  # a list of a list of ... (deep)
    bad.append((struct.pack("!I", len(deep) + 4) + deep, "nested"))
    huge = b"\x9b" + (1 << 62).to_bytes(8, "big")  # a list of 2**62 items
    bad.append((struct.pack("!I", len(huge) + 4) + huge, "count"))
    for message, why in bad:
        header = await sock.raw(message)
        assert header["op"] == frames.ERROR and why in header["error"], (
            message[:20],
            header,
        )
        assert "rid" not in header
    header, _ = await sock.call(frames.MKDIRS, "still/fine")
    assert header["op"] == frames.ACK
    await sock.ws.close()


async def test_symlinks_out_of_the_storage_are_not_followed(
    session: aiohttp.ClientSession, platform: Platform, tmp_path: Path
) -> None:
    folder = _folder()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    storage_host(platform, folder).mkdir(parents=True)
    (storage_host(platform, folder, "door")).symlink_to(outside)
    (storage_host(platform, folder, "key")).symlink_to(outside / "secret")
    sock = await _open(session, platform, folder)
    for op, path, fields in (
        (frames.READ, "key", {"offset": 0, "size": 10}),
        (frames.READ, "door/secret", {"offset": 0, "size": 10}),
        (frames.WRITE, "key", {"offset": 0}),
        (frames.WRITE, "door/new", {"offset": 0}),
        (frames.CREATE, "door/secret", {"size": 0}),
        (frames.MKDIRS, "door/sub", {}),
        (frames.LIST, "door", {}),
    ):
        header, data = await sock.call(
            op, path, b"evil" if op == frames.WRITE else b"", **fields
        )
        assert header["op"] == frames.ERROR, (op, path)
        assert data == b""
    assert (outside / "secret").read_bytes() == b"secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    await sock.ws.close()


async def test_the_socket_needs_a_token_and_an_upgrade(
    session: aiohttp.ClientSession, platform: Platform
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(_ws_url(platform, _folder()))
    assert refused.value.status == 401
    headers = {"Authorization": f"Bearer {platform.token}"}
    async with session.get(_ws_url(platform, _folder()), headers=headers) as resp:
        assert resp.status == 400
        assert "Upgrade" in (await resp.json())["error"]


# ---------------------------------------------------------------- CBOR

_ints = st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
_values = st.recursive(
    st.none()
    | st.booleans()
    | _ints
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=10) | _ints, inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_our_cbor_and_cbor2_read_each_other(value: Any) -> None:
    assert cbor2.loads(_cbor.dumps(value)) == value
    assert _cbor.loads(cbor2.dumps(value)) == value


def test_cbor_refuses_what_headers_never_hold() -> None:
    for raw in (
        cbor2.dumps(cbor2.CBORTag(1, 0)),  # a tag
        b"\x9f\x01\xff",  # an indefinite list
        b"\xf7",  # undefined
        b"\x1c",  # reserved
        b"\x01\x02",  # bytes after the item
        b"\x62\xff\xfe",  # text that is not UTF-8
        b"\xa1\x80\x01",  # a list as a map key
    ):
        with pytest.raises(_cbor.CBORError):
            _cbor.loads(raw)
    with pytest.raises(_cbor.CBORError):
        _cbor.dumps(1 << 64)
    with pytest.raises(_cbor.CBORError):
        _cbor.dumps(object())
    assert _cbor.loads(b"\xf9\x3e\x00") == 1.5  # a half float


# ---------------------------------------------------------------- the client


def _tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"a" * 10,
        "empty": b"",
        "sub/b.bin": os.urandom(300_000),
        "sub/deeper/c": os.urandom(2 * MiB + 5),
        "sub/deeper/d": b"d",
        "other/e": os.urandom(MiB),
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "hollow").mkdir()
    return files


@pytest.mark.parametrize("transport", ["auto", "websocket", "http"])
async def test_folders_both_ways_over_each_transport(
    client: Client,
    platform: Platform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
) -> None:
    monkeypatch.setenv("APOLO_JUPYTER_STORAGE_TRANSPORT", transport)
    src = tmp_path / "src"
    files = _tree(src)
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}"))
    progress = Recorder()
    await client.storage.upload_dir(src, URL(f"storage:{folder}/up"), progress=progress)
    stored = storage_host(platform, folder, "up")
    assert {n: (stored / n).read_bytes() for n in files} == files
    assert (stored / "hollow").is_dir()
    _check_progress(progress.events, files)

    # replaced files are replaced whole; a second upload keeps the others
    (src / "a.txt").write_bytes(b"new")
    files["a.txt"] = b"new"
    await client.storage.upload_dir(src, URL(f"storage:{folder}/up"))
    assert (stored / "a.txt").read_bytes() == b"new"

    down = tmp_path / "down"
    progress = Recorder()
    await client.storage.download_dir(
        URL(f"storage:{folder}/up"), down, progress=progress
    )
    assert {n: (down / n).read_bytes() for n in files} == files
    assert (down / "hollow").is_dir()
    _check_progress(progress.events, files)


def _check_progress(events: list[Any], files: dict[str, bytes]) -> None:
    for name, data in files.items():
        mine = [e for e in events if getattr(e, "dst", URL()).path.endswith("/" + name)]
        kinds = [type(e) for e in mine]
        assert kinds[0] is StorageProgressStart and kinds[-1] is StorageProgressComplete
        steps = [e.current for e in mine if isinstance(e, StorageProgressStep)]
        assert steps == sorted(steps) and (steps[-1] if steps else 0) == len(data)


async def test_a_socket_that_fails_midway_fails_the_transfer(
    own_platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform goes away during an upload over the socket: the transfer
    raises (it does not hang), and another one after a restart works."""
    monkeypatch.setenv("APOLO_JUPYTER_STORAGE_TRANSPORT", "websocket")
    src = tmp_path / "src"
    for i in range(400):
        (src / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 7}" / f"f{i}").write_bytes(os.urandom(20_000))
    async with get(own_platform.url, own_platform.token, quiet=True) as client:
        stopped = False

        class StopHalfWay:
            count = 0

            def complete(self, data: Any) -> None:
                nonlocal stopped
                self.count += 1
                if self.count == 50 and not stopped:
                    stopped = True
                    own_platform.stop()

        with pytest.raises(Exception) as failed:
            await client.storage.upload_dir(
                src, URL("storage:midway"), progress=cast(Any, StopHalfWay())
            )
        assert stopped
        assert not isinstance(failed.value, AssertionError)
    own_platform.restart()
    async with get(own_platform.url, own_platform.token, quiet=True) as client:
        await client.storage.upload_dir(src, URL("storage:midway"))
    stored = storage_host(own_platform, "midway")
    assert sum(1 for p in stored.rglob("*") if p.is_file()) == 400


@pytest.mark.parametrize("transport", ["auto", "http"])
async def test_one_large_file_each_way(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """A file of a few MiB goes as a same-host copy (the platform's Unix socket
    found once per client), with its progress; over HTTP when told so."""
    monkeypatch.setenv("APOLO_JUPYTER_STORAGE_TRANSPORT", transport)
    data = os.urandom(5 * MiB + 3)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    folder = _folder()
    counted = OpsSent()
    async with get(
        platform.url, platform.token, quiet=True, trace_configs=[counted.config]
    ) as client:
        await client.storage.mkdir(URL(f"storage:{folder}"))
        for name in ("one", "two"):
            progress = Recorder()
            dst = URL(f"storage:{folder}/{name}")
            await client.storage.upload_file(src, dst, progress=progress)
            _check_progress(progress.events, {name: data})
            back = tmp_path / f"{name}.back"
            progress = Recorder()
            await client.storage.download_file(dst, back, progress=progress)
            _check_progress(progress.events, {back.name: data})
            assert back.read_bytes() == data
            assert storage_host(platform, folder, name).read_bytes() == data
    moved = {op: counted.sent[op] for op in ("CREATE", "WRITE", "OPEN", "WEBSOCKET")}
    if transport == "auto":  # one socket to find the Unix one, then none
        assert moved == {"CREATE": 0, "WRITE": 0, "OPEN": 0, "WEBSOCKET": 1}
    else:
        assert moved == {"CREATE": 2, "WRITE": 10, "OPEN": 2, "WEBSOCKET": 0}


async def test_a_fifo_in_the_way_is_not_waited_for(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    """download_file into a named pipe streams into it (over HTTP); a folder
    download that meets one fails for that file instead of hanging."""
    data = os.urandom(5 * MiB)
    folder = _folder()
    storage_host(platform, folder, "tree").mkdir(parents=True)
    storage_host(platform, folder, "tree", "f").write_bytes(data)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    got: list[bytes] = []

    def read() -> None:
        with open(pipe, "rb") as stream:
            got.append(stream.read())

    reader = asyncio.get_running_loop().run_in_executor(None, read)
    await client.storage.download_file(URL(f"storage:{folder}/tree/f"), pipe)
    await asyncio.wait_for(reader, 30)
    assert got == [data]

    down = tmp_path / "down"
    down.mkdir()
    os.mkfifo(down / "f")
    with pytest.raises(OSError):
        await asyncio.wait_for(
            client.storage.download_dir(URL(f"storage:{folder}/tree"), down), 30
        )


async def test_files_that_changed_size_since_they_were_listed(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    """A folder transfer decides a file's way from its listed size; the socket
    still moves it whole when it has grown past one message meanwhile."""
    storage = client.storage
    folder = _folder()
    await storage.mkdir(URL(f"storage:{folder}"))
    root = storage._normalize(URL(f"storage:{folder}"))
    hops = Hops()
    report = Reporter(None)
    big = os.urandom(9 * MiB + 7)  # more than two pieces
    grown = tmp_path / "grown"
    grown.write_bytes(big)
    async with open_socket(storage, root) as sock:
        assert sock is not None
        await send_new(sock, "up/grown", grown, root / "up" / "grown", report, hops)
        stored = storage_host(platform, folder, "up", "grown")
        assert stored.read_bytes() == big
        # listed at 10 bytes, 9 MiB by the time it is read
        back = tmp_path / "back"
        src = root / "up" / "grown"
        await fetch_new(sock, "up/grown", src, back, 10, report, hops)
        assert back.read_bytes() == big
        # listed at 9 MiB, cut to 3 bytes since
        stored.write_bytes(b"cut")
        await fetch_new(sock, "up/grown", src, back, len(big), report, hops)
        assert back.read_bytes() == b"cut"


@contextlib.asynccontextmanager
async def _platform_without_socket(platform: Platform) -> AsyncIterator[str]:
    """The platform behind a relay that answers the socket's ops as a platform
    that lacks them would (400), and passes every other request on."""
    target = URL(platform.url).origin()
    async with aiohttp.ClientSession(auto_decompress=False) as session:

        async def relay(request: web.Request) -> web.StreamResponse:
            if request.query.get("op", "").upper().startswith("WEBSOCKET"):
                return web.json_response({"error": "Illegal operation"}, status=400)
            # Host as the client sent it: the platform's config names its
            # services from it, so the client's requests keep coming here.
            headers = dict(request.headers)
            async with session.request(
                request.method,
                target.join(URL(request.path_qs, encoded=True)),
                headers=headers,
                data=await request.read(),
            ) as upstream:
                body = await upstream.read()
                passed = ("Content-Type", "Content-Range", "Date")
                return web.Response(
                    status=upstream.status,
                    body=body,
                    headers={
                        k: upstream.headers[k] for k in passed if k in upstream.headers
                    },
                )

        app = web.Application(client_max_size=64 * MiB)
        app.router.add_route("*", "/{tail:.*}", relay)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield f"http://127.0.0.1:{port}/api/v1"
        finally:
            await runner.cleanup()


async def test_a_platform_without_the_socket_gets_http(
    platform: Platform, tmp_path: Path
) -> None:
    """A server that refuses the socket (an older platform, a proxy) is asked
    once; every transfer after it goes over HTTP, folders and large files."""
    src = tmp_path / "src"
    files = _tree(src)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * MiB))
    folder = _folder()
    sent = OpsSent()
    async with (
        _platform_without_socket(platform) as url,
        get(url, platform.token, quiet=True, trace_configs=[sent.config]) as client,
    ):
        await client.storage.mkdir(URL(f"storage:{folder}"))
        await client.storage.upload_dir(src, URL(f"storage:{folder}/up"))
        assert sent.sent["WEBSOCKET"] == 1 and sent.sent["CREATE"] == len(files)
        await client.storage.download_dir(
            URL(f"storage:{folder}/up"), tmp_path / "down"
        )
        await client.storage.upload_file(big, URL(f"storage:{folder}/big"))
        await client.storage.download_file(URL(f"storage:{folder}/big"), tmp_path / "b")
        # asked once: the refusal is remembered for this storage
        assert sent.sent["WEBSOCKET"] == 1
    assert {n: (tmp_path / "down" / n).read_bytes() for n in files} == files
    assert (tmp_path / "b").read_bytes() == big.read_bytes()
    assert storage_host(platform, folder, "big").read_bytes() == big.read_bytes()
