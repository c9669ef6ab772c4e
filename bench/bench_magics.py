"""Magics and widget benchmarks, each against a baseline measured in the same run.

(a) ``%load_ext apolo_jupyter`` in a fresh interpreter, against ``import IPython``
    alone (target: load_ext <= 300 ms);
(b) a job's exit -> the JobStatusView showing it finished (its ``ui`` trait
    change), against the seed's 1-second status polling loop noticing the same exit.

Run: .venv/bin/python bench/bench_magics.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _daemon import local_platform

from apolo_jupyter import Client, JobStatus, get
from apolo_jupyter.client._local_home import LocalPaths
from apolo_jupyter.kernel._bridge import Attachment
from apolo_jupyter.kernel._runtime import Runtime
from apolo_jupyter.widgets import JobStatusView

IMPORT_IPYTHON = (
    "import time; t = time.perf_counter(); import IPython; "
    "print(time.perf_counter() - t)"
)
LOAD_EXT = (
    "from IPython.core.interactiveshell import InteractiveShell; import time; "
    "ip = InteractiveShell.instance(); t = time.perf_counter(); "
    "ip.run_line_magic('load_ext', 'apolo_jupyter'); print(time.perf_counter() - t)"
)
EXIT_STAMP = "import time; time.sleep(0.3); print(repr(time.time()), flush=True)"


def fresh(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def exit_time(paths: LocalPaths, job_id: str) -> float:
    return float((paths.jobs_dir / job_id / "log").read_text().split()[-1])


async def _start(client: Client) -> str:
    job = await client.jobs.start(
        image=client.parse.remote_image("python:3.11"),
        preset_name="cpu-small",
        command=f"python3 -c '{EXIT_STAMP}'",
    )
    return job.id


def widget_latency(rt: Runtime, client: Client, paths: LocalPaths) -> float:
    changed: list[float] = []
    view = JobStatusView()

    def on_ui(change: dict[str, Any]) -> None:
        if change["new"].get("finished") and not changed:
            changed.append(time.time())

    view.observe(on_ui, names="ui")
    job_id = rt.run(_start(client))
    Attachment(rt, client, job_id, view, logs=False).future.result(60)
    return changed[0] - exit_time(paths, job_id)


async def polling_latency(client: Client, paths: LocalPaths) -> float:
    job_id = await _start(client)
    while True:  # the seed's loop
        job = await client.jobs.status(job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            seen = time.time()
            break
        await asyncio.sleep(1)
    return seen - exit_time(paths, job_id)


def main(rounds: int) -> None:
    ipython = [fresh(IMPORT_IPYTHON) for _ in range(rounds)]
    load_ext = [fresh(LOAD_EXT) for _ in range(rounds)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = LocalPaths(Path(tmp) / "home")
        with local_platform(paths) as info:
            rt = Runtime()
            client = rt.run(_connect(info.url, info.token))
            widget = [widget_latency(rt, client, paths) for _ in range(rounds)]
            poll = [rt.run(polling_latency(client, paths)) for _ in range(rounds)]
            rt.run(client.close())
    p50 = statistics.median
    print(f"bench_magics ({rounds} rounds, p50)")
    print(
        f"(a) %load_ext apolo_jupyter {p50(load_ext) * 1e3:.1f} ms; import IPython alone "
        f"{p50(ipython) * 1e3:.1f} ms; ratio {p50(load_ext) / p50(ipython):.2f} "
        "(target <= 300 ms)"
    )
    print(
        f"(b) job exit -> widget status trait: {p50(widget) * 1e3:.1f} ms; seed 1 s polling "
        f"{p50(poll) * 1e3:.1f} ms; ratio {p50(widget) / p50(poll):.3f}"
    )


async def _connect(url: str, token: str) -> Client:
    return await get(url, token, quiet=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    main(parser.parse_args().rounds)
