"""The Jupyter proxy (``/apolo/forward/<id>/``) against going straight to the forwarded port.

End to end, as a user has it, on the embedded local platform:

- a job serves HTTP (``BACKEND``): ``GET /big/<bytes>`` streams that many bytes in
  1 MiB chunks, ``/ws`` echoes WebSocket messages;
- a separate kernel-like process (``KERNEL``) turns a ``PortForwardToggle`` on through
  the same ``ForwardControl`` that ``%apolo_forward`` uses: ``client.jobs.port_forward``
  to a free local port, registered with the server extension;
- a real ``jupyter server`` with the ``apolo_jupyter.server`` extension proxies it;
- this process is the HTTP client, on an event loop of its own.

Every path runs once per round, back to back, so drift on this shared machine hits
all of them alike. Printed: the best of each path, and the median over rounds of the
per-round ratios (one lucky run does not set it).

Targets: a GET through the proxy gets >= 50% of the throughput of the same GET
straight to the forwarded local port; the proxy adds <= 2 ms to a WebSocket echo
round trip at p50.

For context, in the same rounds:

- ``job port``: the job's server with no forward at all (one loopback TCP hop);
- ``proxy -> job port``: the proxy registered on the job's port itself, i.e. what the
  proxy alone costs over one bare hop;
- ``splice relay -> job port`` (``RELAY``): a minimal relay process that moves the
  body with ``splice(2)``, with no copy and no Python per byte: the best any proxy in
  a process of its own can do here.

Run: .venv/bin/python bench/bench_proxy.py [--mib 256] [--runs 5] [--rtts 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from _daemon import local_platform

from apolo_jupyter import get
from apolo_jupyter.client._local_home import LocalPaths

BACKEND = """
import sys
from aiohttp import web, WSMsgType

CHUNK = b"x" * (1 << 20)

async def big(request):
    size = int(request.match_info["size"])
    resp = web.StreamResponse()
    resp.content_length = size
    await resp.prepare(request)
    while size > 0:
        n = min(size, len(CHUNK))
        await resp.write(CHUNK[:n] if n < len(CHUNK) else CHUNK)
        size -= n
    await resp.write_eof()
    return resp

async def ws(request):
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        if msg.type == WSMsgType.TEXT:
            await sock.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await sock.send_bytes(msg.data)
    return sock

app = web.Application()
app.router.add_get("/big/{size}", big)
app.router.add_get("/ws", ws)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None,
            access_log=None, handle_signals=True)
"""


# One GET per connection: relays the request head, then the response head, then
# Content-Length body bytes socket -> pipe -> socket with splice(2).
RELAY = """
import fcntl, os, socket, sys, threading
def head(sock, buf=b""):
    while b"\\r\\n\\r\\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise EOFError
        buf += data
    return buf
def relay(client, upstream_port):
    try:
        pump(client, upstream_port)
    except (EOFError, OSError):  # e.g. the port probe: connect, then close
        client.close()
def pump(client, upstream_port):
    with client, socket.create_connection(("127.0.0.1", upstream_port)) as up:
        up.sendall(head(client))
        reply = head(up)
        top, _, early = reply.partition(b"\\r\\n\\r\\n")
        length = next(int(line.split(b":")[1]) for line in top.split(b"\\r\\n")
                      if line.lower().startswith(b"content-length:"))
        client.sendall(reply)
        left = length - len(early)
        r, w = os.pipe()
        fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ: 1 MiB in flight
        while left > 0:
            n = os.splice(up.fileno(), w, min(left, 1 << 20))
            if not n:
                break
            left -= n
            while n:
                n -= os.splice(r, client.fileno(), n)
        os.close(r)
        os.close(w)
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    conn, _ = srv.accept()
    threading.Thread(target=relay, args=(conn, int(sys.argv[2])), daemon=True).start()
"""


# What a click on the toggle does in a kernel: the forward runs on the runtime's
# loop thread and is registered with the proxy. Prints the record, holds the
# forward until stdin closes, then turns the toggle off.
KERNEL = """
import json, sys, time
from apolo_jupyter import get
from apolo_jupyter.kernel._forward_control import ForwardControl
from apolo_jupyter.kernel._runtime import runtime

def until(check, what):
    deadline = time.monotonic() + 60
    while not check():
        if time.monotonic() > deadline:
            sys.exit(what)
        time.sleep(0.02)

