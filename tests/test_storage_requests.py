"""What folder transfers cost in requests, and the platform's quick paths (a path
of real folders, a small file handled in one go) against its careful ones (a
symlink on the way, a file in the way, a folder gone), on the real platform."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from yarl import URL

from apolo_jupyter import Client, get
from apolo_jupyter.client._hops import Hops
from apolo_jupyter.local._storage_io import SMALL_BODY, SMALL_FILE

from .conftest import Platform

MiB = 1 << 20
OLD = time.time() - 3600  # an hour ago: surely older than what the server writes
LATER = time.time() + 3600  # surely newer


def _folder() -> str:
    return f"req-{uuid.uuid4().hex[:8]}"


def _host(platform: Platform, *parts: str) -> Path:
    return platform.paths.storage_dir.joinpath("local", "default", *parts)


class Requests:
    """Every request a client sends, as ``(method, op)``."""

    def __init__(self) -> None:
        self.sent: Counter[tuple[str, str]] = Counter()
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._start)

    async def _start(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        self.sent[(params.method, params.url.query.get("op", ""))] += 1

    def take(self) -> Counter[tuple[str, str]]:
        sent, self.sent = self.sent, Counter()
        return sent


@pytest.fixture
async def counted(platform: Platform) -> AsyncIterator[tuple[Client, Requests]]:
    requests = Requests()
    async with get(
        platform.url, platform.token, quiet=True, trace_configs=[requests.config]
    ) as client:
        yield client, requests


def _local_tree(root: Path) -> tuple[int, int]:
    """4 folders, 12 small files (2 empty) and one of 2.5 MiB: the number of
    files, and of files that are not empty."""
    files = {
        "a.txt": b"a" * 10,
        "b.bin": os.urandom(5000),
        "empty": b"",
        "sub1/c": b"c",
        "sub1/d": os.urandom(70_000),
        "sub1/e": b"e" * 3,
        "sub1/f": b"",
        "sub1/deep/g": os.urandom(SMALL_FILE),
        "sub1/deep/h": os.urandom(SMALL_FILE + 1),
        "sub2/i": b"i",
        "sub2/j": os.urandom(SMALL_BODY - 1),
        "sub2/k": b"k" * 100,
        "sub2/big": os.urandom(5 * MiB // 2),
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return len(files), sum(1 for data in files.values() if data)


def _same(a: Path, b: Path) -> bool:
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*"))
    if names != sorted(str(p.relative_to(b)) for p in b.rglob("*")):
        return False
    return all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names if (a / n).is_file()
    )


# HTTP requests of a folder transfer, by transport (APOLO_JUPYTER_STORAGE_TRANSPORT):
# HTTP alone costs a request per file; the socket carries the small files and
# the listings, leaving HTTP the large file; same-host transfers carry them all.
_UP = {
    "http": {
        ("GET", "GETFILESTATUS"): 1,  # the parent folder exists
        ("PUT", "MKDIRS"): 4,  # one per folder
        ("PUT", "CREATE"): 13,  # one per file
        ("PATCH", "WRITE"): 2,  # the 2.5 MiB file's second and third MiB
    },
    "websocket": {
        ("GET", "GETFILESTATUS"): 1,
        ("GET", "WEBSOCKET"): 1,
        ("PUT", "CREATE"): 1,  # the 2.5 MiB file
        ("PATCH", "WRITE"): 2,
    },
    "auto": {("GET", "GETFILESTATUS"): 1, ("GET", "WEBSOCKET"): 1},
}
_DOWN = {
    "http": {
        ("GET", "GETFILESTATUS"): 1,  # it is a folder
        ("GET", "LISTSTATUS"): 4,  # one per folder
        ("GET", "OPEN"): 11,  # one per file that is not empty, big or small
    },
    "websocket": {
        ("GET", "GETFILESTATUS"): 1,
        ("GET", "WEBSOCKET"): 1,
        ("GET", "OPEN"): 1,  # the 2.5 MiB file
    },
    "auto": {("GET", "GETFILESTATUS"): 1, ("GET", "WEBSOCKET"): 1},
}
_COMPARED = {
    "http": {("GET", "GETFILESTATUS"): 1, ("GET", "LISTSTATUS"): 4},
    "websocket": {("GET", "GETFILESTATUS"): 1, ("GET", "WEBSOCKET"): 1},
    "auto": {("GET", "GETFILESTATUS"): 1, ("GET", "WEBSOCKET"): 1},
}


@pytest.mark.parametrize("transport", ["http", "websocket", "auto"])
async def test_folder_transfers_cost_no_request_per_file_but_its_transfer(
    counted: tuple[Client, Requests],
    platform: Platform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
) -> None:
    """No file costs a request of its own besides its transfer: no stat, no
    listing, no mkdir per file (the SDK stats each folder, not each file); and
    over the socket, not even that."""
    monkeypatch.setenv("APOLO_JUPYTER_STORAGE_TRANSPORT", transport)
    client, requests = counted
    src = tmp_path / "src"
    files, not_empty = _local_tree(src)
    assert (files, not_empty) == (13, 11)
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}"))
    requests.take()

    await client.storage.upload_dir(src, URL(f"storage:{folder}/up"))
    assert requests.take() == Counter(_UP[transport])
    assert _same(src, _host(platform, folder, "up"))

    down = tmp_path / "down"
    await client.storage.download_dir(URL(f"storage:{folder}/up"), down)
    assert requests.take() == Counter(_DOWN[transport])
    assert _same(src, down)

    # update= compares with one listing per folder, and moves nothing that is
    # older than its copy.
    for path in src.rglob("*"):
        os.utime(path, (OLD, OLD))
    for path in down.rglob("*"):
        os.utime(path, (LATER, LATER))
    await client.storage.upload_dir(src, URL(f"storage:{folder}/up"), update=True)
    assert requests.take() == Counter(_COMPARED[transport])
    await client.storage.download_dir(
        URL(f"storage:{folder}/up"), down, update=True, continue_=True
    )
    assert requests.take() == Counter(_COMPARED[transport])


async def test_small_and_large_bodies_round_trip_with_ranges(
    client: Client, platform: Platform
) -> None:
    """Bodies at the edges of the one-go paths (a CREATE read whole and written
    on the loop or in a thread, an OPEN answered with one write) and byte
    ranges of a small file."""
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}"))
    for size in (0, 1, SMALL_FILE, SMALL_FILE + 1, SMALL_BODY, SMALL_BODY + 1):
        data = os.urandom(size)
        uri = URL(f"storage:{folder}/f{size}")
        await client.storage.create(uri, data)
        assert _host(platform, folder, f"f{size}").read_bytes() == data
        got = b""
        async with client.storage.open(uri) as chunks:
            async for chunk in chunks:
                got += chunk
        assert got == data
    data = _host(platform, folder, f"f{SMALL_FILE}").read_bytes()
    uri = URL(f"storage:{folder}/f{SMALL_FILE}")
    ranges: list[tuple[int, int | None]] = [(0, 1), (10, 100), (SMALL_FILE - 5, None)]
    for offset, count in ranges:
        got = b""
        async with client.storage.open(uri, offset, count) as chunks:
            async for chunk in chunks:
                got += chunk
        end = None if count is None else offset + count
        assert got == data[offset:end], (offset, count)


async def test_requests_without_a_body_one_after_another(
    client: Client, platform: Platform
) -> None:
    """aiohttp gives every request without a body the same empty reader, which
    answers differently once read: the bodies are read so that the tenth empty
    upload is as quick as the first (this once spun the platform's loop)."""
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}"))
    url = f"{platform.url}/storage/local/default/{folder}"
    auth = {"Authorization": f"Bearer {platform.token}"}
    async with aiohttp.ClientSession() as session:
        for i in range(10):
            async with asyncio.timeout(30):
                async with session.put(f"{url}/e{i}?op=CREATE", headers=auth) as r:
                    assert r.status == 201, await r.text()
                headers = {**auth, "Content-Range": "bytes 0-0/*"}
                async with session.patch(f"{url}/e{i}?op=WRITE", headers=headers) as r:
                    assert r.status == 400, await r.text()
    assert [_host(platform, folder, f"e{i}").read_bytes() for i in range(10)] == [
        b""
    ] * 10
    # and the client reads empty answers one after another, whole or streamed
    empty = URL(f"storage:{folder}/e0")
    for _ in range(3):
        async with asyncio.timeout(30):
            assert await client.storage._read_whole(empty) == []
            async with client.storage.open(empty) as chunks:
                assert [chunk async for chunk in chunks] == []


