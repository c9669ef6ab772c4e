"""WS ``{monitoring_url}/{id}/top``: a running job's resource use (§4.3).

Every ``INTERVAL`` the platform samples the job's whole process tree from
``/proc``: in BWRAP mode every process of the sandbox's pid namespace (exec'd
commands included, as a container's cgroup would count them), in PLAIN mode the
job's process group. CPU is in cores, as on the real platform (1.0 = one core
busy); memory is the resident set. With an NVIDIA GPU and ``nvidia-smi`` on the
host, the GPU duty cycle and memory of the job's processes are added; without,
those fields are left out, as the real platform does for jobs without a GPU.

Frames are TEXT JSON. A pending job gets none until it runs; the socket closes
when the job stops; a finished job's socket closes at once, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence

from aiohttp import web

from ..client import _stream_wire
from ..client._models import JobStatus
from ..client._stream_models import JobTelemetry
from ._executor import RunningJob, SandboxMode
from ._logs import drain
from ._service import JobNotFound, JobNotRunning, JobService
from ._web import SERVICE, SETTINGS, json_error

INTERVAL = 1.0
FIRST_AFTER = 0.25  # the first frame comes early, so a chart starts at once
RECHECK = 0.5  # seconds between looks while no run of the job is there to sample
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _proc_stat(pid: int) -> tuple[int, int, int, int] | None:
    """(process group, start time, CPU ticks used, resident pages) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state) of proc(5): pgrp 5, utime 14, stime 15,
    # starttime 22, rss 24.
    return (
        int(fields[2]),
        int(fields[19]),
        int(fields[11]) + int(fields[12]),
        int(fields[21]),
    )


def _pid_ns(pid: int) -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/ns/pid")
    return None


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def namespace_pids(pid_ns: str) -> list[int]:
    return [pid for pid in _all_pids() if _pid_ns(pid) == pid_ns]


def group_pids(pgid: int) -> list[int]:
    return [pid for pid in _all_pids() if (st := _proc_stat(pid)) and st[0] == pgid]


class TreeSampler:
    """CPU (cores, between two samples) and memory of a changing set of pids."""

    def __init__(self) -> None:
        self._last: dict[tuple[int, int], int] = {}
        self._last_time: float | None = None
        self.last_pids: list[int] = []

    def sample(self, pids: Sequence[int]) -> tuple[float, int]:
        """(cpu cores since the previous sample, resident bytes); blocking."""
        now = time.monotonic()
        ticks: dict[tuple[int, int], int] = {}
        rss = 0
        for pid in pids:
            st = _proc_stat(pid)
            if st is not None:
                ticks[(pid, st[1])] = st[2]
                rss += st[3] * _PAGE
        used = sum(t - self._last.get(key, 0) for key, t in ticks.items())
        elapsed = None if self._last_time is None else now - self._last_time
        self._last, self._last_time, self.last_pids = ticks, now, list(pids)
        cpu = used / _TICKS / elapsed if elapsed else 0.0
        return max(cpu, 0.0), rss


def parse_nvidia_smi(
    apps: str, gpus: str, pids: Sequence[int]
) -> tuple[int, int] | None:
    """(duty cycle %, memory bytes) of ``pids`` from ``nvidia-smi`` CSV output
    (``--query-compute-apps=pid,used_memory,gpu_uuid`` and
    ``--query-gpu=uuid,utilization.gpu``, noheader, nounits); None if none of
    them uses a GPU."""
    wanted = set(pids)
    memory, used_gpus = 0, set()
    for line in apps.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit() and int(parts[0]) in wanted:
            with contextlib.suppress(ValueError):
                memory += int(float(parts[1])) * 2**20
                used_gpus.add(parts[2])
    if not used_gpus:
        return None
    duty = 0
    for line in gpus.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0] in used_gpus:
            with contextlib.suppress(ValueError):
                duty = max(duty, int(float(parts[1])))
    return duty, memory


def _smi_csv(smi: str, query: str) -> str:
    """What nvidia-smi prints for ``query``, as bare CSV (blocking)."""
    args = [smi, query, "--format=csv,noheader,nounits"]
    return subprocess.run(args, capture_output=True, text=True, timeout=5).stdout


