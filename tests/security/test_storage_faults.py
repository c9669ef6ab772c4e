"""Storage faults lose nothing (issue 12, items 8 and 13): an upload that breaks
off leaves the old file as it was and no partial file, and empty files are
ordinary files on every route, also on a reused connection."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
from yarl import URL

from ..conftest import Platform
from ._helpers import auth

MiB = 1 << 20


def _folder(platform: Platform) -> tuple[str, Path]:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    host = platform.paths.storage_dir / "local" / "default" / name
    host.mkdir(parents=True)
    return name, host


def _until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


async def _broken_upload(
    platform: Platform,
    path: str,
    method: str,
    op: str,
    started: Callable[[], bool],
    extra: str = "",
) -> None:
    """Announce 4 MiB, send 1 MiB, wait until the platform works on it, hang up."""
    url = URL(platform.url)
    _, writer = await asyncio.open_connection(url.host, url.port)
    target = f"{url.path}/storage/local/default/{path}?op={op}"
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Authorization: {auth(platform.token)['Authorization']}\r\n"
        f"Content-Length: {4 * MiB}\r\n{extra}\r\n"
    )
    writer.write(head.encode() + b"n" * MiB)
    await writer.drain()
    await asyncio.to_thread(_until, started)
    writer.close()
    await writer.wait_closed()


async def test_a_broken_create_leaves_the_old_file(platform: Platform) -> None:
    name, host = _folder(platform)
    (host / "keep.txt").write_text("old content\n")
    (host / "keep.txt").chmod(0o640)

    def working() -> bool:  # a temporary file, or (before the fix) the target cut
        return any(p.name != "keep.txt" for p in host.iterdir()) or (
            (host / "keep.txt").stat().st_size != len("old content\n")
        )

    await _broken_upload(platform, f"{name}/keep.txt", "PUT", "CREATE", working)
    _until(lambda: [p.name for p in host.iterdir()] == ["keep.txt"])
    assert (host / "keep.txt").read_text() == "old content\n"
    # A new file that breaks off does not appear at all.
    await _broken_upload(
        platform,
        f"{name}/new.bin",
        "PUT",
        "CREATE",
        lambda: any(p.name != "keep.txt" for p in host.iterdir()),
    )
    _until(lambda: [p.name for p in host.iterdir()] == ["keep.txt"])
    # A complete upload replaces the file, keeping its permissions.
    async with aiohttp.ClientSession() as session:
        create = f"{platform.url}/storage/local/default/{name}/keep.txt?op=CREATE"
        async with session.put(
            create, data=b"new", headers=auth(platform.token)
        ) as resp:
            assert resp.status == 201
    assert (host / "keep.txt").read_bytes() == b"new"
    assert (host / "keep.txt").stat().st_mode & 0o777 == 0o640


async def test_a_broken_append_leaves_the_file_as_it_was(platform: Platform) -> None:
    name, host = _folder(platform)
    (host / "big.bin").write_bytes(b"o" * 100)
    await _broken_upload(
        platform,
        f"{name}/big.bin",
        "PATCH",
        "WRITE",
        lambda: (host / "big.bin").stat().st_size > 100,
        extra=f"Content-Range: bytes 100-{100 + 4 * MiB - 1}/*\r\n",
    )
    _until(lambda: (host / "big.bin").stat().st_size == 100)
    assert (host / "big.bin").read_bytes() == b"o" * 100


async def test_empty_files_on_one_connection(platform: Platform) -> None:
    name, host = _folder(platform)
    base = f"{platform.url}/storage/local/default/{name}"
    headers = auth(platform.token)
    connector = aiohttp.TCPConnector(limit=1)  # every request on one connection
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.put(
            f"{base}/empty?op=CREATE", data=b"", headers=headers
        ) as r:
            assert r.status == 201
        assert (host / "empty").read_bytes() == b""
        for _ in range(3):
            async with session.get(f"{base}/empty?op=OPEN", headers=headers) as r:
                assert (r.status, await r.read()) == (200, b"")
            async with session.get(
                f"{base}/empty?op=GETFILESTATUS", headers=headers
            ) as r:
                assert r.status == 200, await r.text()
                status = (await r.json())["FileStatus"]
                assert (status["length"], status["type"]) == (0, "FILE")
        ranged = {**headers, "Range": "bytes=0-"}
        async with session.get(f"{base}/empty?op=OPEN", headers=ranged) as r:
            assert r.status == 416, await r.text()
        empty_write = {**headers, "Content-Range": "bytes 0-0/*"}
        async with session.patch(
            f"{base}/empty?op=WRITE", data=b"", headers=empty_write
        ) as r:
            assert r.status == 400
        async with session.get(f"{base}?op=LISTSTATUS", headers=headers) as r:
            listed = (await r.json())["FileStatuses"]["FileStatus"]
            assert [(f["path"], f["length"]) for f in listed] == [("empty", 0)]
    assert (host / "empty").read_bytes() == b""
