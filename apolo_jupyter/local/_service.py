"""Job lifecycle on the local platform: create, run, kill, publish changes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from ..client._models import JobStatus
from ._command import split
from ._disks import DiskStore
from ._executor import Executor, JobSpec, Mount, PreflightError, RunningJob
from ._logs import index_log
from ._records import JobRecord, TransitionRefused
from ._requests import BadRequest, volume_parts
from ._scheduler import Demand, Room, plan
from ._secrets import SecretStore
from ._settings import Settings
from ._store import Store
from ._validate import MAX_LIFE_SPAN
from ._volume_fs import VolumeError, check_volume, open_volume

log = logging.getLogger(__name__)
# Secret copies and disk folders live in the platform's data directory, which no
# job sees; opened without following a symlink all the same.
_PLATFORM_FILE = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_PLATFORM_DIR = _PLATFORM_FILE | os.O_DIRECTORY


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
        self.api_url = ""  # set once the server is bound; used for pass_config
        self._token = token
        self._jobs: dict[str, JobRecord] = {}
        self._procs: dict[str, RunningJob] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping: dict[str, tuple[str, str]] = {}
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = defaultdict(set)
        self._queue: dict[str, JobRecord] = {}  # pending or suspended, not started
        self._holding: dict[str, JobRecord] = {}  # started: they hold their room
        self._gpus: dict[str, tuple[int, ...]] = {}  # the GPU slots each one holds
        self._life_timers: dict[str, asyncio.TimerHandle] = {}
        self._background: set[asyncio.Task[Any]] = set()
        home = settings.paths.home
        self.secrets = SecretStore(home / "secrets", settings.owner)
        self.disks = DiskStore(home / "disks", settings.owner)

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
        return self._settings.paths.jobs_dir / job_id / "log"

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
        self._check_volumes(job)
        self._check_secrets_and_disks(job)
        self._check_capacity(job)
        self._jobs[job.id] = job
        body = self._commit(job)
        self._queue[job.id] = job
        self._schedule()
        return body

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
        for job_id, why in decision.waiting.items():
            job, reason = self._queue[job_id], _wait_reason(why)
            said = job.statuses[-1]
            fresh = (said.reason, said.description) != (reason, why)  # holders change
            if job.status == JobStatus.PENDING and fresh:
                self._transition(job, JobStatus.PENDING, reason, why)
        for job_id in decision.start:
            job = self._queue.pop(job_id)
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

    def _check_volumes(self, job: JobRecord) -> None:
        storage = self._settings.paths.storage_dir
        for volume in job.container.get("volumes", ()):
            parts = volume_parts(volume["src_storage_uri"])
            try:
                check_volume(storage, parts, must_exist=volume["read_only"])
            except VolumeError as exc:
                raise BadRequest(str(exc)) from None
            except OSError as exc:
                raise BadRequest(
                    f"volume source {volume['src_storage_uri']} cannot be opened: "
                    f"{exc.strerror or exc}"
                ) from None

    def _check_secrets_and_disks(self, job: JobRecord) -> None:
        """Every secret and disk a job names exists (their values stay out of the
        record: it keeps the URIs only)."""
        container = job.container
        for uri in container.get("secret_env", {}).values():
            self.secrets.key_of(uri)
        for item in container.get("secret_volumes", ()):
            self.secrets.key_of(item["src_secret_uri"])
        for item in container.get("disk_volumes", ()):
            self.disks.id_of(item["src_disk_uri"])

    def _secret_mounts(
        self, job: JobRecord, env: dict[str, str], fds: contextlib.ExitStack
    ) -> list[Mount]:
        """``secret_env`` into ``env``; each secret file as a 0600 file of the job's
        own, bound read-only at its path; disks as their folders. Each mount is
        opened here (fds closed by ``fds``), in folders no job can write."""
        container = job.container
        for name, uri in container.get("secret_env", {}).items():
            value = self.secrets.get(self.secrets.key_of(uri)) or b""
            try:
                env[name] = value.decode()
            except UnicodeDecodeError:
                raise BadRequest(
                    f"secret {uri} is not UTF-8 text, so it cannot be the value of "
                    f"{name}: mount it as a file instead (-v secret:KEY:/path)"
                ) from None
        mounts = []
        folder = self.log_path(job.id).parent / "secrets"
        for index, item in enumerate(container.get("secret_volumes", ())):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = self.secrets.get(self.secrets.key_of(item["src_secret_uri"]))
            path = folder / str(index)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data or b"")
            finally:
                os.close(fd)
            secret_fd = os.open(path, _PLATFORM_FILE)
            fds.callback(os.close, secret_fd)
            mounts.append(Mount(path, item["dst_path"], True, secret_fd))
        for item in container.get("disk_volumes", ()):
            disk_id = self.disks.id_of(item["src_disk_uri"])
            self.disks.touch(disk_id)
            folder = self.disks.data_dir(disk_id)
            # Jobs write inside a disk, never to the folders leading to it.
            disk_fd = os.open(folder, _PLATFORM_DIR)
            fds.callback(os.close, disk_fd)
            mounts.append(Mount(folder, item["dst_path"], item["read_only"], disk_fd))
        return mounts

    def _drop_secret_files(self, job: JobRecord) -> None:
        shutil.rmtree(self.log_path(job.id).parent / "secrets", ignore_errors=True)

    @contextlib.contextmanager
    def _spec(self, job: JobRecord) -> Iterator[JobSpec]:
        """The job to run, with each volume's folder open (closed on exit)."""
        container = job.container
        argv = split(container.get("entrypoint") or "") + split(container["command"])
        env = dict(container.get("env") or {})
        gpus = self._gpus.get(job.id, ())
        env.update(self._settings.gpus.env(gpus))  # the platform's choice wins
        if job.pass_config:
            passed = base64.b64encode(
                json.dumps(
                    {
                        "token": self._token,
                        "cluster": job.cluster_name,
                        "url": self.api_url,
                        "org_name": job.org_name,
                        "project_name": job.project_name,
                    }
                ).encode()
            ).decode()
            env["APOLO_PASSED_CONFIG"] = env["NEURO_PASSED_CONFIG"] = passed
        storage = self._settings.paths.storage_dir
        with contextlib.ExitStack() as fds:
            mounts = []
            for volume in container.get("volumes", ()):
                parts = volume_parts(volume["src_storage_uri"])
                read_only = volume["read_only"]
                try:
                    fd = open_volume(storage, parts, create=not read_only)
                except VolumeError as exc:
                    raise PreflightError(str(exc)) from None
                fds.callback(os.close, fd)
                host = storage.joinpath(*parts)
                mounts.append(Mount(host, volume["dst_path"], read_only, fd))
            mounts += self._secret_mounts(job, env, fds)
            log_path = self.log_path(job.id)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            yield JobSpec(
                job.id,
                argv,
                env,
                container.get("working_dir"),
                mounts,
                log_path,
                tty=bool(container.get("tty")),
                devices=self._settings.gpus.nodes(gpus),
            )

    async def _run(self, job: JobRecord) -> None:
        try:
            await self._run_once(job)
        except Exception as exc:  # never leave a job unfinished on a bug
            log.exception("job %s crashed the runner", job.id)
            self._transition(job, JobStatus.FAILED, "PlatformError", str(exc))
        finally:
            self._drop_secret_files(job)
            self._tasks.pop(job.id, None)
            self._procs.pop(job.id, None)
            self._holding.pop(job.id, None)
            self._gpus.pop(job.id, None)
            timer = self._life_timers.pop(job.id, None)
            if timer is not None:
                timer.cancel()
            if job.status == JobStatus.SUSPENDED:
                self._queue[job.id] = job
            self._schedule()

    async def _run_once(self, job: JobRecord) -> None:
        try:
            with self._spec(job) as spec:
                proc = await self._executor.start(spec)
        except (PreflightError, BadRequest, OSError) as exc:
            self._transition(job, JobStatus.FAILED, "ContainerCannotRun", str(exc))
            return
        self._procs[job.id] = proc
        ended = asyncio.Event()
        indexer = asyncio.create_task(index_log(self.log_path(job.id), ended))
        if job.id in self._stopping:  # killed while the process was being started
            await proc.kill(self._settings.kill_grace)
        else:
            if job.status == JobStatus.SUSPENDED:
                job.restarts += 1
            self._transition(job, JobStatus.RUNNING)
            self._arm_life_span(job)
        try:
            code = await proc.wait()
        finally:
            ended.set()
            await indexer
        stop = self._stopping.pop(job.id, None)
        if stop is not None and stop[0] == "Preempted":
            self._transition(job, JobStatus.SUSPENDED, stop[0], stop[1])
        elif stop is not None:
            self._transition(job, JobStatus.CANCELLED, stop[0], stop[1], code)
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

    async def kill(
        self, id_or_name: str, reason: str = "UserRequested", description: str = ""
    ) -> JobRecord:
        job = self.get(id_or_name)
        if job.status.is_finished:
            return job
        job = self._jobs.get(job.id, job)
        if self._queue.pop(job.id, None) is not None:  # waiting: no process to stop
            self._transition(job, JobStatus.CANCELLED, reason, description)
            self._schedule()
            return job
        task = self._tasks.get(job.id)
        # A user's kill wins over a preemption in progress.
        self._stopping[job.id] = (reason, description)
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
