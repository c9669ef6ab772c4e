"""What the kernel sends the browser while an attached job floods its log, and
while a quiet job runs (its status view's resource sparkline).

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

Then, in the same kernel, two status views follow one quiet running job for
``--seconds`` (90 by default, so the sparkline's 60-sample window fills): ours,
whose updates carry only the new samples, and a baseline view that differs only
in sending the whole window with every update. The bytes of each view's updates
on IOPub (envelopes included) are counted apart, by comm id.

Run: .venv/bin/python bench/bench_widget_logs.py [--mb 1024] [--seconds 90]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.manager import KernelManager

from apolo_jupyter import get
from apolo_jupyter.client._local_home import LocalPaths, ensure_running

PRINTER = (
    "import sys; line = b'x' * 99 + b'\\n'; block = line * 10486; "
    "w = sys.stdout.buffer.write; [w(block) for _ in range({blocks})]"
)


USAGE_CELL = """
import anywidget
from apolo_jupyter.kernel._bridge import Attachment
from apolo_jupyter.kernel._runtime import runtime
from apolo_jupyter.widgets import JobStatusView

class WholeWindow(JobStatusView):  # the baseline: the whole window every update
    def get_state(self, key=None, drop_defaults=False):
        return anywidget.AnyWidget.get_state(self, key, drop_defaults)

rt = runtime()
client = rt.client()
quiet = rt.run(client.jobs.start(
    image=client.parse.remote_image("ubuntu"), preset_name="cpu-small",
    command="sleep 3600"))
views = {"ours": JobStatusView(), "whole window": WholeWindow()}
watchers = [Attachment(rt, client, quiet.id, v) for v in views.values()]
print(json.dumps({v.model_id: name for name, v in views.items()}))
"""
STOP_CELL = """
for w in watchers:
    w.stop()
rt.run(client.jobs.kill(quiet.id))
print(views["ours"].spark.get("seq", 0))
"""


class IOPubMeter:
    """Counts the bytes of every IOPub message, with arrival times and the comm
    it updates (if any)."""

    def __init__(self, url: str) -> None:
        self._ctx = zmq.Context()
        self._socket = self._ctx.socket(zmq.SUB)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.connect(url)
        self.samples: list[tuple[float, int]] = []
        self.comms: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        while not self._stop.is_set():
            if poller.poll(100):
                frames = self._socket.recv_multipart(copy=True)
                now, size = time.monotonic(), sum(len(f) for f in frames)
                self.samples.append((now, size))
                # Frames: idents, <IDS|MSG>, signature, header, parent, metadata,
                # content, buffers.
                at = frames.index(b"<IDS|MSG>")
                if b'"comm_msg"' in frames[at + 2]:
                    comm = json.loads(frames[at + 5]).get("comm_id", "")
                    self.comms.append((now, size, comm))

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


def _execute(kc: Any, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
    assert reply["content"]["status"] == "ok", (reply["content"], out)
    return "".join(out)


def usage_phase(
    kc: Any, meter: IOPubMeter, seconds: float
) -> tuple[float, dict[str, int], int]:
    """Two views of one quiet job for ``seconds``: (seconds, bytes of updates
    per view name, samples shown)."""
    names = json.loads(_execute(kc, "import json\n" + USAGE_CELL))
    start = time.monotonic()
    time.sleep(seconds)
    end = time.monotonic()
    samples = int(_execute(kc, STOP_CELL))
    sent = dict.fromkeys(names.values(), 0)
    for t, n, comm in meter.comms:
        if start <= t <= end and comm in names:
            sent[names[comm]] += n
    return end - start, sent, samples


def main(mb: int, seconds: float) -> None:
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
                usage_s, usage, samples = usage_phase(kc, meter, seconds)
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
    ours, whole = usage["ours"] / usage_s, usage["whole window"] / usage_s
    print(
        f"sparkline of a running job ({samples} samples in {usage_s:.0f} s): "
        f"ours {ours:,.0f} B/s, whole window each update {whole:,.0f} B/s, "
        f"ratio {ours / whole:.3f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=90)
    args = parser.parse_args()
    main(args.mb, args.seconds)
