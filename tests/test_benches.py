"""Every benchmark in ``bench/`` still runs, end to end, at a tiny size.

Speed is not checked here (this machine is shared and noisy; the figures in the
README come from full-size runs by hand). What is checked: the script exits
cleanly, prints each figure its report promises, and leaves no process behind
(the platform daemon, jobs, Jupyter and relays included).
A bench that exits 1 because a target was missed at this toy size still counts
as running, provided it says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
NUMBER = r"[\d,.]+"

CASES = {
    "bench_exec.py": (
        ["--rounds", "3", "--keys", "5", "--samples", "1"],
        [
            rf"exec true round trip p50: ours {NUMBER} ms, direct nsenter {NUMBER} ms, ratio {NUMBER}",
            rf"exec -t keystroke echo p50: {NUMBER} ms",
            rf"top sample -> chart update p50: {NUMBER} ms",
        ],
    ),
    "bench_jobs.py": (
        ["--rounds", "1"],
        [
            rf"exit->final status: watch {NUMBER} ms",
            rf"start->running: jobs\.start {NUMBER} ms",
            rf"jobs\.list 10000 jobs: {NUMBER} s",
        ],
    ),
    "bench_logs.py": (
        ["--mb", "1"],
        [rf"live follow: {NUMBER} MB/s", rf"replay: {NUMBER} MB/s"],
    ),
    "bench_magics.py": (
        ["--rounds", "1"],
        [
            rf"%load_ext apolo_jupyter {NUMBER} ms",
            rf"job exit -> widget status trait: {NUMBER} ms",
        ],
    ),
    "bench_port_forward.py": (
        ["--mb", "2", "--runs", "1"],
        [
            rf"ours \(apolo_jupyter forward\) +{NUMBER} MB/s",
            rf"official apolo_sdk port_forward +{NUMBER} MB/s",
            rf"ours/direct = {NUMBER} best of each",
        ],
    ),
    "bench_proxy.py": (
        ["--mib", "2", "--runs", "1", "--rtts", "20"],
        [
            rf"Jupyter proxy -> forward +{NUMBER} +{NUMBER}",
            rf"proxied/forwarded = {NUMBER}% best of each",
            rf"added by the proxy at p50: -?{NUMBER} ms",
        ],
    ),
    "bench_refusals.py": (
        ["--requests", "2", "--rounds", "1"],
        [
            rf"refused: huge {NUMBER} ms, small {NUMBER} ms, ratio {NUMBER}",
            rf"ping meanwhile: worst {NUMBER} ms, idle {NUMBER} ms, ratio {NUMBER}",
        ],
    ),
    "bench_scheduler.py": (
        ["--jobs", "3", "--rounds", "1"],
        [rf"rounds: platform {NUMBER} jobs/s; bare {NUMBER} spawns/s"],
    ),
    "bench_widget_logs.py": (
        ["--mb", "2", "--seconds", "3"],
        [
            rf"log: {NUMBER} MB/s",
            rf"frontend: {NUMBER} kB/s on average",
            rf"ratio frontend/log = {NUMBER}",
            rf"sparkline of a running job .* ours {NUMBER} B/s, whole window "
            rf"each update {NUMBER} B/s, ratio {NUMBER}",
        ],
    ),
    "bench_sync.py": (
        [
            *("--files", "20", "--mb", "2", "--rounds", "1"),
            *("--transports", "auto,websocket,http"),
        ],
        [
            r"transport auto \(the default\):",
            rf"upload_dir +best +{NUMBER} MB/s .* ratio {NUMBER}",
            rf"download_dir +best +{NUMBER} MB/s .* ratio {NUMBER}",
            r"transport websocket:",
            r"transport http:",
            rf"bare upload +best +{NUMBER} MB/s .* ratio {NUMBER}",
            rf"bare download +best +{NUMBER} MB/s .* ratio {NUMBER}",
            rf"one-file upload +best +{NUMBER} MB/s .* ratio {NUMBER}",
            rf"second sync, one file changed: {NUMBER} s, 1 file uploaded",
            rf"--result x +{NUMBER} ms; %%apolo_job --python +{NUMBER} ms: ratio",
        ],
    ),
    "bench_storage.py": (
        ["--mb", "1", "--runs", "1"],
        [rf"upload_file +{NUMBER} MB/s", rf"download_file +{NUMBER} MB/s"],
    ),
}


def test_every_bench_is_covered() -> None:
    assert sorted(CASES) == sorted(p.name for p in BENCH.glob("bench_*.py"))


def _processes_with(entry: bytes) -> list[int]:
    """Pids whose environment holds ``entry`` (inherited by all a bench starts,
    even by daemons that outlive it and are re-parented)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if entry in environ.split(b"\0"):
                found.append(int(proc.name))
    return found


@pytest.mark.parametrize("script", sorted(CASES))
def test_bench_runs(script: str, tmp_path: Path) -> None:
    args, expected = CASES[script]
    env = dict(os.environ, HOME=str(tmp_path), TMPDIR=str(tmp_path))
    log = tmp_path / "bench.log"
    marker = f"TMPDIR={tmp_path}".encode()
    try:
        with log.open("w") as out_file:  # a file, not a pipe: leftovers can't hold it
            proc = subprocess.run(
                [sys.executable, str(BENCH / script), *args],
                stdout=out_file,
                stderr=subprocess.STDOUT,
                timeout=100,
                env=env,
                cwd=tmp_path,
                check=False,
            )
        out = log.read_text()
        assert proc.returncode == 0 or (proc.returncode == 1 and "NOT met" in out), out
        for pattern in expected:
            assert re.search(pattern, out), f"{pattern!r} missing from:\n{out}"
        assert "Traceback" not in out, out
        deadline = time.monotonic() + 10
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _processes_with(marker), "the bench left processes behind"
    finally:  # whatever happened, stop all the bench started
        for pid in _processes_with(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
