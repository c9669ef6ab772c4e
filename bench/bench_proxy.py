"""The Jupyter proxy (``/apolo/forward/<id>/``) against going straight to the port.

A loopback aiohttp backend runs in a process of its own: ``GET /big/<bytes>``
streams that many bytes in 1 MiB chunks, ``/ws`` echoes WebSocket messages. It is
registered with ``apolo_jupyter._forward_registry.register`` from this process, and
a real ``jupyter server`` (with the ``apolo_jupyter.server`` extension) proxies it.
This process is the client, on an event loop of its own.

Measures, through the proxy and direct:
- throughput of one large GET (best of ``--runs``), in MB/s;
- WebSocket round-trip time of small echo messages (p50, p95), after a warm-up.

Targets: proxied throughput >= 50% of direct; added RTT <= 2 ms at p50.

For context it also measures the GET through ``RELAY``: a minimal HTTP relay
process that moves the body with ``splice(2)`` (no copy, no Python per byte). It
is the best a proxy in its own process can do on this machine: what it loses
against direct is the extra loopback TCP hop, not proxy code.

Run: .venv/bin/python bench/bench_proxy.py [--mib 256] [--runs 3] [--rtts 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start in {timeout}s")
        time.sleep(0.05)


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def get_throughput(
    http: aiohttp.ClientSession, url: str, size: int, headers: dict[str, str]
) -> float:
    start = time.perf_counter()
    got = 0
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 200, (resp.status, await resp.text())
        async for chunk in resp.content.iter_chunked(1 << 20):
            got += len(chunk)
    elapsed = time.perf_counter() - start
    assert got == size, (got, size)
    return size / elapsed / 1e6


async def ws_rtts(
    http: aiohttp.ClientSession, url: str, n: int, headers: dict[str, str]
) -> list[float]:
    out: list[float] = []
    async with http.ws_connect(url, headers=headers) as ws:
        for i in range(n + 100):  # the first 100 are a warm-up
            msg = f"ping-{i}"
            start = time.perf_counter()
            await ws.send_str(msg)
            reply = await ws.receive_str(timeout=10)
            elapsed = time.perf_counter() - start
            assert reply == msg, (reply, msg)
            if i >= 100:
                out.append(elapsed * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def best_of(runs: int, once: Callable[[], Awaitable[float]]) -> float:
    return max([await once() for _ in range(runs)])


async def relay_throughput(relay: str, size: int, runs: int) -> float:
    """Best of ``runs``; the relay serves one request per connection."""
    timeout = aiohttp.ClientTimeout(total=600)
    best = 0.0
    for _ in range(runs):
        async with aiohttp.ClientSession(timeout=timeout) as http:
            best = max(best, await get_throughput(http, f"{relay}big/{size}", size, {}))
    return best


async def measure(
    direct: str, proxied: str, relay: str, token: str, size: int, runs: int, rtts: int
) -> bool:
    auth = {"Authorization": f"token {token}"}
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await get_throughput(http, f"{proxied}big/1024", 1024, auth)  # warm up
        d_mbs = await best_of(
            runs, lambda: get_throughput(http, f"{direct}big/{size}", size, {})
        )
        p_mbs = await best_of(
            runs, lambda: get_throughput(http, f"{proxied}big/{size}", size, auth)
        )
        r_mbs = await relay_throughput(relay, size, runs)
        d_rtt = await ws_rtts(http, f"{direct}ws".replace("http", "ws", 1), rtts, {})
        p_rtt = await ws_rtts(http, f"{proxied}ws".replace("http", "ws", 1), rtts, auth)
    mib = size >> 20
    ratio = p_mbs / d_mbs
    print(f"GET {mib} MiB, best of {runs}:")
    print(f"  direct   {d_mbs:9.1f} MB/s")
    print(f"  proxied  {p_mbs:9.1f} MB/s   ratio {ratio:.1%}  (target >= 50%)")
    print(
        f"  splice relay (context) {r_mbs:9.1f} MB/s   ratio {r_mbs / d_mbs:.1%}; "
        f"proxied/relay {p_mbs / r_mbs:.1%}"
    )
    d50, p50 = statistics.median(d_rtt), statistics.median(p_rtt)
    added = p50 - d50
    print(f"WebSocket echo RTT, {rtts} round trips (after 100 warm-up):")
    print(f"  direct   p50 {d50:6.3f} ms  p95 {pct(d_rtt, 95):6.3f} ms")
    print(f"  proxied  p50 {p50:6.3f} ms  p95 {pct(p_rtt, 95):6.3f} ms")
    print(f"  added at p50 {added:6.3f} ms  ratio {p50 / d50:.2f}x  (target <= 2 ms)")
    ok = ratio >= 0.5 and added <= 2.0
    print("targets:", "met" if ok else "NOT met")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rtts", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp_name:
        tmp = Path(tmp_name)
        forwards = tmp / "forwards"
        os.environ["APOLO_JUPYTER_FORWARDS_DIR"] = str(forwards)
        from apolo_jupyter import _forward_registry as registry

        backend_port = free_port()
        backend = subprocess.Popen(
            [sys.executable, "-c", BACKEND, str(backend_port)],
            stdout=subprocess.DEVNULL,
        )
        relay_port = free_port()
        relay = subprocess.Popen(
            [sys.executable, "-c", RELAY, str(relay_port), str(backend_port)]
        )
        server: subprocess.Popen[bytes] | None = None
        try:
            wait_for(lambda: port_open(backend_port), "the backend")
            wait_for(lambda: port_open(relay_port), "the splice relay")
            fwd = registry.register(backend_port, "bench-job")

            token = secrets.token_hex(16)
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
            server = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
            info = tmp / "runtime" / f"jpserver-{server.pid}.json"

            def ready() -> bool:
                assert server is not None and server.poll() is None, "server exited"
                try:
                    return bool(json.loads(info.read_text())["port"])
                except (OSError, ValueError, KeyError):
                    return False

            wait_for(ready, "jupyter server")
            port = json.loads(info.read_text())["port"]
            direct = f"http://127.0.0.1:{backend_port}/"
            proxied = f"http://127.0.0.1:{port}/apolo/forward/{fwd.id}/"
            relayed = f"http://127.0.0.1:{relay_port}/"
            ok = asyncio.run(
                measure(
                    direct,
                    proxied,
                    relayed,
                    token,
                    args.mib << 20,
                    args.runs,
                    args.rtts,
                )
            )
            registry.unregister(fwd.id)
        finally:
            if server is not None:
                stop(server)
            stop(backend)
            stop(relay)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