async def test_files_through_a_folder_symlink_inside_the_storage(
    client: Client, platform: Platform
) -> None:
    """A symlink on the way (to a folder inside the storage) takes the careful
    path: followed for create, read, stat, move and delete; never out."""
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}/real/deeper"), parents=True)
    (_host(platform, folder) / "alias").symlink_to("real")
    storage = client.storage

    def uri(path: str) -> URL:
        return URL(f"storage:{folder}/{path}")

    await storage.create(uri("alias/new"), b"via the alias")
    assert _host(platform, folder, "real", "new").read_bytes() == b"via the alias"
    await storage.create(uri("alias/deeper/small"), b"x" * 1000)
    got = b""
    async with storage.open(uri("alias/deeper/small"), 10, 5) as chunks:
        async for chunk in chunks:
            got += chunk
    assert got == b"x" * 5
    status = await storage.stat(uri("alias/new"))
    assert status.is_file() and status.size == len(b"via the alias")
    await storage.mv(uri("alias/new"), uri("alias/deeper/moved"))
    assert _host(platform, folder, "real", "deeper", "moved").exists()
    await storage.rm(uri("alias/deeper/moved"))
    assert not _host(platform, folder, "real", "deeper", "moved").exists()
    async with storage.ls(uri("alias/deeper")) as entries:
        assert [e.name async for e in entries] == ["small"]
    assert (_host(platform, folder) / "alias").is_symlink()  # the link itself stays


