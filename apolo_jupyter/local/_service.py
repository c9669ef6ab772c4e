"""Job lifecycle on the local platform: create, run, kill, publish changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from ..client._models import JobStatus
from ._executor import Executor, PreflightError, RunningJob
from ._job_spec import JobSpecs, log_path
from ._logs import index_log
from ._records import JobRecord, TransitionRefused
from ._requests import BadRequest
from ._restart import (
    RESTARTING,
    SCHEDULE_TIMEOUT,
    Backoff,
    restart_description,
    restarts_after,
    timeout_description,
)
from ._scheduler import Demand, Room, plan
from ._settings import Settings
from ._store import Store
from ._validate import MAX_LIFE_SPAN

log = logging.getLogger(__name__)


class JobNotFound(LookupError):
    pass


class JobNotRunning(JobNotFound):
    """The job exists but has no process now (pending, suspended, finished)."""


def _wait_reason(why: str) -> str:
    if why.startswith("preempting"):
        return "Preempting"
    if why.startswith("waiting for earlier"):
        return "WaitingInQueue"
    return "WaitingForCapacity"


def _demand(job: JobRecord, gpus: tuple[int, ...] = ()) -> Demand:
    resources = job.container["resources"]
    return Demand(
        id=job.id,
        cpu=float(resources["cpu"]),
        memory=int(resources["memory"]),
        preemptible=job.preemptible_node,
        created=job.created_at,
        priority={"low": -1, "high": 1}.get(job.priority, 0),
        nvidia_gpu=int(resources.get("nvidia_gpu") or 0),
        gpu_model=resources.get("nvidia_gpu_model"),
        gpus=gpus,
        name=job.name,
    )


class JobService:
    def __init__(
        self, settings: Settings, store: Store, executor: Executor, token: str
    ) -> None:
        self._settings = settings
        self._store = store
        self._executor = executor
        self._specs = JobSpecs(settings, token)
        self._jobs: dict[str, JobRecord] = {}
        self._procs: dict[str, RunningJob] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping: dict[str, tuple[str, str]] = {}
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = defaultdict(set)
        self._queue: dict[str, JobRecord] = {}  # pending or suspended, not started
        self._holding: dict[str, JobRecord] = {}  # started: they hold their room
        self._gpus: dict[str, tuple[int, ...]] = {}  # the GPU slots each one holds
        self._life_timers: dict[str, asyncio.TimerHandle] = {}
        self._schedule_timers: dict[str, asyncio.TimerHandle] = {}
        self._backing_off: dict[str, asyncio.Event] = {}  # set: stop waiting
        self._background: set[asyncio.Task[Any]] = set()
        self.secrets = self._specs.secrets
        self.disks = self._specs.disks
        self._backoff = Backoff(settings.restart_backoff, settings.restart_backoff_max)

    @property
    def api_url(self) -> str:
        """Set once the server is bound; jobs get it with ``pass_config``."""
        return self._specs.api_url

    @api_url.setter
    def api_url(self, url: str) -> None:
        self._specs.api_url = url

    # -- queries ------------------------------------------------------------------

    def get(self, id_or_name: str) -> JobRecord:
        job = self._jobs.get(id_or_name) or self._store.get(id_or_name)
        if job is None:
            raise JobNotFound(
                f"job {id_or_name!r} not found: list jobs with `apolo-jupyter ps -a` "
                "or client.jobs.list()"
            )
        return job

    def log_path(self, job_id: str) -> Path:
        return log_path(self._settings, job_id)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def active_count(self) -> int:
        return len(self._tasks)

    def running(self, id_or_name: str) -> tuple[JobRecord, RunningJob]:
        """The job and its process, for exec, attach, top and signals;
        JobNotRunning (JobNotFound) if it is not running now."""
        job = self.get(id_or_name)
        proc = self._procs.get(job.id)
        if job.status == JobStatus.RUNNING and proc is None:
            raise JobNotRunning(
                f"job {job.id} is restarting: its command exited and runs again "
                "after a back-off (its status reason says when); retry then"
            )
        if job.status != JobStatus.RUNNING or proc is None:
            raise JobNotRunning(
                f"job {job.id} is {job.status.value}, not running: this needs a "
                "running job (see its status with `apolo-jupyter status JOB` or "
                "client.jobs.status)"
            )
        return job, proc

    def _held(self) -> list[Demand]:
        return [_demand(j, self._gpus.get(i, ())) for i, j in self._holding.items()]

    def free_capacity(self) -> Room:
        """CPU, memory and GPUs not held by started jobs."""
        held = self._held()
        cap = self._settings.capacity
        return Room(
            cap.cpu - sum(d.cpu for d in held),
            cap.memory - sum(d.memory for d in held),
            frozenset(range(len(cap.gpus))) - {s for d in held for s in d.gpus},
        )

    async def send_signal(self, id_or_name: str) -> None:
        """SIGKILL the job's processes at once, as the real platform's runtime
        stops a container; the job then fails with exit code 137."""
        _, proc = self.running(id_or_name)
        await proc.kill_now()

    def set_life_span(self, job_id: str, minutes: int, *, additional: bool) -> None:
        """Record a new life span (enforced by the scheduler). A refused change
        leaves the job as it was."""
        job = self._jobs.get(job_id) or self.get(job_id)
        if job.status.is_finished:
            raise BadRequest(f"job {job_id} has finished; its life span cannot change")
        base = (job.max_run_time_minutes or 0) if additional else 0
        if base + minutes > MAX_LIFE_SPAN:
            raise BadRequest(
                f"the life span would be {base + minutes} minutes; the limit is "
                f"{MAX_LIFE_SPAN}"
            )
        job.max_run_time_minutes = base + minutes
        self._commit(job)
        if job.status == JobStatus.RUNNING:
            self._arm_life_span(job)

    # -- changes ------------------------------------------------------------------

    def subscribe(self, job_id: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._subscribers[job_id].add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[str]) -> None:
        subs = self._subscribers.get(job_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[job_id]

    def _commit(self, job: JobRecord) -> str:
        body = self._store.save(job)
        for queue in self._subscribers.get(job.id, ()):
            queue.put_nowait(body)
        if job.status.is_finished:
            self._jobs.pop(job.id, None)
        return body

    def _transition(
        self,
        job: JobRecord,
        status: JobStatus,
        reason: str = "",
        description: str = "",
        exit_code: int | None = None,
    ) -> None:
        try:
            job.transition(status, reason, description, exit_code)
        except TransitionRefused:
            return
        self._commit(job)

    # -- lifecycle -----------------------------------------------------------------

    def recover(self) -> int:
        """After a restart: jobs whose process is gone end as failed, with the reason."""
        lost = self._store.unfinished()
        for job in lost:
            job.transition(
                JobStatus.FAILED,
                "PlatformRestarted",
                "the local platform restarted and could not re-adopt the job's "
                "process; its log up to then is kept",
            )
            self._store.save(job)
        return len(lost)

    def create(self, job: JobRecord) -> str:
        self._specs.check_volumes(job)
        self._specs.check_secrets_and_disks(job)
        self._check_capacity(job)
        self._jobs[job.id] = job
        body = self._commit(job)
        self._queue[job.id] = job
        self._schedule()
        if job.id in self._queue and job.schedule_timeout:
            created = datetime.fromisoformat(job.created_at).timestamp()
            self._schedule_timers[job.id] = asyncio.get_running_loop().call_later(
                max(0.0, created + job.schedule_timeout - time.time()),
                self._schedule_timed_out,
                job.id,
            )
        return body

    def _schedule_timed_out(self, job_id: str) -> None:
        """A job that has not started within its ``schedule_timeout`` fails, as
        the real platform fails a pod it could not schedule in time."""
        self._schedule_timers.pop(job_id, None)
        job = self._queue.get(job_id)
        if job is None or job.status != JobStatus.PENDING:
            return
        del self._queue[job_id]
        waited_for = job.statuses[-1].description
        self._transition(
            job,
            JobStatus.FAILED,
            SCHEDULE_TIMEOUT,
            timeout_description(job.schedule_timeout or 0, waited_for),
        )
        self._schedule()  # jobs queued behind it may fit now

    def _wake(self, job_id: str) -> None:
        """Stop a job's restart back-off, to see that it is being stopped."""
        wake = self._backing_off.get(job_id)
        if wake is not None:
            wake.set()

    def _check_capacity(self, job: JobRecord) -> None:
        need, cap = _demand(job), self._settings.capacity
        if need.cpu > cap.cpu or need.memory > cap.memory:
            raise BadRequest(
                f"the job asks for {need.cpu:g} CPU and {need.memory / 2**30:.1f} GiB, "
                f"more than the local platform has ({cap.cpu:g} CPU, "
                f"{cap.memory / 2**30:.1f} GiB): choose a smaller preset, or raise "
                "capacity in config.json in the platform's data directory"
            )
        refusal = self._settings.gpus.refusal(need.nvidia_gpu, need.gpu_model)
        if refusal:
            raise BadRequest(refusal)

    def _schedule(self) -> None:
        """Start what fits, preempt what must yield, say why the rest waits."""
        decision = plan(
            [_demand(j) for j in self._queue.values()],
            self._held(),
            set(self._stopping),
            self._settings.capacity,
        )
        for victim, winner in decision.preempt:
            self._stopping[victim] = (
                "Preempted",
                f"preempted to make room for {winner}; it restarts from scratch when "
                "room frees up (its storage volumes keep what it saved)",
            )
            proc = self._procs.get(victim)
            if proc is not None:
                self._spawn(proc.kill(self._settings.kill_grace))
            self._wake(victim)
        for job_id, why in decision.waiting.items():
            job, reason = self._queue[job_id], _wait_reason(why)
            said = job.statuses[-1]
            fresh = (said.reason, said.description) != (reason, why)  # holders change
            if job.status == JobStatus.PENDING and fresh:
                self._transition(job, JobStatus.PENDING, reason, why)
        for job_id in decision.start:
            job = self._queue.pop(job_id)
            timer = self._schedule_timers.pop(job_id, None)
            if timer is not None:
                timer.cancel()
            self._holding[job_id] = job
            self._gpus[job_id] = decision.gpus.get(job_id, ())
            self._tasks[job_id] = asyncio.create_task(
                self._run(job), name=f"job {job_id}"
            )

    def _arm_life_span(self, job: JobRecord) -> None:
        timer = self._life_timers.pop(job.id, None)
        if timer is not None:
            timer.cancel()
        started = job.first_started
        if job.max_run_time_minutes is None or started is None:
            return
        limit = job.max_run_time_minutes * self._settings.minute
        left = started + limit - time.time()
        loop = asyncio.get_running_loop()
        description = (
            f"the job used up its life span ({job.max_run_time_minutes} min); extend "
            "it with client.jobs.bump_life_span or --life-span"
        )
        self._life_timers[job.id] = loop.call_later(
            max(0.0, left),
            lambda: self._spawn(self.kill(job.id, "LifeSpanEnded", description)),
        )

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run in the background, keeping a reference until it is done."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run(self, job: JobRecord) -> None:
        try:
            in_a_row = 0  # restarts since the last long run
            while (outcome := await self._run_once(job)) is not None:
                ran, exit_code = outcome
                in_a_row = 1 if ran >= self._backoff.reset_after else in_a_row + 1
                if not await self._restart(job, exit_code, in_a_row):
                    break
        except Exception as exc:  # never leave a job unfinished on a bug
            log.exception("job %s crashed the runner", job.id)
            self._transition(job, JobStatus.FAILED, "PlatformError", str(exc))
        finally:
            self._specs.drop_secret_files(job)
            self._tasks.pop(job.id, None)
            self._procs.pop(job.id, None)
            self._backing_off.pop(job.id, None)
            self._holding.pop(job.id, None)
            self._gpus.pop(job.id, None)
            timer = self._life_timers.pop(job.id, None)
            if timer is not None:
                timer.cancel()
            if job.status == JobStatus.SUSPENDED:
                self._queue[job.id] = job
            self._schedule()

    async def _restart(self, job: JobRecord, exit_code: int, in_a_row: int) -> bool:
        """Wait out the back-off as ``running``/``Restarting`` (the job keeps its
        room, as a pod keeps its node); False if it was stopped meanwhile."""
        delay = self._backoff.delay(in_a_row)
        job.restarts += 1
        self._transition(
            job,
            JobStatus.RUNNING,
            RESTARTING,
            restart_description(
                job.id, job.restart_policy, exit_code, delay, job.restarts
            ),
        )
        wake = self._backing_off[job.id] = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)
        del self._backing_off[job.id]
        stop = self._stopping.pop(job.id, None)
        if stop is None:
            return True
        if stop[0] == "Preempted":
            self._transition(job, JobStatus.SUSPENDED, *stop)
        else:
            self._transition(job, JobStatus.CANCELLED, *stop)
        return False

    async def _run_once(self, job: JobRecord) -> tuple[float, int] | None:
        """Run the command once; for a restart, how long it ran and its exit code,
        else None (the job has its next status)."""
        try:
            with self._specs.spec(job, self._gpus.get(job.id, ())) as spec:
                proc = await self._executor.start(spec)
        except (PreflightError, BadRequest, OSError) as exc:
            self._transition(job, JobStatus.FAILED, "ContainerCannotRun", str(exc))
            return None
        self._procs[job.id] = proc
        began = time.monotonic()
        ended = asyncio.Event()
        indexer = asyncio.create_task(index_log(self.log_path(job.id), ended))
        if job.id in self._stopping:  # killed while the process was being started
            await proc.kill(self._settings.kill_grace)
        else:
            self._transition(job, JobStatus.RUNNING)
            self._arm_life_span(job)
        try:
            code = await proc.wait()
        finally:
            ended.set()
            await indexer
            self._procs.pop(job.id, None)
        stop = self._stopping.pop(job.id, None)
        if stop is not None and stop[0] == "Preempted":
            # Counted now, as the platform counts a suspended item a restart.
            job.restarts += 1
            self._transition(job, JobStatus.SUSPENDED, stop[0], stop[1])
        elif stop is not None:
            self._transition(job, JobStatus.CANCELLED, stop[0], stop[1], code)
        elif restarts_after(job.restart_policy, code):
            return time.monotonic() - began, code
        elif code == 0:
            self._transition(job, JobStatus.SUCCEEDED, exit_code=0)
        else:
            self._transition(
                job,
                JobStatus.FAILED,
                "Error",
                f"the command exited with code {code}",
                code,
            )
        return None

    async def kill(
        self, id_or_name: str, reason: str = "UserRequested", description: str = ""
    ) -> JobRecord:
        job = self.get(id_or_name)
        if job.status.is_finished:
            return job
        job = self._jobs.get(job.id, job)
        if self._queue.pop(job.id, None) is not None:  # waiting: no process to stop
            timer = self._schedule_timers.pop(job.id, None)
            if timer is not None:
                timer.cancel()
            self._transition(job, JobStatus.CANCELLED, reason, description)
            self._schedule()
            return job
        task = self._tasks.get(job.id)
        # A user's kill wins over a preemption in progress.
        self._stopping[job.id] = (reason, description)
        self._wake(job.id)
        proc = self._procs.get(job.id)
        if proc is not None:
            await proc.kill(self._settings.kill_grace)
        if task is not None:
            await asyncio.shield(task)
        if not job.status.is_finished:  # never started a process
            self._stopping.pop(job.id, None)
            self._transition(job, JobStatus.CANCELLED, reason, description)
        return job

    async def shutdown(self) -> None:
        ids = list(self._tasks) + list(self._queue)
        await asyncio.gather(
            *(
                self.kill(i, "PlatformStopped", "the local platform was stopped")
                for i in ids
            ),
            return_exceptions=True,
        )
