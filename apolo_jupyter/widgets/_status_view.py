"""``JobStatusView``: a job's live status, elapsed time, output and a Kill button.

A thin view with no I/O and no threads: one bridge feeds it frozen ``JobDescription``
snapshots (``update``), clock ticks (``tick``) and output chunks (``append_log``),
all from one thread. The Kill button reports through the ``on_kill`` callback.
``status_line`` is the same information as one line of text, for terminals and
headless runs.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import ipywidgets as w

from ..client import JobDescription, JobStatus
from ._log_pane import LogBuffer, Progress

# status -> (step on the bar: created 0, pending 1, running 2, finished 3; bar style)
_LOOK = {
    JobStatus.PENDING: (1, "info"),
    JobStatus.SUSPENDED: (1, "info"),
    JobStatus.RUNNING: (2, ""),
    JobStatus.SUCCEEDED: (3, "success"),
    JobStatus.FAILED: (3, "danger"),
    JobStatus.CANCELLED: (3, "warning"),
}
_HIDDEN, _SHOWN = "none", ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _details(job: JobDescription, *, restarts: bool = True) -> tuple[str, str]:
    """The platform's reason and description, and the "(exit code …)" suffix."""
    reason = _one_line(job.history.reason)
    description = _one_line(job.history.description)
    if reason and description and description != reason:
        detail = f"{reason}: {description}"
    else:
        detail = reason or description
    extras = []
    exit_code = _exit_code(job)
    if exit_code is not None:
        extras.append(f"exit code {exit_code}")
    if restarts and job.history.restarts:
        extras.append(f"restarts: {job.history.restarts}")
    return detail, f"({', '.join(extras)})" if extras else ""


def _exit_code(job: JobDescription) -> int | None:
    if job.history.exit_code is not None:
        return job.history.exit_code
    transitions = job.history.transitions
    return transitions[-1].exit_code if transitions else None


def status_line(job: JobDescription) -> str:
    """One deterministic line per status, e.g. ``job-1  failed  Error: … (exit code 3)``."""
    detail, extras = _details(job)
    tail = " ".join(part for part in (detail, extras) if part)
    return f"{job.id}  {job.status.value}  {tail}".rstrip()


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _changed_at(job: JobDescription) -> datetime | None:
    try:
        return _aware(job.history.changed_at)
    except ValueError:  # a history with no timestamps at all
        return None


def _since(start: datetime | None, end: datetime) -> timedelta | None:
    return None if start is None else _aware(end) - _aware(start)


