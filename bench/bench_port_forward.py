"""Port-forward throughput: bytes echoed by a job, through three paths.

A job runs a TCP echo server. A separate load process (so it does not share the
forwarder's event loop) sends N MiB and reads them back concurrently, checking
every byte. Paths, all in the same run against the same platform:

(i)   our ``client.jobs`` forward (``apolo_jupyter.client._port_forward.forward``),
(ii)  the official ``apolo_sdk`` ``client.jobs.port_forward``,
(iii) direct loopback TCP to the job's port (the baseline),
(iv)  for context, two bare asyncio relays in a chain (``RELAY``).

Forwarded bytes cross three loopback TCP hops each way (load -> forwarder ->
platform -> job) instead of one, and most of the forwarder's and the platform's CPU
time is the kernel copying them; with only a few cores, the total CPU, not the
forwarding code, sets the ratio to direct TCP. The CPU columns (seconds per GiB
moved, both directions counted) compare the forwarders themselves.

Each round runs the three paths back to back. Besides the best of each path, the
median over rounds of the per-round ratios is printed: a direct run that got
lucky in one round does not set it.

Run: .venv/bin/python bench/bench_port_forward.py [--mb 512] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from _daemon import local_platform
from yarl import URL

from apolo_jupyter import get
from apolo_jupyter.client._local_home import LocalPaths
from apolo_jupyter.client._port_forward import forward

ECHO = """
import asyncio, sys
async def echo(r, w):
    try:
        while data := await r.read(1 << 20):
            w.write(data)
            await w.drain()
    finally:
        w.close()
async def main():
    srv = await asyncio.start_server(echo, "127.0.0.1", int(sys.argv[1]), limit=1 << 20)
    await srv.serve_forever()
asyncio.run(main())
"""

# Sends MB MiB of a counter-stamped pattern and reads them back in two threads;
# prints the seconds taken, or fails on the first wrong byte.
# For context: a relay as lean as asyncio allows (what it reads, it writes; no
# framing). Two of them in a chain, load -> relay -> relay -> job, cross the same
# three hops as a forward: the ceiling for relaying on this machine's cores.
RELAY = """
import asyncio, sys
class Side(asyncio.BufferedProtocol):
    def __init__(self, peer=None):
        self.buf, self.peer, self.t = bytearray(1 << 19), peer, None
    def connection_made(self, t):
        self.t = t
    def get_buffer(self, n):
        return self.buf
    def buffer_updated(self, n):
        self.peer.t.write(memoryview(self.buf)[:n])
    def pause_writing(self):
        self.peer.t.pause_reading()
    def resume_writing(self):
        self.peer.t.resume_reading()
    def connection_lost(self, exc):
        if self.peer.t:
            self.peer.t.close()
async def main(port, upstream):
    loop = asyncio.get_running_loop()
    async def accepted(a):
        _, b = await loop.create_connection(lambda: Side(a), "127.0.0.1", upstream)
        a.peer = b
        a.t.resume_reading()
    def factory():
        a = Side()
        made = a.connection_made
        def connection_made(t):
            made(t)
            t.pause_reading()
            loop.create_task(accepted(a))
        a.connection_made = connection_made
        return a
    server = await loop.create_server(factory, "127.0.0.1", port)
    await server.serve_forever()
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""

