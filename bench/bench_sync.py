"""Code to the job and results back: folders, sync, cell values, each against a
baseline measured in the same run.

(a) ``storage.upload_dir`` and ``download_dir`` of a folder of mixed sizes
    (default 1,000 files, 200 MB: 10 of 10 MB, 90 of 200 kB, the rest small),
    against ``cp -r`` of the same folder on the same disk (target: >= 0.5x its
    speed), by the default transport (``auto``: same-host copies with the
    local platform) and any others named with ``--transports`` (``websocket``,
    what a cluster gets; ``http``, a request per file as apolo_sdk). Rounds are
    interleaved (cp, then each transport's upload and download, then HTTP's
    ceiling below), each after an ``os.sync()``; every copy is checked file by
    file. HTTP's ceiling, in the same rounds: the same requests (sizes, files
    in flight) against a bare aiohttp server that reads and writes no disk
    (``_http_floor.py``), and the same bytes as one file over it.
(b) A second ``--sync`` of that folder with one file changed (target: <= 0.5 s,
    one file uploaded), against the first, full sync.
(c) A trivial cell's round trip with ``--result`` (``%%apolo_job --python
    --result x``: the value comes back) against the same cell as a plain job
    (``%%apolo_job --python``), both through the magics in an IPython shell
    (target: <= 1.5x); the client-level figures (``run_cell`` against
    ``jobs.start`` + ``watch``) are printed too.

Run: .venv/bin/python bench/bench_sync.py [--files 1000] [--mb 200] [--rounds 3]
     [--transports auto,websocket,http]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _daemon import local_platform
from _http_floor import Floor
from yarl import URL

from apolo_jupyter import Client, get
from apolo_jupyter.client._local_home import LocalPaths
from apolo_jupyter.client._storage_socket import ENV_TRANSPORT
from apolo_jupyter.kernel._remote_cell import run_cell
from apolo_jupyter.kernel._sync import sync_folder

MB = 10**6
NOT_MET: list[str] = []


def make_folder(root: Path, files: int, total: int) -> None:
    """``files`` files adding up to ``total`` bytes: 1% of them 5% of the bytes
    each, 9% 0.1% each, the rest share what is left."""
    rnd = random.Random(7)
    big = max(1, files // 100)
    mid = max(1, files * 9 // 100)
    small = files - big - mid
    sizes = [total * 5 // 100] * big + [total // 1000] * mid
    left = max(small, total - sum(sizes))
    sizes += [max(1, int(left / small * rnd.uniform(0.2, 1.8))) for _ in range(small)]
    block = os.urandom(max(sizes) + 64)
    for i, size in enumerate(sizes):
        folder = root / f"part{i % 20:02d}" / ("deep" if i % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        offset = i % 64
        (folder / f"file{i:05d}.bin").write_bytes(block[offset : offset + size])


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    other = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if names != other:
        return False
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


async def timed(func: Callable[[], Awaitable[Any]]) -> float:
    await asyncio.to_thread(os.sync)
    start = time.perf_counter()
    await func()
    return time.perf_counter() - start


def check(ok: bool, what: str) -> str:
    if not ok:
        NOT_MET.append(what)
    return "met" if ok else "NOT met"


def _sizes(src: Path) -> list[int]:
    return sorted(p.stat().st_size for p in src.rglob("*") if p.is_file())


async def _start_floor(largest: int) -> tuple[subprocess.Popen[bytes], Floor]:
    script = str(Path(__file__).with_name("_http_floor.py"))
    server = subprocess.Popen(
        [sys.executable, script, "serve", str(largest)], stdout=subprocess.PIPE
    )
    assert server.stdout is not None
    port = int(await asyncio.to_thread(server.stdout.readline))
    return server, Floor(port)


def _line(label: str, size: int, times: list[float], cps: list[float]) -> str:
    best = min(times)
    paired = statistics.median(c / t for c, t in zip(cps, times, strict=True))
    return (
        f"    {label} best {size / best / MB:7.0f} MB/s ({best:.3f} s)  "
        f"ratio {min(cps) / best:.2f} best of each, {paired:.2f} median of rounds"
    )


async def bench_folders(
    client: Client,
    paths: LocalPaths,
    tmp: Path,
    files: int,
    total: int,
    rounds: int,
    transports: list[str],
) -> Path:
    src = tmp / "src"
    make_folder(src, files, total)
    sizes = _sizes(src)
    size = sum(sizes)
    moves = [f"{way}:{t}" for t in transports for way in ("up", "down")]
    names = ["cp", *moves, "bare_up", "bare_down", "one_up", "one_down"]
    times: dict[str, list[float]] = {name: [] for name in names}
    server, floor = await _start_floor(max(max(sizes), size))
    base = paths.storage_dir / "local" / "default" / "bench-sync"
    try:
        for r in range(rounds):
            copy_to = tmp / f"cp{r}"
            await client.storage.mkdir(URL("storage:bench-sync"), exist_ok=True)

            async def cp(copy_to: Path = copy_to) -> None:
                await asyncio.to_thread(
                    subprocess.run, ["cp", "-r", str(src), str(copy_to)], check=True
                )

            steps: dict[str, Callable[[], Awaitable[Any]]] = {"cp": cp}
            for t in transports:
                remote = URL(f"storage:bench-sync/r{r}-{t}")
                steps[f"up:{t}"] = _with(t, client.storage.upload_dir, src, remote)
                down_to = tmp / f"down{r}-{t}"
                steps[f"down:{t}"] = _with(
                    t, client.storage.download_dir, remote, down_to
                )
            steps.update(
                {
                    "bare_up": lambda: floor.transfer(sizes, up=True),
                    "bare_down": lambda: floor.transfer(sizes, up=False),
                    "one_up": lambda: floor.transfer([size], up=True),
                    "one_down": lambda: floor.transfer([size], up=False),
                }
            )
            for name, func in steps.items():
                times[name].append(await timed(func))
            shutil.rmtree(copy_to)
            for t in transports:
                stored, down_to = base / f"r{r}-{t}", tmp / f"down{r}-{t}"
                assert same_files(src, stored), f"uploaded files differ ({t})"
                assert same_files(src, down_to), f"downloaded files differ ({t})"
                shutil.rmtree(stored)
                shutil.rmtree(down_to)
    finally:
        await floor.close()
        server.kill()
        server.wait()
    print(f"(a) folder: {files} files, {size / MB:.0f} MB, {rounds} interleaved rounds")
    cps = times["cp"]
    print(
        f"    cp -r            best {size / min(cps) / MB:7.0f} MB/s "
        f"({min(cps):.3f} s; median {statistics.median(cps):.3f} s)  baseline"
    )
    for t in transports:
        print(f"    transport {t}{' (the default)' if t == 'auto' else ''}:")
        for way, label in (("up", "upload_dir  "), ("down", "download_dir")):
            name = f"{way}:{t}"
            best = min(times[name])
            paired = statistics.median(
                c / s for c, s in zip(cps, times[name], strict=True)
            )
            line = _line(label + "    ", size, times[name], cps)
            if t == "auto":
                ok = max(min(cps) / best, paired) >= 0.5
                line += f" (target >= 0.5: {check(ok, label.strip())})"
            print(line)
    print(
        "    HTTP's ceiling, same rounds: the same requests over bare HTTP (no disk):"
    )
    for name, label in (
        ("bare_up", "bare upload     "),
        ("bare_down", "bare download   "),
    ):
        print(_line(label, size, times[name], cps))
    print(f"    and the same {size / MB:.0f} MB as one file over bare HTTP:")
    for name, label in (
        ("one_up", "one-file upload "),
        ("one_down", "one-file downl. "),
    ):
        print(_line(label, size, times[name], cps))
    return src


def _with(
    transport: str, move: Callable[[Any, Any], Awaitable[None]], src: Any, dst: Any
) -> Callable[[], Awaitable[None]]:
    """``move(src, dst)`` with APOLO_JUPYTER_STORAGE_TRANSPORT set to ``transport``."""

    async def run() -> None:
        os.environ[ENV_TRANSPORT] = transport
        try:
            await move(src, dst)
        finally:
            del os.environ[ENV_TRANSPORT]

    return run


async def bench_sync(client: Client, src: Path) -> None:
    remote = URL("storage:bench-sync/synced")
    start = time.perf_counter()
    first = await sync_folder(client, src, remote=remote, limit=10**12)
    full = time.perf_counter() - start
    some = sorted(p for p in src.rglob("*.bin"))[len(first.uploaded) // 2]
    some.write_bytes(some.read_bytes()[::-1])
    start = time.perf_counter()
    second = await sync_folder(client, src, remote=remote, limit=10**12)
    again = time.perf_counter() - start
    start = time.perf_counter()
    third = await sync_folder(client, src, remote=remote, limit=10**12)
    nothing = time.perf_counter() - start
    ok = again <= 0.5 and len(second.uploaded) == 1
    print(f"(b) sync of that folder: first {full:.3f} s ({len(first.uploaded)} files)")
    print(
        f"    second sync, one file changed: {again:.3f} s, "
        f"{len(second.uploaded)} file uploaded "
        f"(target <= 0.5 s and 1 file: {check(ok, 'second sync')})"
    )
    print(
        f"    third sync, nothing changed: {nothing:.3f} s, "
        f"{len(third.uploaded)} files uploaded"
    )


async def _plain(client: Client, code: str) -> None:
    import shlex

    job = await client.jobs.start(
        image=client.parse.remote_image("python:3.11"),
        preset_name="cpu-small",
        command=shlex.join(["python3", "-c", code]),
    )
    async with client.jobs.watch(job.id) as updates:
        async for job in updates:
            if job.status.is_finished:
                break


def _magic_rounds(rounds: int) -> tuple[list[float], list[float]]:
    """Both forms of the cell through the magics, alternating."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "apolo_jupyter")
    plain: list[float] = []
    result: list[float] = []
    for _ in range(rounds):
        for line, into in (("--python", plain), ("--python --result x", result)):
            with contextlib.redirect_stdout(io.StringIO()):
                start = time.perf_counter()
                shell.run_cell_magic("apolo_job", line, "6 * 7")  # type: ignore[no-untyped-call]
                into.append(time.perf_counter() - start)
        assert shell.user_ns["x"] == 42
    return plain, result


