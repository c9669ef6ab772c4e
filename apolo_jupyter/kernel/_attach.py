"""Attach a cell to a job: a live view in a kernel, deterministic text in a terminal.

Attached cells wait for the job. Interrupting the kernel detaches (the job keeps
running and the view keeps updating) and says how to kill it; with
``--kill-on-interrupt`` it kills instead.

In a kernel the view is displayed with its text and HTML fallbacks, and when the
job has finished the output is replaced by the final status and log tail (see
``_bridge``): what a notebook saves is right however it was run.
"""

from __future__ import annotations

import queue
import sys
from typing import TYPE_CHECKING

from ..client import Client, JobDescription
from ..widgets import JobStatusView
from ..widgets._status_text import status_line
from ._bridge import Attachment
from ._follow import as_of
from ._frontend import use_widgets
from ._runtime import Runtime

if TYPE_CHECKING:
    from ._options import JobOptions

POLL = 0.2
# Views shown in this kernel, by job id (newest wins): lets code reach a view's
# state and Kill, e.g. in tests of headless runs; and their attachments, whose
# ``future`` is done once the job's final output has replaced the live one.
VIEWS: dict[str, JobStatusView] = {}
ATTACHMENTS: dict[str, Attachment] = {}


def _detached_note(job: JobDescription) -> str:
    """How to reach a detached job again, naming it once (by its name if it has
    one: shorter than its id)."""
    if job.name:
        return (
            f"Detached: {job.name} keeps running. Kill it with %apolo_kill "
            f"{job.name}; watch it again with %apolo_status {job.name}"
        )
    return (
        f"Detached: the job keeps running. Kill it with %apolo_kill {job.id}; "
        "watch it again with %apolo_status and the same id"
    )


def _interrupted(
    rt: Runtime, client: Client, att: Attachment, job: JobDescription, o: JobOptions
) -> None:
    if o.kill_on_interrupt:
        rt.run(client.jobs.kill(att.job_id), timeout=60)
        print(f"Interrupted: killed {att.job_id}")
        return
    message = _detached_note(att.last or job)
    if att.view is not None:
        att.set_note(message)  # the view says it while the job runs, then shows the end
        return
    att.stop()
    print(message)


def transition_lines(job: JobDescription, shown: int) -> list[str]:
    """A status line for each transition after the first ``shown`` ones."""
    count = len(job.history.transitions)
    return [status_line(as_of(job, n)) for n in range(shown + 1, count + 1)]


def follow(
    rt: Runtime, client: Client, job: JobDescription, o: JobOptions
) -> JobDescription:
    if use_widgets():
        return _follow_widget(rt, client, job, o)
    return _follow_text(rt, client, job, o)


def _follow_widget(
    rt: Runtime, client: Client, job: JobDescription, o: JobOptions
) -> JobDescription:
    holder: list[Attachment] = []
    view = JobStatusView(on_kill=lambda: holder[0].kill())
    VIEWS[job.id] = view
    att = Attachment(rt, client, job.id, view, job=job, display=True)
    ATTACHMENTS[job.id] = att
    holder.append(att)
    if o.detach and not job.status.is_finished:
        att.set_note(_detached_note(job))
        return job
    # Attached, or detached from a job that has already ended: wait here, so its
    # outcome replaces the output while the cell runs (headless runs record it).
    try:
        while True:
            try:
                return att.future.result(POLL)
            except TimeoutError:
                continue
    except KeyboardInterrupt:
        _interrupted(rt, client, att, job, o)
        if o.kill_on_interrupt:
            return att.future.result(60)
        return att.last or job


def _follow_text(
    rt: Runtime, client: Client, job: JobDescription, o: JobOptions
) -> JobDescription:
    if o.detach:
        print(status_line(job))
        if not job.status.is_finished:
            print(_detached_note(job))
        return job
    att = Attachment(rt, client, job.id, None)
    shown = 0
    try:
        while True:
            try:
                event = att.events.get(timeout=POLL)
            except queue.Empty:
                continue
            if event is None:
                break
            if event.job is not None:
                for line in transition_lines(event.job, shown):
                    print(line, flush=True)
                shown = max(shown, len(event.job.history.transitions))
            elif event.log is not None:
                sys.stdout.write(event.log)
                sys.stdout.flush()
    except KeyboardInterrupt:
        _interrupted(rt, client, att, job, o)
        if not o.kill_on_interrupt:
            return att.last or job
        final: JobDescription = rt.run(client.jobs.status(job.id), timeout=30)
        print(status_line(final))
        return final
    return att.future.result(30)
