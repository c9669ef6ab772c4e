"""The ceiling of a storage folder transfer over HTTP on this machine.

The same requests a folder transfer sends (one per small file; for a file of a
MiB or more a first request of a MiB, then one per further MiB, a few in flight),
with the client's own limits on files in flight, against a trivial aiohttp
server in a process of its own: uploads are read and dropped, downloads are sent
from memory (``sendfile`` of a memfd above ``SMALL``, as the platform does from
the page cache). No disk, no paths, no checks, no auth: what is left is HTTP on
loopback and the bytes. ``bench_sync.py`` times it beside ``cp -r``.

Run alone: .venv/bin/python bench/_http_floor.py serve LARGEST_BYTES (prints its
port)
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

import aiohttp
from aiohttp import web

from apolo_jupyter.client._storage_dirs import MAX_BIG, MAX_FILES
from apolo_jupyter.client._storage_transfer import CHUNK, UPLOAD_WINDOW

SMALL = 1 << 18  # as the platform: up to this, the bytes go with the headers


async def _serve(largest: int) -> None:
    memfd = os.memfd_create("floor")
    blob = os.urandom(min(largest, SMALL))
    os.ftruncate(memfd, largest)
    os.pwrite(memfd, blob, 0)
    source = os.fdopen(memfd, "rb")

    async def put(request: web.Request) -> web.Response:
        while await request.content.readany():
            pass
        return web.Response(status=201 if request.method == "PUT" else 200)

    async def get(request: web.Request) -> web.StreamResponse:
        size = int(request.query["n"])
        if size <= SMALL:
            return web.Response(body=blob[:size])
        resp = web.StreamResponse()
        resp.content_length = size
        await resp.prepare(request)
        assert request.transport is not None
        await asyncio.get_running_loop().sendfile(request.transport, source, 0, size)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_route("PUT", "/{name}", put)
    app.router.add_route("PATCH", "/{name}", put)
    app.router.add_get("/{name}", get)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


class Floor:
    """Transfers of given file sizes against the trivial server at ``port``."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession()
        self.data = memoryview(os.urandom(CHUNK))

    async def close(self) -> None:
        await self.session.close()

    async def _put(self, method: str, url: str, size: int) -> None:
        async with self.session.request(method, url, data=self.data[:size]) as r:
            r.raise_for_status()

    async def _upload(self, name: str, size: int) -> None:
        url = f"{self.base}/{name}"
        await self._put("PUT", url, min(size, CHUNK))
        window = asyncio.Semaphore(UPLOAD_WINDOW)

        async def write(at: int) -> None:
            async with window:
                await self._put("PATCH", url, min(size - at, CHUNK))

        await asyncio.gather(*(write(at) for at in range(CHUNK, size, CHUNK)))

    async def _download(self, name: str, size: int) -> None:
        async with self.session.get(f"{self.base}/{name}?n={size}") as r:
            r.raise_for_status()
            async for _ in r.content.iter_any():
                pass

    async def transfer(self, sizes: Sequence[int], up: bool) -> None:
        """Every file, at most MAX_FILES at once, of which MAX_BIG big ones."""
        files = asyncio.Semaphore(MAX_FILES)
        big = asyncio.Semaphore(MAX_BIG)
        move = self._upload if up else self._download

        async def one(index: int, size: int) -> None:
            async with files:
                if size < CHUNK:
                    await move(f"f{index}", size)
                else:
                    async with big:
                        await move(f"f{index}", size)

        await asyncio.gather(*(one(i, s) for i, s in enumerate(sizes)))


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        raise SystemExit("usage: _http_floor.py serve LARGEST_BYTES")
    asyncio.run(_serve(int(sys.argv[2])))
