"""Inside a running job: exec round trip, tty keystroke echo, top -> chart.

- ``exec`` of ``true`` through the platform (WebSocket upgrade, nsenter into the
  job's sandbox, exit code back), p50, against spawning the very same nsenter +
  setpriv command line directly, in the same run. Target: within 3x. Run by a
  normal user, both sides take the two nsenters such a platform needs
  (``local/_userns``).
- ``exec -t`` keystroke echo: a key written to an exec'd ``cat`` on a terminal
  until its echo is read back, p50. Target: <= 5 ms.
- ``top`` sample -> chart: from the moment the platform took a sample (its
  timestamp) until ``TelemetryChart.add`` has set the synced trait, p50.
  Target: <= 100 ms.

Run: .venv/bin/python bench/bench_exec.py [--rounds 200] [--keys 200] [--samples 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _daemon import local_platform

from apolo_jupyter import Client, StdStreamError, get
from apolo_jupyter.client._local_home import LocalPaths
from apolo_jupyter.local._exec_command import enter_job, make_target
from apolo_jupyter.local._sandbox import SandboxMode
from apolo_jupyter.local._userns import UserNs, open_owner
from apolo_jupyter.widgets._telemetry import TelemetryChart

MARKER = "3141.59"


def job_pid() -> int:
    """Host pid of the job's payload (found by its command line)."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline == f"sleep\0{MARKER}\0".encode():
                return int(name)
    raise RuntimeError("the job's process was not found")


def direct_command(pid: int) -> tuple[list[str], tuple[int, ...]]:
    """What the platform runs for exec, spawned here by hand (the baseline):
    its nsenter command line into the job of payload ``pid``, setpriv and
    ``true``, and the descriptors to pass (a normal user's: the namespace the
    first nsenter enters)."""
    init = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    target = make_target("bench", SandboxMode.BWRAP, init, {}, "/")
    fds = () if target.user_ns is UserNs.SHARED else (open_owner(init),)
    nsenter = shutil.which("nsenter") or "nsenter"
    return [
        *enter_job(nsenter, target, fds[0] if fds else None),
        "/usr/bin/setpriv",
        "--no-new-privs",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--bounding-set=-all",
        "--",
        "true",
    ], fds


async def direct_once(cmd: list[str], fds: tuple[int, ...]) -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        pass_fds=fds,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err
    return time.perf_counter() - t0


async def exec_once(client: Client, job_id: str) -> float:
    t0 = time.perf_counter()
    async with client.jobs.exec(job_id, "true", stdout=True, stderr=True) as stream:
        try:
            while await stream.read_out() is not None:
                pass
        except StdStreamError as exc:
            assert exc.exit_code == 0
    return time.perf_counter() - t0


async def keystrokes(client: Client, job_id: str, keys: int) -> list[float]:
    times = []
    async with client.jobs.exec(
        job_id, "cat", tty=True, stdin=True, stdout=True
    ) as stream:
        for i in range(keys):
            key = bytes([ord("a") + i % 26])
            t0 = time.perf_counter()
            await stream.write_in(key)
            while True:
                msg = await stream.read_out()
                assert msg is not None
                if key in msg.data:
                    break
            times.append(time.perf_counter() - t0)
    return times


async def chart_updates(client: Client, job_id: str, samples: int) -> list[float]:
    chart = TelemetryChart(job_id)
    delays = []
    async with client.jobs.top(job_id) as it:
        async for sample in it:
            chart.add(sample)
            delays.append(time.time() - sample.timestamp)
            if len(delays) >= samples:
                break
    assert len(chart.points) == samples
    return delays


def p50_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def main(rounds: int, keys: int, samples: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        paths = LocalPaths(Path(tmp) / "home")
        with local_platform(paths) as info:
            async with get(info.url, info.token, quiet=True) as client:
                job = await client.jobs.start(
                    image=client.parse.remote_image("ubuntu"),
                    preset_name="cpu-small",
                    command=f"sleep {MARKER}",
                )
                async with client.jobs.watch(job.id) as updates:
                    async for update in updates:
                        if update.status == "running":
                            break
                await exec_once(client, job.id)  # warm up: sandbox up, imports
                baseline, fds = direct_command(job_pid())
                ours, direct = [], []
                for _ in range(rounds):  # interleaved: the same load for both
                    ours.append(await exec_once(client, job.id))
                    direct.append(await direct_once(baseline, fds))
                for fd in fds:
                    os.close(fd)
                echo = await keystrokes(client, job.id, keys)
                chart = await chart_updates(client, job.id, samples)
                await client.jobs.kill(job.id)
    ratio = p50_ms(ours) / p50_ms(direct)
    print(f"bench_exec ({rounds} execs, {keys} keys, {samples} top samples)")
    print(
        f"exec true round trip p50: ours {p50_ms(ours):.2f} ms, direct nsenter "
        f"{p50_ms(direct):.2f} ms, ratio {ratio:.2f} (target <= 3)"
    )
    print(f"exec -t keystroke echo p50: {p50_ms(echo):.2f} ms (target <= 5 ms)")
    print(f"top sample -> chart update p50: {p50_ms(chart):.2f} ms (target <= 100 ms)")
    missed = [
        name
        for name, ok in (
            ("exec ratio", ratio <= 3),
            ("keystroke echo", p50_ms(echo) <= 5),
            ("top -> chart", p50_ms(chart) <= 100),
        )
        if not ok
    ]
    if missed:
        print(f"targets NOT met: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--samples", type=int, default=5)
    a = parser.parse_args()
    sys.exit(asyncio.run(main(a.rounds, a.keys, a.samples)))
