"""What the kernel sends the browser while an attached job floods its log.

A real kernel runs ``%apolo_run`` of a job that prints ``--mb`` MiB of 100-byte
lines (1 GiB by default); the cell shows the job's status view. Every message
the kernel publishes on IOPub (what a Jupyter server relays to the browser) is
counted, in bytes, by a raw ZeroMQ subscriber. Baseline, same run: the job's own
output rate (its bytes over its run time, from the platform's timestamps).

Printed: the frontend rate (average over the cell, and the busiest second),
the log rate, their ratio, and how long after the job ended the cell returned
(whether the kernel kept up). Target: a bounded frontend rate (the view
redraws the last 200 lines at most 5 times a second, within ~200 kB/s),
independent of how fast the job prints.

Run: .venv/bin/python bench/bench_widget_logs.py [--mb 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path

import zmq
from jupyter_client.manager import KernelManager

from apolo_jupyter import get
from apolo_jupyter.client._local_home import LocalPaths, ensure_running

PRINTER = (
    "import sys; line = b'x' * 99 + b'\\n'; block = line * 10486; "
    "w = sys.stdout.buffer.write; [w(block) for _ in range({blocks})]"
)


class IOPubMeter:
    """Counts the bytes of every IOPub message, with arrival times."""

    def __init__(self, url: str) -> None:
        self._ctx = zmq.Context()
        self._socket = self._ctx.socket(zmq.SUB)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.connect(url)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        while not self._stop.is_set():
            if poller.poll(100):
                frames = self._socket.recv_multipart(copy=True)
                self.samples.append((time.monotonic(), sum(len(f) for f in frames)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close(0)
        self._ctx.term()

    def between(self, start: float, end: float) -> list[tuple[float, int]]:
        return [(t, n) for t, n in self.samples if start <= t <= end]


def _kernel_env(home: Path, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("APOLO_PASSED_CONFIG", "NEURO_PASSED_CONFIG", "APOLO_CONFIG"):
        env.pop(var, None)
    env.pop("APOLO_JUPYTER_DISPLAY", None)
    env.update(
        APOLO_JUPYTER_HOME=str(home),
        HOME=str(tmp),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
    )
    return env


async def _job_times(url: str, token: str, name: str) -> tuple[float, int]:
    async with (
        get(url, token, quiet=True) as client,
        client.jobs.list(name=name) as jobs,
    ):
        job = [j async for j in jobs][-1]
    history = job.history
    assert history.started_at is not None and history.finished_at is not None
    return (
        history.finished_at - history.started_at
    ).total_seconds(), history.exit_code or 0


def main(mb: int) -> None:
    blocks = max(mb * 2**20 // (100 * 10486), 1)
    log_bytes = blocks * 100 * 10486
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        paths = LocalPaths(tmp / "home")
        info = ensure_running(paths)
        km = KernelManager(kernel_name="python3")
        try:
            km.start_kernel(env=_kernel_env(paths.home, tmp))
            kc = km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=60)
            conn = km.get_connection_info()
            meter = IOPubMeter(
                f"{conn['transport']}://{conn['ip']}:{conn['iopub_port']}"
            )
            try:
                time.sleep(0.5)  # the subscription takes hold
                kc.execute_interactive("%load_ext apolo_jupyter", timeout=60)
                code = (
                    "job = %apolo_run -n flood python:3.11 -- "
                    f'python3 -c "{PRINTER.format(blocks=blocks)}"'
                )
                start = time.monotonic()
                reply = kc.execute_interactive(
                    code, timeout=3600, output_hook=lambda _: None
                )
                end = time.monotonic()
                assert reply["content"]["status"] == "ok", reply["content"]
                time.sleep(0.5)
                sent = meter.between(start, end + 0.5)
            finally:
                meter.close()
                kc.stop_channels()
        finally:
            km.shutdown_kernel(now=True)
            run_s, exit_code = asyncio.run(_job_times(info.url, info.token, "flood"))
            os.kill(info.pid, 15)
    assert exit_code == 0, exit_code
    cell_s = end - start
    total = sum(n for _, n in sent)
    per_second: dict[int, int] = {}
    for t, n in sent:
        per_second[int(t - start)] = per_second.get(int(t - start), 0) + n
    frontend = total / cell_s
    log_rate = log_bytes / run_s
    print(
        f"bench_widget_logs ({log_bytes / 2**20:.0f} MiB of job output, 100-byte lines)"
    )
    print(
        f"log: {log_rate / 1e6:.1f} MB/s (the job's output over its run time, {run_s:.2f} s)"
    )
    print(
        f"frontend: {frontend / 1e3:.1f} kB/s on average over the cell ({cell_s:.2f} s), "
        f"busiest second {max(per_second.values()) / 1e3:.1f} kB; "
        f"{total / 1e3:.0f} kB in {len(sent)} messages"
    )
    print(
        f"ratio frontend/log = {frontend / log_rate:.6f} "
        f"(the kernel sent 1 byte per {log_rate / frontend:,.0f} bytes of log)"
    )
    print(f"cell returned {max(cell_s - run_s, 0):.2f} s after the job's run time")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024)
    main(parser.parse_args().mb)