class JobStatusView(w.VBox):
    """The live status of one job, fed by snapshots; see the module docstring."""

    def __init__(
        self,
        *,
        on_kill: Callable[[], None] | None = None,
        max_log_lines: int = 200,
        logs_hint: str = "",
    ) -> None:
        self._on_kill = on_kill
        self._logs_hint = logs_hint
        self._log = LogBuffer(max_log_lines)
        self._job: JobDescription | None = None
        self._now: datetime | None = None
        self._killing = False
        self._info = w.HTML()
        self._bar = w.IntProgress(value=0, min=0, max=3, bar_style="info")
        self._label = w.HTML("<i>waiting for the job…</i>")
        self._clock = w.Label()
        self._kill = w.Button(
            description="Kill",
            button_style="danger",
            icon="stop",
            tooltip="kill the job",
            layout=w.Layout(display=_SHOWN if on_kill else _HIDDEN, width="auto"),
        )
        self._kill.on_click(lambda _: self._on_kill_click())
        self._note = w.HTML()
        self._error = w.HTML()
        self._job_progress = w.FloatProgress(
            value=0.0, min=0.0, max=100.0, style={"description_width": "initial"}
        )
        self._job_detail = w.Label()
        self._progress_row = w.HBox(
            [self._job_progress, self._job_detail], layout=w.Layout(display=_HIDDEN)
        )
        # column-reverse keeps a scrolled log pane scrolled to its newest line
        self._output = w.Output(
            layout=w.Layout(
                max_height="24em",
                overflow="auto",
                display="flex",
                flex_flow="column-reverse",
            )
        )
        super().__init__(
            children=[
                self._info,
                w.HBox([self._bar, self._label, self._clock, self._kill]),
                self._note,
                self._error,
                self._progress_row,
                self._output,
            ]
        )

    # -- read-only state ------------------------------------------------------------

    @property
    def status(self) -> JobStatus | None:
        return self._job.status if self._job else None

    @property
    def exit_code(self) -> int | None:
        return _exit_code(self._job) if self._job else None

    @property
    def bar(self) -> w.IntProgress:
        return self._bar

    @property
    def job_progress(self) -> w.FloatProgress:
        return self._job_progress

    @property
    def log_text(self) -> str:
        """The text in the log pane, including the "N earlier lines" note."""
        outputs = self._output.outputs
        return str(outputs[0]["text"]) if outputs else ""

    @property
    def dropped_lines(self) -> int:
        return self._log.dropped

    def __repr__(self) -> str:  # the text/plain fallback (terminal, nbval)
        job = self._job
        if job is None:
            return "JobStatusView(no job yet)"
        exit_code = self.exit_code
        suffix = f", exit code {exit_code}" if exit_code is not None else ""
        return f"JobStatusView({job.id}: {job.status.value}{suffix})"

    # -- inputs (one thread: the bridge) ----------------------------------------------

    def update(self, job: JobDescription) -> None:
        """Show a snapshot; older (fewer transitions) or post-final ones are ignored."""
        shown = self._job
        if shown is not None and shown.id == job.id:
            if len(job.history.transitions) < len(shown.history.transitions):
                return
            if shown.status.is_finished and not job.status.is_finished:
                return
        elif shown is not None:  # another job: start afresh
            self._killing = False
        self._job = job
        self._render_job(job)

    def tick(self, now: datetime) -> None:
        """Refresh the elapsed time and the life-span countdown."""
        self._now = _aware(now)
        if self._job is not None:
            self._clock.value = self._clock_text(self._job)

    def append_log(self, text: str) -> None:
        """Append a chunk of the job's output (any split, ``\\r`` rewrites allowed)."""
        progress = self._log.feed(text)
        if progress is not None:
            self._show_progress(progress)
        shown = self._log.text(self._logs_hint)
        self._output.outputs = (
            ({"output_type": "stream", "name": "stdout", "text": shown},)
            if shown
            else ()
        )

    def set_note(self, text: str) -> None:
        """An info line under the status, e.g. how to kill a detached job."""
        self._note.value = f"<span>{html.escape(text)}</span>" if text else ""

    def kill_requested(self) -> None:
        """A kill is on its way (the button or ``%apolo_kill``): show "killing…"."""
        self._killing = True
        self._error.value = ""
        self._render_kill()

    def kill_failed(self, message: str) -> None:
        """The kill did not go through: say why and let the user try again."""
        self._killing = False
        self._error.value = (
            f'<span style="color:#b00020" role="alert">{html.escape(message)}</span>'
        )
        self._render_kill()

    # -- rendering --------------------------------------------------------------------

    def _on_kill_click(self) -> None:
        if self._on_kill is None or self._killing or self._finished():
            return
        self.kill_requested()
        try:
            self._on_kill()
        except Exception as exc:  # shown inline, never raised into the kernel
            self.kill_failed(f"could not kill the job: {exc}")

    def _finished(self) -> bool:
        return self._job is not None and self._job.status.is_finished

    def _render_kill(self) -> None:
        killing = self._killing and not self._finished()
        self._kill.description = "killing…" if killing else "Kill"
        self._kill.disabled = killing or self._finished()

    def _render_job(self, job: JobDescription) -> None:
        status = job.status
        self._bar.value, self._bar.bar_style = _LOOK.get(status, (0, ""))
        suspended = status is JobStatus.SUSPENDED
        detail, extras = _details(job, restarts=not suspended)
        title = status.value
        if suspended:
            title = f"suspended (preempted), restarts: {job.history.restarts}"
        parts = [f"<b>{html.escape(title)}</b>"]
        parts += [html.escape(part) for part in (detail, extras) if part]
        self._label.value = " · ".join(parts)
        self._info.value = self._info_html(job)
        self._clock.value = self._clock_text(job)
        self._render_kill()

    @staticmethod
    def _info_html(job: JobDescription) -> str:
        parts = [f"<code>{html.escape(job.id)}</code>"]
        if job.name:
            parts[0] += f" {html.escape(job.name)}"
        if job.preset_name:
            parts.append(f"preset {html.escape(job.preset_name)}")
        parts.append(f"image <code>{html.escape(str(job.container.image))}</code>")
        if job.price_credits_per_hour:
            parts.append(f"{job.price_credits_per_hour} credits/h")
        if job.preemptible_node:
            parts.append("preemptible")
        return " · ".join(parts)

    def _clock_text(self, job: JobDescription) -> str:
        history = job.history
        if job.status.is_finished:
            end = history.finished_at
            run = _since(history.started_at, end) if end is not None else None
            return f"run time {_duration(run)}" if run is not None else ""
        changed_at = _changed_at(job)
        now = self._now or changed_at
        if now is None:
            return ""
        if job.status.is_running:
            elapsed = _since(history.started_at or changed_at, now)
            text = f"elapsed {_duration(elapsed or timedelta())}"
            if job.life_span is not None and elapsed is not None:
                left = timedelta(seconds=job.life_span) - elapsed
                text += f" · life span left {_duration(left)}"
            return text
        waited = _since(changed_at, now)
        return f"waiting {_duration(waited)}" if waited is not None else ""

    def _show_progress(self, progress: Progress) -> None:
        self._job_progress.value = progress.percent
        self._job_progress.description = progress.description
        self._job_progress.bar_style = "success" if progress.percent >= 100 else ""
        self._job_detail.value = progress.detail
        self._progress_row.layout.display = _SHOWN