async def test_a_file_in_the_way_of_a_folder(
    client: Client, platform: Platform
) -> None:
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}"))
    await client.storage.create(URL(f"storage:{folder}/file"), b"data")
    with pytest.raises(NotADirectoryError):
        await client.storage.create(URL(f"storage:{folder}/file/x"), b"data")
    with pytest.raises(NotADirectoryError):
        await client.storage.stat(URL(f"storage:{folder}/file/x"))
    assert _host(platform, folder, "file").read_bytes() == b"data"


async def test_the_project_folder_is_made_again(own_platform: Platform) -> None:
    """The root is found once, but a project folder removed meanwhile (by hand)
    is made again, as before: the platform's own folder must stat as one."""
    async with get(own_platform.url, own_platform.token, quiet=True) as client:
        await client.storage.create(URL("storage:first"), b"1")
        shutil.rmtree(own_platform.paths.storage_dir / "local" / "default")
        root = await client.storage.stat(URL("storage:"))
        assert root.is_dir()
        await client.storage.create(URL("storage:again"), b"2")
    assert (own_platform.paths.storage_dir / "local/default/again").read_bytes() == b"2"


async def test_a_checked_token_does_not_let_a_changed_one_in(
    client: Client, platform: Platform
) -> None:
    """The platform remembers tokens it has verified; only those exact ones."""
    await client.storage.stat(URL("storage:"))  # the good token, remembered
    header, payload, signature = platform.token.split(".")
    changed = [
        f"{header}.{payload}.{signature[:-2]}AA",
        f"{header}.{payload}x.{signature}",
        f"{platform.token}x",
        platform.token[:-1],
    ]
    async with aiohttp.ClientSession() as session:
        for token in changed:
            async with session.get(
                f"{platform.url}/storage/local/default?op=GETFILESTATUS",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == 401, token


# ------------------------------------------------------------------ Hops


async def test_hops_batch_the_calls_made_during_a_hop() -> None:
    hops = Hops()
    started, release = threading.Event(), threading.Event()
    threads: list[int] = []

    def first() -> str:
        started.set()
        release.wait(30)
        return "first"

    def later(i: int) -> int:
        threads.append(threading.get_ident())
        return i * i

    head = asyncio.ensure_future(hops.run(first))
    await asyncio.to_thread(started.wait, 30)
    rest = [asyncio.ensure_future(hops.run(later, i)) for i in range(10)]
    release.set()
    assert await head == "first"
    assert await asyncio.gather(*rest) == [i * i for i in range(10)]
    assert hops.hops == 2  # all ten in the second hop
    assert len(set(threads)) == 1


async def test_hops_give_each_caller_its_own_outcome() -> None:
    hops = Hops()

    def maybe(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(f"no {i}")
        return i

    outcomes = await asyncio.gather(
        *(hops.run(maybe, i) for i in range(9)), return_exceptions=True
    )
    for i, outcome in enumerate(outcomes):
        if i % 3 == 0:
            assert isinstance(outcome, ValueError) and str(outcome) == f"no {i}"
        else:
            assert outcome == i
    # a caller that gave up does not stop the others
    started, release = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(30)

    blocked = asyncio.ensure_future(hops.run(slow))
    await asyncio.to_thread(started.wait, 30)
    cancelled = asyncio.ensure_future(hops.run(maybe, 1))
    kept = asyncio.ensure_future(hops.run(maybe, 2))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await blocked
    assert await kept == 2
    with pytest.raises(asyncio.CancelledError):
        await cancelled
