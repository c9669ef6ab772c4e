"""Storage throughput: upload and download of one large file through our client.

Baseline, measured in the same run on the same disk: ``shutil.copyfile`` of the same
file (the kernel copies it with ``copy_file_range``/``sendfile``, no user-space
copy). Our upload is CREATE + one WRITE request per MiB (the ``apolo_sdk``
protocol, 4 in flight); our download is one streamed OPEN (``sendfile`` on the
server). The three are interleaved, each after an ``os.sync()`` so no writeback of
an earlier step competes, and the best of N runs is kept. Every transfer is
checked byte for byte (SHA-256). Files stay in the page cache, so this measures
the HTTP path and the memory copies, not the disk.

Run: .venv/bin/python bench/bench_storage.py [--mb 512] [--runs 3]"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from _daemon import local_platform
from yarl import URL

from apolo_jupyter import get
from apolo_jupyter.client._local_home import LocalPaths
from apolo_jupyter.client._storage import Storage


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _make(path: Path, mb: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as stream:
        for i in range(mb):
            stream.write(i.to_bytes(8, "little") + block[8:])


async def _timed(func: Callable[[], Awaitable[None]]) -> float:
    await asyncio.to_thread(os.sync)  # no writeback of the previous step meanwhile
    start = time.perf_counter()
    await func()
    return time.perf_counter() - start


async def bench(tmp: Path, mb: int, runs: int) -> None:
    paths = LocalPaths(tmp / "home")
    with local_platform(paths) as info:
        src = tmp / "src.bin"
        _make(src, mb)
        expected = _sha(src)

        async def copy() -> None:
            await asyncio.to_thread(shutil.copyfile, src, tmp / "copy.bin")

        best = {"copy": float("inf"), "up": float("inf"), "down": float("inf")}
        async with get(info.url, info.token, quiet=True) as client:
            storage = Storage(client.jobs._core, client.config)
            dst = URL("storage:bench/big.bin")
            await storage.mkdir(URL("storage:bench"), exist_ok=True)

            async def upload() -> None:
                await storage.upload_file(src, dst)

            async def download() -> None:
                await storage.download_file(dst, tmp / "down.bin")

            for _ in range(runs):  # interleaved, so all see the same conditions
                for name, func in (("copy", copy), ("up", upload), ("down", download)):
                    best[name] = min(best[name], await _timed(func))
            stored = paths.storage_dir / "local" / "default" / "bench" / "big.bin"
            assert _sha(stored) == expected, "uploaded bytes differ"
            assert _sha(tmp / "down.bin") == expected, "downloaded bytes differ"
        copy_s, up_s, down_s = best["copy"], best["up"], best["down"]
        rate = {name: mb / s for name, s in (("copy", copy_s), ("up", up_s))}
        rate["down"] = mb / down_s
        print(f"file: {mb} MiB, best of {runs} runs, MB/s = MiB per second")
        print(f"  shutil.copyfile  {rate['copy']:9.0f} MB/s  (baseline)")
        for name in ("up", "down"):
            label = "upload_file  " if name == "up" else "download_file"
            ratio = rate[name] / rate["copy"]
            print(
                f"  {label}    {rate[name]:9.0f} MB/s  ratio {ratio:.2f} (target >= 0.5)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=512, help="file size in MiB")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        asyncio.run(bench(Path(tmp), args.mb, args.runs))


if __name__ == "__main__":
    main()