async def connect():
    return await get(url, token, quiet=True)

url, token, job_id, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rt = runtime()
rt.use(rt.run(connect()))
control = ForwardControl(rt, rt.client(), job_id, port)
control.view.turn_on()
until(lambda: control.view.state in ("on", "error"), "the toggle never turned on")
if control.record is None:
    sys.exit(f"the toggle failed: {control.view._status.value}")
print(json.dumps({"id": control.record.id, "port": control.record.port}), flush=True)
sys.stdin.read()
control.view.turn_off()
until(lambda: control.view.state == "off", "the toggle never turned off")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start in {timeout:.0f}s")
        await asyncio.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


TIMEOUT = aiohttp.ClientTimeout(total=600)


async def get_throughput(url: str, size: int, headers: dict[str, str]) -> float:
    """MB/s of one GET of ``size`` bytes, on a connection of its own."""
    got = 0
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        start = time.perf_counter()
        async with http.get(f"{url}big/{size}", headers=headers) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            async for chunk in resp.content.iter_chunked(1 << 20):
                got += len(chunk)
        elapsed = time.perf_counter() - start
    assert got == size, (got, size)
    return size / elapsed / 1e6


async def ws_rtts(url: str, n: int, headers: dict[str, str]) -> list[float]:
    """Milliseconds per echo round trip, after 100 warm-up round trips."""
    out: list[float] = []
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.ws_connect(f"{url}ws".replace("http", "ws", 1), headers=headers) as ws,
    ):
        for i in range(n + 100):
            msg = f"ping-{i}"
            start = time.perf_counter()
            await ws.send_str(msg)
            reply = await ws.receive_str(timeout=10)
            elapsed = time.perf_counter() - start
            assert reply == msg, (reply, msg)
            if i >= 100:
                out.append(elapsed * 1000)
    return out


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def start_jupyter(tmp: Path, token: str) -> tuple[subprocess.Popen[bytes], Path]:
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
    )
    cmd = [
        sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0", "--ServerApp.port_retries=0", "--no-browser",
        "--allow-root", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp}", "--ServerApp.log_level=WARN",
        '--ServerApp.jpserver_extensions={"apolo_jupyter.server": True}',
    ]  # fmt: skip
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    return proc, tmp / "runtime" / f"jpserver-{proc.pid}.json"


def jupyter_port(proc: subprocess.Popen[bytes], info: Path) -> int | None:
    """The server's port once it accepts connections (the runtime file can name
    it a moment before)."""
    if proc.poll() is not None:
        raise SystemExit(f"jupyter server exited ({proc.returncode})")
    try:
        port = int(json.loads(info.read_text())["port"])
    except (OSError, ValueError, KeyError):
        return None
    return port if port and port_open(port) else None


PATHS = {
    "forwarded": "forwarded local port (direct)",
    "proxied": "Jupyter proxy -> forward",
    "job": "job port, no forward (context)",
    "proxy_job": "Jupyter proxy -> job port (context)",
    "relay": "splice relay -> job port (context)",
}


async def rounds(
    urls: dict[str, str], auth: dict[str, str], size: int, runs: int
) -> dict[str, list[float]]:
    mbs: dict[str, list[float]] = {name: [] for name in PATHS}
    await get_throughput(urls["proxied"], 1024, auth)  # warm up
    for _ in range(runs):
        for name in PATHS:
            headers = auth if name in ("proxied", "proxy_job") else {}
            mbs[name].append(await get_throughput(urls[name], size, headers))
    return mbs


