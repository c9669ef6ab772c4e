"""The state behind a job's status view: a ``StatusFeed`` accumulates what the
bridge learns (status snapshots, output, resource samples, notes, kill requests)
and hands out frozen
``StatusSnapshot`` values, which views render and saved outputs are made of.
Nothing here touches a widget or does I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..client import JobDescription, JobStatus
from ..client._stream_models import JobTelemetry
from ._log_pane import LogBuffer, LogTail, Progress
from ._status_text import exit_code
from ._usage import NO_USAGE, Usage, UsageLog


@dataclass(frozen=True)
class StatusSnapshot:
    """Everything a view of one job shows, as of ``now`` (the kernel's clock)."""

    job: JobDescription | None
    tail: LogTail
    bars: tuple[Progress, ...]
    hint: str  # how to get all output, e.g. "%apolo_logs job-…"
    now: datetime
    note: str = ""  # e.g. how to kill a detached job
    error: str = ""  # e.g. why a kill did not go through
    killing: bool = False
    can_kill: bool = False  # a Kill control is offered (the job still runs)
    kill_path: str = ""  # the Jupyter server route that kills it, below base_url
    usage: Usage = NO_USAGE  # resource samples taken while the view followed it

    @property
    def status(self) -> JobStatus | None:
        return self.job.status if self.job is not None else None

    @property
    def finished(self) -> bool:
        return self.job is not None and self.job.status.is_finished

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.status.is_running

    @property
    def exit_code(self) -> int | None:
        return exit_code(self.job) if self.job is not None else None


EMPTY_TAIL = LogTail(first=0, lines=(), total=0)


def empty_snapshot(hint: str = "") -> StatusSnapshot:
    return StatusSnapshot(None, EMPTY_TAIL, (), hint, datetime.now(UTC))


class StatusFeed:
    """What is known about one job so far; ``snapshot()`` freezes it."""

    def __init__(
        self,
        *,
        max_lines: int = 200,
        hint: str = "",
        can_kill: bool = False,
        kill_path: str = "",
    ) -> None:
        self.log = LogBuffer(max_lines)
        self.usage = UsageLog()
        self.hint = hint
        self.job: JobDescription | None = None
        self.note = ""
        self.error = ""
        self.killing = False
        self.can_kill = can_kill
        self.kill_path = kill_path

    def update(self, job: JobDescription) -> bool:
        """Take a status snapshot; False (ignored) when it is older than the one
        held (fewer transitions) or would undo a final status."""
        held = self.job
        if held is not None and held.id == job.id:
            if len(job.history.transitions) < len(held.history.transitions):
                return False
            if held.status.is_finished and not job.status.is_finished:
                return False
        elif held is not None:  # another job: start afresh
            self.killing = False
        self.job = job
        if job.status.is_finished:
            self.killing = False
        return True

    def feed(self, text: str) -> None:
        self.log.feed(text)

    def sample(self, sample: JobTelemetry) -> None:
        """Take a resource sample (``client.jobs.top``)."""
        self.usage.add(sample)

    def kill_requested(self) -> None:
        self.killing, self.error = True, ""

    def kill_failed(self, message: str) -> None:
        self.killing, self.error = False, message

    def snapshot(self, now: datetime | None = None) -> StatusSnapshot:
        finished = self.job is not None and self.job.status.is_finished
        return StatusSnapshot(
            job=self.job,
            tail=self.log.tail(),
            bars=self.log.bars(),
            hint=self.hint,
            now=now or datetime.now(UTC),
            note="" if finished else self.note,
            error=self.error,
            killing=self.killing and not finished,
            can_kill=self.can_kill and not finished,
            kill_path="" if finished else self.kill_path,
            usage=self.usage.freeze(),
        )
