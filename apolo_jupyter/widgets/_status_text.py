"""What a job's status says, in words: shared by the live view, its saved HTML
and text, and the text mode of terminals (``status_line``). No widgets here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..client import JobDescription, JobStatus

# Glyphs for the status badge: each state has its own, not only a colour.
GLYPH = {
    "created": "○",
    "pending": "◔",
    "suspended": "⏸",
    "running": "▶",
    "succeeded": "✓",
    "failed": "✗",
    "cancelled": "■",
    "unknown": "?",
}


def one_line(text: str) -> str:
    return " ".join(text.split())


def exit_code(job: JobDescription) -> int | None:
    if job.history.exit_code is not None:
        return job.history.exit_code
    transitions = job.history.transitions
    return transitions[-1].exit_code if transitions else None


def reason_text(job: JobDescription) -> str:
    """The platform's reason and description on one line, e.g. ``Error: …``."""
    reason = one_line(job.history.reason)
    description = one_line(job.history.description)
    if reason and description and description != reason:
        return f"{reason}: {description}"
    return reason or description


def status_line(job: JobDescription) -> str:
    """One deterministic line per status, for terminals and text outputs, e.g.
    ``job-1  failed  Error: the command exited with code 3``: each fact once,
    as the view says it (``outcome_line``), then the restarts if any."""
    tail = outcome_line(job)
    if job.history.restarts:
        tail = f"{tail} (restarts: {job.history.restarts})".lstrip()
    return f"{job.id}  {job.status.value}  {tail}".rstrip()


def outcome_line(job: JobDescription) -> str:
    """The reason line a view shows, saying the exit code once: not when the
    platform's own words already give it, not for a success (0 is implied)."""
    reason = reason_text(job)
    code = exit_code(job)
    if code is None or job.status == JobStatus.SUCCEEDED or f"code {code}" in reason:
        return reason
    return f"{reason} (exit code {code})" if reason else f"exit code {code}"


def aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def age(seconds: float) -> str:
    """``45s``, ``12m``, ``3h``, ``2d``: how a jobs table says a job's age."""
    whole = max(int(seconds), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def epoch_ms(when: datetime | None) -> float | None:
    return None if when is None else aware(when).timestamp() * 1000


@dataclass(frozen=True)
class Clock:
    """What the clock beside the status says, and how a browser keeps it ticking:
    ``kind`` is ``elapsed``/``waiting`` (counting up from ``since_ms``) or
    ``fixed``; ``life_ms`` is when the life span ends (running jobs only)."""

    kind: str
    since_ms: float | None
    life_ms: float | None
    text: str


def clock(job: JobDescription, now: datetime) -> Clock:
    history = job.history
    if job.status.is_finished:
        start, end = history.started_at, history.finished_at
        if start is None or end is None:
            return Clock("fixed", None, None, "")
        return Clock("fixed", None, None, f"ran {duration(aware(end) - aware(start))}")
    try:
        changed = aware(history.changed_at)
    except ValueError:  # a history with no timestamps at all
        return Clock("fixed", None, None, "")
    if job.status.is_running:
        start = aware(history.started_at or changed)
        elapsed = now - start
        text = f"elapsed {duration(elapsed)}"
        life_ms = None
        if job.life_span is not None:
            end = start + timedelta(seconds=job.life_span)
            life_ms = epoch_ms(end)
            text += f" · life span left {duration(end - now)}"
        return Clock("elapsed", epoch_ms(start), life_ms, text)
    return Clock(
        "waiting", epoch_ms(changed), None, f"waiting {duration(now - changed)}"
    )


STEPS = ("created", "pending", "running")


def steps(job: JobDescription | None) -> list[tuple[str, str]]:
    """The lifecycle as labelled steps: (label, state) with state ``done``,
    ``current`` or ``todo``; the last step is the outcome once there is one."""
    status = job.status if job is not None else None
    if status is None:
        return [
            ("created", "current"),
            ("pending", "todo"),
            ("running", "todo"),
            ("finished", "todo"),
        ]
    ran = any(t.status.is_running for t in job.history.transitions) if job else False
    if status.is_finished:
        done = ["created", "pending", *(["running"] if ran else [])]
        return [*((s, "done") for s in done), (status.value, "current")]
    if status == JobStatus.SUSPENDED:
        return [
            ("created", "done"),
            ("pending", "done"),
            ("running", "done"),
            ("suspended", "current"),
            ("finished", "todo"),
        ]
    current = 2 if status.is_running else 1
    return [
        *(
            (s, "done" if i < current else "current" if i == current else "todo")
            for i, s in enumerate(STEPS)
        ),
        ("finished", "todo"),
    ]