def median_ratio(num: list[float], den: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def report(
    mbs: dict[str, list[float]], rtt: dict[str, list[float]], mib: int, runs: int
) -> bool:
    cores = len(os.sched_getaffinity(0))
    print(f"bench_proxy: GET of {mib} MiB, {runs} rounds, {cores} CPUs")
    print(f"  {'path':38s} {'best MB/s':>10s} {'median MB/s':>12s}")
    for name, label in PATHS.items():
        best, med = max(mbs[name]), statistics.median(mbs[name])
        print(f"  {label:38s} {best:10.0f} {med:12.0f}")
    best = max(mbs["proxied"]) / max(mbs["forwarded"])
    med = median_ratio(mbs["proxied"], mbs["forwarded"])
    print(
        f"proxied/forwarded = {best:.0%} best of each, {med:.0%} median of rounds "
        "(target >= 50%)"
    )
    print(
        f"context, median of rounds: proxy/job port "
        f"{median_ratio(mbs['proxy_job'], mbs['job']):.0%}, splice relay/job port "
        f"{median_ratio(mbs['relay'], mbs['job']):.0%}, proxy/splice relay "
        f"{median_ratio(mbs['proxy_job'], mbs['relay']):.0%}, "
        f"proxied/job port {median_ratio(mbs['proxied'], mbs['job']):.0%}"
    )
    n = len(rtt["forwarded"])
    print(f"WebSocket echo round trip, {n} after 100 warm-up, ms:")
    for name in ("forwarded", "proxied", "job"):
        values = rtt[name]
        print(
            f"  {PATHS[name]:38s} p50 {statistics.median(values):6.3f}"
            f"  p95 {pct(values, 95):6.3f}"
        )
    added = statistics.median(rtt["proxied"]) - statistics.median(rtt["forwarded"])
    print(f"added by the proxy at p50: {added:.3f} ms (target <= 2 ms)")
    ok = best >= 0.5 and med >= 0.5 and added <= 2.0
    print("targets:", "met" if ok else "NOT met")
    return ok


async def measure(tmp: Path, mib: int, runs: int, n_rtts: int) -> bool:
    os.environ["APOLO_JUPYTER_FORWARDS_DIR"] = str(tmp / "forwards")
    from apolo_jupyter.kernel import _forward_registry as registry

    with local_platform(LocalPaths(tmp / "platform")) as platform:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            async with get(platform.url, platform.token, quiet=True) as client:
                job_port = free_port()
                job = await client.jobs.start(
                    image=client.parse.remote_image("python:3.11"),
                    preset_name="cpu-small",
                    command=f"{shlex.quote(sys.executable)} -c {shlex.quote(BACKEND)} "
                    f"{job_port}",
                )
                try:
                    await wait_for(lambda: port_open(job_port), "the job's server")
                    relay_port = free_port()
                    procs.append(
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-c",
                                RELAY,
                                str(relay_port),
                                str(job_port),
                            ]
                        )
                    )
                    args = [platform.url, platform.token, job.id, str(job_port)]
                    kernel = subprocess.Popen(
                        [sys.executable, "-c", KERNEL, *args],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                    )
                    procs.append(kernel)
                    assert kernel.stdout is not None and kernel.stdin is not None
                    line = await asyncio.to_thread(kernel.stdout.readline)
                    if not line:
                        raise SystemExit(
                            "the kernel process could not turn the toggle on"
                        )
                    forward = json.loads(line)
                    bare = registry.register(job_port, job.id)
                    token = secrets.token_hex(16)
                    server, info = start_jupyter(tmp, token)
                    procs.append(server)
                    await wait_for(
                        lambda: jupyter_port(server, info) is not None, "Jupyter"
                    )
                    await wait_for(lambda: port_open(relay_port), "the splice relay")
                    proxy = (
                        f"http://127.0.0.1:{jupyter_port(server, info)}/apolo/forward/"
                    )
                    urls = {
                        "forwarded": f"http://127.0.0.1:{forward['port']}/",
                        "proxied": f"{proxy}{forward['id']}/",
                        "job": f"http://127.0.0.1:{job_port}/",
                        "proxy_job": f"{proxy}{bare.id}/",
                        "relay": f"http://127.0.0.1:{relay_port}/",
                    }
                    auth = {"Authorization": f"token {token}"}
                    mbs = await rounds(urls, auth, mib << 20, runs)
                    rtt = {
                        name: await ws_rtts(
                            urls[name], n_rtts, auth if name == "proxied" else {}
                        )
                        for name in ("forwarded", "proxied", "job")
                    }
                    registry.unregister(bare.id)
                    kernel.stdin.close()
                    await asyncio.to_thread(kernel.wait, 60)
                    assert kernel.returncode == 0, kernel.returncode
                    assert registry.lookup(forward["id"]) is None, "route left behind"
                finally:
                    await client.jobs.kill(job.id)
        finally:
            for proc in procs:
                stop(proc)
    return report(mbs, rtt, mib, runs)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--mib", type=int, default=256, help="size of the GET")
    parser.add_argument("--runs", type=int, default=5, help="rounds")
    parser.add_argument("--rtts", type=int, default=2000, help="WebSocket echoes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        ok = asyncio.run(measure(Path(tmp), args.mib, args.runs, args.rtts))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