async def bench_cells(client: Client, rounds: int) -> None:
    plain: list[float] = []
    ours: list[float] = []
    await _plain(client, "6 * 7")  # warm up both paths
    await run_cell(client, "6 * 7")
    for _ in range(rounds):
        start = time.perf_counter()
        await _plain(client, "6 * 7")
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        value, _ = await run_cell(client, "6 * 7")
        ours.append(time.perf_counter() - start)
        assert value == 42
    magic_plain, magic_result = await asyncio.to_thread(_magic_rounds, rounds + 1)
    magic_plain, magic_result = magic_plain[1:], magic_result[1:]  # warm-up
    p_plain, p_result = statistics.median(magic_plain), statistics.median(magic_result)
    ratio = p_result / p_plain
    print(f"(c) a trivial cell (6 * 7), median of {rounds} rounds")
    print(
        f"    %%apolo_job --python --result x  {p_result * 1000:6.1f} ms; "
        f"%%apolo_job --python {p_plain * 1000:6.1f} ms: ratio {ratio:.2f} "
        f"(target <= 1.5: {check(ratio <= 1.5, 'cell round trip')})"
    )
    c_plain, c_ours = statistics.median(plain), statistics.median(ours)
    print(
        f"    client level: run_cell {c_ours * 1000:6.1f} ms; jobs.start + watch "
        f"{c_plain * 1000:6.1f} ms: ratio {c_ours / c_plain:.2f}"
    )


async def bench(
    tmp: Path, files: int, total: int, rounds: int, transports: list[str]
) -> None:
    paths = LocalPaths(tmp / "home")
    os.environ["APOLO_JUPYTER_HOME"] = str(paths.home)  # the magics' platform too
    with local_platform(paths) as info:
        try:
            async with get(info.url, info.token, quiet=True) as client:
                src = await bench_folders(
                    client, paths, tmp, files, total, rounds, transports
                )
                await bench_sync(client, src)
                await bench_cells(client, max(rounds, 5))
        finally:
            from apolo_jupyter.kernel._runtime import runtime

            with contextlib.suppress(Exception):
                runtime()._close_client()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--mb", type=int, default=200, help="total size, MB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--transports",
        default="auto",
        help="comma-separated folder transports to time: auto, websocket, http",
    )
    args = parser.parse_args()
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        asyncio.run(bench(Path(tmp), args.files, args.mb * MB, args.rounds, transports))
    if NOT_MET:
        print(f"targets NOT met: {', '.join(NOT_MET)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