LOAD = """
import socket, sys, threading, time
port, mb = int(sys.argv[1]), int(sys.argv[2])
pattern = bytes(range(256)) * 4096  # 1 MiB; each MiB starts with its number
sock = socket.create_connection(("127.0.0.1", port))
t0 = time.perf_counter()
def send():
    out = bytearray(pattern)
    for i in range(mb):
        out[:8] = i.to_bytes(8, "big")
        sock.sendall(out)
sender = threading.Thread(target=send)
sender.start()
buf, expected = bytearray(len(pattern)), bytearray(pattern)
view = memoryview(buf)
for i in range(mb):
    got = 0
    while got < len(buf):
        n = sock.recv_into(view[got:])
        if not n:
            sys.exit(f"EOF after {i} MiB")
        got += n
    expected[:8] = i.to_bytes(8, "big")
    if buf != expected:
        sys.exit(f"wrong bytes in MiB {i}")
sender.join()
print(time.perf_counter() - t0)
sock.close()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Sample:
    seconds: float  # wall time of the transfer, measured by the load process
    forwarder_cpu: float  # CPU seconds of this process (where the forward runs)
    daemon_cpu: float  # CPU seconds of the platform daemon


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(port: int, mb: int, daemon: int) -> Sample:
    """``mb`` MiB each way through 127.0.0.1:``port``."""
    cpu0, daemon0 = time.process_time(), cpu_seconds(daemon)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOAD, str(port), str(mb), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"load on port {port} failed ({proc.returncode})")
    return Sample(float(out), time.process_time() - cpu0, cpu_seconds(daemon) - daemon0)


async def wait_listening(port: int) -> None:
    for _ in range(400):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.025)
            continue
        writer.close()
        return
    raise SystemExit(f"the echo job never listened on {port}")


async def measure(mb: int, runs: int, home: Path) -> dict[str, list[Sample]]:
    import apolo_sdk

    with local_platform(LocalPaths(home / "platform")) as info:
        sdk_path = home / ".apolo"
        await apolo_sdk.login_with_token(info.token, url=URL(info.url), path=sdk_path)
        async with (
            get(info.url, info.token, quiet=True) as client,
            apolo_sdk.get(path=sdk_path) as sdk_client,
        ):
            port = free_port()
            job = await client.jobs.start(
                image=client.parse.remote_image("python:3.11"),
                preset_name="cpu-small",
                command=f"python3 -c {shlex.quote(ECHO)} {port}",
            )
            await wait_listening(port)
            url = client.config.cluster.monitoring_url / job.id / "port_forward"
            url = url / str(port)

            async def ours() -> Sample:
                async with forward(client.jobs._core, url, 0) as fwd:
                    sample = await load(fwd.port, mb, info.pid)
                assert not fwd.errors, fwd.errors
                return sample

            async def sdk() -> Sample:
                local = free_port()
                async with sdk_client.jobs.port_forward(job.id, local, port):
                    return await load(local, mb, info.pid)

            async def direct() -> Sample:
                return await load(port, mb, info.pid)

            relays = []
            upstream = port
            for _ in range(2):
                listen = free_port()
                relays.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable, "-c", RELAY, str(listen), str(upstream)
                    )
                )
                await wait_listening(listen)
                upstream = listen

            async def relayed() -> Sample:
                return await load(upstream, mb, info.pid)

            paths: dict[str, Callable[[], Awaitable[Sample]]] = {
                "ours": ours,
                "sdk": sdk,
                "direct": direct,
                "relays": relayed,
            }
            samples: dict[str, list[Sample]] = {name: [] for name in paths}
            for _ in range(runs):  # interleaved, so drift hits all paths alike
                for name, run in paths.items():
                    samples[name].append(await run())
            for relay in relays:
                relay.kill()
                await relay.wait()
            await client.jobs.kill(job.id)
            return samples


def report(mb: int, runs: int, samples: dict[str, list[Sample]]) -> None:
    best = {name: min(s, key=lambda x: x.seconds) for name, s in samples.items()}
    nbytes = mb * 2**20
    cores = len(os.sched_getaffinity(0))
    print(
        f"bench_port_forward: {mb} MiB each way through a job's echo server, "
        f"best of {runs}, {cores} CPUs"
    )
    labels = {
        "ours": "ours (apolo_jupyter forward)",
        "sdk": "official apolo_sdk port_forward",
        "direct": "direct loopback TCP",
        "relays": "two bare asyncio relays (context)",
    }
    for name, label in labels.items():
        s = best[name]
        line = f"{label:32s} {nbytes / s.seconds / 1e6:6.0f} MB/s each way"
        if name in ("ours", "sdk"):
            gib = 2 * nbytes / 2**30  # both directions
            line += (
                f"; CPU s/GiB: forwarder {s.forwarder_cpu / gib:.2f}, "
                f"daemon {s.daemon_cpu / gib:.2f}"
            )
        print(line)
    ours, sdk, direct = (best[k].seconds for k in ("ours", "sdk", "direct"))
    rounds = list(zip(*(samples[k] for k in ("ours", "sdk", "direct")), strict=True))
    vs_direct = statistics.median(d.seconds / o.seconds for o, _, d in rounds)
    vs_sdk = statistics.median(s.seconds / o.seconds for o, s, _ in rounds)
    print(
        f"ours/direct = {direct / ours:.2f} best of each, "
        f"{vs_direct:.2f} median of rounds (target >= 0.5)"
    )
    print(
        f"ours/SDK    = {sdk / ours:.2f} best of each, "
        f"{vs_sdk:.2f} median of rounds (target > 1)"
    )
    relays = statistics.median(
        d.seconds / r.seconds
        for d, r in zip(samples["direct"], samples["relays"], strict=True)
    )
    print(f"two bare relays/direct = {relays:.2f} median of rounds (the ceiling)")


async def main(mb: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        samples = await measure(mb, runs, Path(tmp))
    report(mb, runs, samples)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512, help="MiB each way")
    parser.add_argument("--runs", type=int, default=3, help="best of this many")
    args = parser.parse_args()
    asyncio.run(main(args.mb, args.runs))