def gpu_usage(pids: Sequence[int], smi: str | None = None) -> tuple[int, int] | None:
    """The GPU use of ``pids`` through nvidia-smi (``smi``, else the one on
    PATH), or None; blocking."""
    smi = smi or shutil.which("nvidia-smi")
    if smi is None or not pids:
        return None
    try:
        apps = _smi_csv(smi, "--query-compute-apps=pid,used_memory,gpu_uuid")
        gpus = _smi_csv(smi, "--query-gpu=uuid,utilization.gpu")
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(apps, gpus, pids)


def job_pids(pid_ns: str | None, pgid: int | None) -> list[int]:
    """The job's processes: its sandbox's pid namespace, or its process group."""
    if pid_ns is not None:
        return namespace_pids(pid_ns)
    return group_pids(pgid) if pgid is not None else []


def _telemetry(
    sampler: TreeSampler, pid_ns: str | None, pgid: int | None, smi: str | None
) -> JobTelemetry:
    cpu, rss = sampler.sample(job_pids(pid_ns, pgid))
    gpu = gpu_usage(sampler.last_pids, smi)
    return JobTelemetry(
        cpu=round(cpu, 4),
        memory_bytes=rss,
        timestamp=time.time(),
        gpu_duty_cycle=None if gpu is None else gpu[0],
        gpu_memory_bytes=None if gpu is None else gpu[1],
    )


async def _next_run(
    service: JobService, job_id: str, ws: web.WebSocketResponse
) -> RunningJob | None:
    """The job's current process, waited for while the job is pending or between
    two runs (a suspension, a restart's back-off); None once the job has ended
    for good or the client has gone. Every wait yields to the loop: a job that is
    ``running`` with no process is between runs, not a reason to spin."""
    queue = service.subscribe(job_id)
    try:
        while not ws.closed:
            status = service.get(job_id).status
            if status.is_finished:
                return None
            if status == JobStatus.RUNNING:
                with contextlib.suppress(JobNotRunning):
                    return service.running(job_id)[1]
            # The next status change, or a fresh look (the process may be set a
            # moment after its status, and a closed client must be noticed).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.get(), RECHECK)
        return None
    finally:
        service.unsubscribe(job_id, queue)


async def top_ws(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    try:
        job = service.get(request.match_info["id"])
    except JobNotFound as exc:
        return json_error(404, str(exc.args[0]))
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    reader = asyncio.create_task(drain(ws))
    reason = f"the job is {job.status.value}"
    try:
        while (running := await _next_run(service, job.id, ws)) is not None:
            smi = request.app[SETTINGS].nvidia.smi
            await _stream(ws, service, job.id, running, smi)
        reason = f"the job is {service.get(job.id).status.value}"
    finally:
        reader.cancel()
        with contextlib.suppress(Exception):
            await ws.close(message=reason.encode()[:120])
    return ws


async def _stream(
    ws: web.WebSocketResponse,
    service: JobService,
    job_id: str,
    running: RunningJob,
    smi: str | None,
) -> None:
    """Send a frame about every INTERVAL while this run of the job (``running``,
    its process) lasts."""

    def where() -> tuple[str | None, int | None]:
        if running.mode is SandboxMode.PLAIN:
            return None, running.pid
        running.sandbox_init  # noqa: B018 (reads bwrap's status once it is there)
        return running.pid_namespace, None

    sampler = TreeSampler()
    pid_ns, pgid = where()
    await asyncio.to_thread(lambda: sampler.sample(job_pids(pid_ns, pgid)))  # baseline
    delay = FIRST_AFTER
    while not ws.closed:
        await asyncio.sleep(delay)
        delay = INTERVAL
        try:
            _, current = service.running(job_id)
        except JobNotRunning:
            return  # ended, suspended, or between two runs
        if current is not running:
            return  # restarted: the caller samples the new run
        sample = await asyncio.to_thread(_telemetry, sampler, *where(), smi)
        try:
            await ws.send_str(json.dumps(_stream_wire.telemetry_to_api(sample)))
        except ConnectionError:
            return
