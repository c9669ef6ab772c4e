"""JobStatusView, its feed and its saved forms, fed hand-built snapshots as the
bridge would; and the log buffer behind it (bounded, terminal-like, tqdm)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from yarl import URL

from apolo_jupyter import (
    Container,
    JobDescription,
    JobStatus,
    JobStatusHistory,
    RemoteImage,
    Resources,
)
from apolo_jupyter.client import JobStatusItem
from apolo_jupyter.widgets import JobStatusView
from apolo_jupyter.widgets._log_pane import LogBuffer, parse_progress
from apolo_jupyter.widgets._static import WIDGET_MIME
from apolo_jupyter.widgets._status_model import StatusFeed, StatusSnapshot
from apolo_jupyter.widgets._status_text import status_line

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
JOB = "job-0123"


def snapshot(
    *steps: tuple[JobStatus, str, str],
    exit_code: int | None = None,
    restarts: int = 0,
    life_span: float | None = None,
    job_id: str = JOB,
) -> JobDescription:
    """A job that went through ``steps`` (status, reason, description), 10 s apart."""
    transitions = [
        JobStatusItem(status, T0 + timedelta(seconds=10 * i), reason, description)
        for i, (status, reason, description) in enumerate(steps)
    ]
    last = transitions[-1]
    started = [t.transition_time for t in transitions if t.status.is_running]
    finished = last.transition_time if last.status.is_finished else None
    history = JobStatusHistory(
        status=last.status,
        reason=last.reason,
        description=last.description,
        restarts=restarts,
        created_at=T0,
        started_at=started[0] if started else None,
        finished_at=finished,
        exit_code=exit_code,
        transitions=transitions,
    )
    return JobDescription(
        id=job_id,
        owner="alice",
        cluster_name="local",
        org_name=None,
        project_name="default",
        namespace="",
        status=last.status,
        history=history,
        container=Container(
            image=RemoteImage.new_external_image("python", tag="3.12"),
            resources=Resources(memory_mb=100, cpu=0.5),
            command="python train.py",
        ),
        scheduler_enabled=False,
        pass_config=False,
        uri=URL(f"job://local/alice/{job_id}"),
        total_price_credits=Decimal("0"),
        price_credits_per_hour=Decimal("0.5"),
        name="train",
        preset_name="cpu-small",
        life_span=life_span,
    )


PENDING = (JobStatus.PENDING, "Creating", "")
RUNNING = (JobStatus.RUNNING, "", "")
SUCCEEDED = (JobStatus.SUCCEEDED, "", "")
FAILED = (JobStatus.FAILED, "Error", "the command exited with code 3")
OOM = (JobStatus.FAILED, "OOMKilled", "")
CANCELLED = (JobStatus.CANCELLED, "", "killed by the user")
SUSPENDED = (JobStatus.SUSPENDED, "Preempted", "")


def shown(
    job: JobDescription, at: datetime, feed: StatusFeed | None = None
) -> tuple[JobStatusView, StatusSnapshot]:
    """A view showing ``job`` as of ``at`` (kernel time)."""
    feed = feed or StatusFeed(hint=f"%apolo_logs {JOB}", can_kill=True)
    feed.update(job)
    view = JobStatusView(on_kill=lambda: None)
    snap = feed.snapshot(at)
    view.show(snap)
    return view, snap


def from_browser(view: Any, content: dict[str, Any]) -> None:
    """A custom message as the widget's comm delivers it from the frontend."""
    view._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def steps_of(head: str) -> list[str]:
    """The step labels in order, the current one marked with *."""
    import re

    found = re.findall(
        r'<span class="apolo-(step-\w+|badge apolo-st-\w+)">(?:<span[^>]*>.</span> )?(\w+)',
        head,
    )
    return [f"*{label}" if kind.startswith("badge") else label for kind, label in found]


def test_no_job_yet() -> None:
    view = JobStatusView()
    assert view.status is None and view.exit_code is None
    assert repr(view) == "JobStatusView(no job yet)"
    assert not view.ui["can_kill"]
    bundle, _ = view._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == view.model_id
    assert bundle["text/plain"] == "job: waiting for the platform…"


def test_pending_running_succeeded() -> None:
    feed = StatusFeed(hint=f"%apolo_logs {JOB}", can_kill=True, kill_path="apolo/k")
    view, _ = shown(snapshot(PENDING), T0 + timedelta(seconds=7), feed)
    assert view.status is JobStatus.PENDING
    assert steps_of(view.head) == ["created", "*pending", "running", "finished"]
    assert "Creating" in view.head  # the reason, on its own line
    assert f"<code>{JOB}</code> <b>train</b>" in view.head
    assert "preset cpu-small" in view.head and "0.5 credits/h" in view.head
    assert 'data-kind="waiting"' in view.head and "waiting 0:00:07" in view.head
    assert view.ui["can_kill"] and view.ui["kill_path"] == "apolo/k"

    view, _ = shown(snapshot(PENDING, RUNNING), T0 + timedelta(seconds=10 + 3725), feed)
    assert steps_of(view.head) == ["created", "pending", "*running", "finished"]
    assert "elapsed 1:02:05" in view.head
    since = (T0 + timedelta(seconds=10)).timestamp() * 1000
    assert f'data-since="{since:.0f}"' in view.head  # the browser ticks from here
    assert repr(view) == f"JobStatusView({JOB}: running)"

    done = snapshot(PENDING, RUNNING, SUCCEEDED, exit_code=0)
    view, _ = shown(done, T0 + timedelta(hours=5), feed)
    assert steps_of(view.head) == ["created", "pending", "running", "*succeeded"]
    assert "ran 0:00:10" in view.head and 'data-kind="fixed"' in view.head
    assert "exit code" not in view.head  # a success says no exit code 0
    assert view.exit_code == 0
    assert not view.ui["can_kill"] and view.ui["finished"] and not view.ui["kill_path"]
    assert repr(view) == f"JobStatusView({JOB}: succeeded, exit code 0)"


def test_failed_says_the_reason_once_on_its_own_line() -> None:
    view, _ = shown(snapshot(PENDING, RUNNING, FAILED, exit_code=3), T0)
    assert steps_of(view.head) == ["created", "pending", "running", "*failed"]
    assert (
        '<div class="apolo-reason apolo-error">Error: the command exited with code 3</div>'
        in view.head
    )
    assert view.head.count("code 3") == 1 and "exit code" not in view.head
    job = view.snapshot.job
    assert job is not None
    assert status_line(job).endswith("exited with code 3")  # terminals: once too
    view, _ = shown(snapshot(PENDING, RUNNING, OOM, exit_code=137), T0)
    assert "OOMKilled (exit code 137)" in view.head


def test_cancelled_while_pending_never_ran() -> None:
    view, _ = shown(snapshot(PENDING, CANCELLED), T0 + timedelta(minutes=1))
    assert steps_of(view.head) == ["created", "pending", "*cancelled"]
    assert "killed by the user" in view.head
    assert "ran " not in view.head and view.exit_code is None


def test_suspended_shows_its_step_and_restarts() -> None:
    view, _ = shown(
        snapshot(PENDING, RUNNING, SUSPENDED, restarts=1), T0 + timedelta(seconds=25)
    )
    assert steps_of(view.head) == [
        "created",
        "pending",
        "running",
        "*suspended",
        "finished",
    ]
    assert "restarts: 1" in view.head and "Preempted" in view.head
    assert "waiting 0:00:05" in view.head  # since it was suspended
    view, _ = shown(
        snapshot(PENDING, RUNNING, SUSPENDED, RUNNING, restarts=1),
        T0 + timedelta(seconds=40),
    )
    assert steps_of(view.head) == ["created", "pending", "*running", "finished"]


def test_life_span_countdown_while_running() -> None:
    view, _ = shown(
        snapshot(PENDING, RUNNING, life_span=3600), T0 + timedelta(seconds=70)
    )
    assert "elapsed 0:01:00 · life span left 0:59:00" in view.head
    end = (T0 + timedelta(seconds=10 + 3600)).timestamp() * 1000
    assert f'data-life="{end:.0f}"' in view.head
    view, _ = shown(snapshot(PENDING, RUNNING, life_span=3600), T0 + timedelta(hours=2))
    assert "life span left 0:00:00" in view.head  # never negative
    done = snapshot(PENDING, RUNNING, SUCCEEDED, life_span=3600, exit_code=0)
    view, _ = shown(done, T0 + timedelta(hours=2))
    assert "life span" not in view.head


def test_naive_times_are_taken_as_utc() -> None:
    view, _ = shown(
        snapshot(PENDING, RUNNING),
        (T0 + timedelta(seconds=70)).replace(tzinfo=None).replace(tzinfo=UTC),
    )
    assert "elapsed 0:01:00" in view.head


def test_out_of_order_duplicate_and_post_final_snapshots_are_ignored() -> None:
    feed = StatusFeed()
    finished = snapshot(PENDING, RUNNING, FAILED, exit_code=3)
    assert feed.update(snapshot(PENDING, RUNNING))
    assert not feed.update(snapshot(PENDING))  # late: fewer transitions
    assert feed.update(finished)
    assert not feed.update(snapshot(PENDING, RUNNING))
    assert feed.update(finished)  # a repeat changes nothing
    assert feed.snapshot().status is JobStatus.FAILED
    assert feed.update(snapshot(PENDING, job_id="job-other"))  # another job
    assert feed.snapshot().status is JobStatus.PENDING


def test_everything_from_the_job_is_escaped() -> None:
    evil = (JobStatus.FAILED, "<script>alert(1)</script>", "a & b <img src=x>")
    feed = StatusFeed(hint="%apolo_logs x")
    feed.update(snapshot(PENDING, evil))
    feed.feed("<b>not bold</b>\n")
    feed.note = "<i>note</i>"
    view = JobStatusView()
    view.show(feed.snapshot(T0))
    saved = view.bundle(live=False)["text/html"]
    for html in (view.head, saved):
        assert "<script>" not in html and "<img" not in html
        assert (
            "&lt;script&gt;alert(1)&lt;/script&gt;: a &amp; b &lt;img src=x&gt;" in html
        )
    assert "<b>not bold" not in saved and "&lt;b&gt;not bold&lt;/b&gt;" in saved
    assert "<i>" not in saved
    assert view.log["lines"] == ["<b>not bold</b>"]  # the browser sets it as text


def test_the_detached_note_goes_when_the_job_ends() -> None:
    feed = StatusFeed()
    feed.update(snapshot(PENDING, RUNNING))
    feed.note = f"Detached: {JOB} keeps running. Kill it with %apolo_kill {JOB}"
    assert "Detached" in feed.snapshot().note
    feed.update(snapshot(PENDING, RUNNING, CANCELLED))
    assert feed.snapshot().note == ""


def test_kill_clicks_reach_on_kill_only_while_the_job_runs() -> None:
    calls: list[int] = []
    feed = StatusFeed(can_kill=True)
    feed.update(snapshot(PENDING, RUNNING))
    view = JobStatusView(on_kill=lambda: calls.append(1))
    view.show(feed.snapshot())
    from_browser(view, {"event": "kill"})  # what the browser sends without a route
    from_browser(view, {"event": "other"})
    assert calls == [1]
    feed.kill_requested()
    view.show(feed.snapshot())
    assert view.ui["killing"]
    feed.kill_failed("job not found")
    view.show(feed.snapshot())
    assert not view.ui["killing"] and "job not found" in view.head
    feed.update(snapshot(PENDING, RUNNING, CANCELLED))
    view.show(feed.snapshot())
    view.click_kill()
    assert calls == [1] and not view.ui["can_kill"] and not view.ui["killing"]


def test_saved_forms_end_in_the_final_state() -> None:
    feed = StatusFeed(hint=f"%apolo_logs {JOB}", can_kill=True)
    feed.update(snapshot(PENDING, RUNNING))
    feed.feed("".join(f"step {i}\n" for i in range(250)))
    view = JobStatusView()
    view.show(feed.snapshot(T0 + timedelta(seconds=30)))
    live = view.bundle(live=True)
    assert WIDGET_MIME in live
    assert live["text/plain"].splitlines()[0] == f"{JOB}  running"
    assert f"%apolo_status {JOB} shows it live" in live["text/plain"]
    feed.update(snapshot(PENDING, RUNNING, FAILED, exit_code=3))
    view.show(feed.snapshot(T0 + timedelta(seconds=40)))
    final, _ = view._repr_mimebundle_()
    assert WIDGET_MIME not in final  # nothing to restore: no "model not found"
    text = final["text/plain"].splitlines()
    assert text[0] == f"{JOB}  failed  Error: the command exited with code 3"
    assert f"--- last 200 of 250 lines — %apolo_logs {JOB} for all ---" in text
    assert text[-1] == "step 249" and "step 49" not in text
    assert "shows it live" not in final["text/plain"]
    html = final["text/html"]
    assert "<style>" in html and "apolo-st-failed" in html and "step 249" in html
    assert "apolo-log-static" in html  # a saved pane starts at its bottom
    assert "#" not in html.split("<style>")[1].split("</style>")[0].replace("#{", "")


def test_status_line() -> None:
    assert status_line(snapshot(PENDING)) == f"{JOB}  pending  Creating"
    assert status_line(snapshot(PENDING, RUNNING)) == f"{JOB}  running"
    assert (
        status_line(snapshot(PENDING, RUNNING, FAILED, exit_code=3))
        == f"{JOB}  failed  Error: the command exited with code 3"
    )
    assert (
        status_line(snapshot(PENDING, RUNNING, OOM, exit_code=137))
        == f"{JOB}  failed  OOMKilled (exit code 137)"
    )
    assert (
        status_line(snapshot(PENDING, RUNNING, SUCCEEDED, exit_code=0))
        == f"{JOB}  succeeded"
    )
    assert (
        status_line(snapshot(PENDING, RUNNING, SUSPENDED, restarts=2))
        == f"{JOB}  suspended  Preempted (restarts: 2)"
    )
    multi_line = (JobStatus.FAILED, "OOMKilled", "out of\nmemory  ")
    assert (
        status_line(snapshot(PENDING, multi_line))
        == f"{JOB}  failed  OOMKilled: out of memory"
    )


# -- the log buffer ---------------------------------------------------------------


def test_log_is_bounded_with_a_hint() -> None:
    log = LogBuffer(50)
    lines = [f"line {i}" for i in range(1000)]
    for start in range(0, 1000, 100):
        log.feed("".join(f"{line}\n" for line in lines[start : start + 100]))
    tail = log.tail()
    assert (tail.first, tail.total, list(tail.lines)) == (950, 1000, lines[-50:])
    note, *rest = log.text(f"%apolo_logs {JOB}").splitlines()
    assert note == f"950 earlier lines not shown — all of them: %apolo_logs {JOB}"
    assert rest == lines[-50:]


def test_one_big_chunk_keeps_only_its_tail() -> None:
    log = LogBuffer(3)
    log.feed("".join(f"{i}\n" for i in range(100_000)) + "partial")
    tail = log.tail()
    assert tail.lines == ("99998", "99999", "partial") and tail.total == 100_001
    log.feed(" done\n")
    assert log.tail().lines[-1] == "partial done"


def test_partial_lines_across_chunks() -> None:
    log = LogBuffer(200)
    for chunk in ["hel", "lo wor", "ld\nsecond", " line\n", "third (unfinished)"]:
        log.feed(chunk)
    assert log.tail().lines == ("hello world", "second line", "third (unfinished)")
    log.feed(" now done\n")
    assert log.tail().lines[-1] == "third (unfinished) now done"
    assert log.tail().total == 3


def test_carriage_returns_rewrite_the_line_as_a_terminal_does() -> None:
    log = LogBuffer(200)
    log.feed("start\nstep 1\rstep 2\rstep 3\nnext\r\n")
    assert log.tail().lines == ("start", "step 3", "next")
    log.feed("a 10%\r")
    assert log.tail().lines[-1] == "a 10%"
    log.feed("a 20%")  # the rewrite replaces, it does not append
    assert log.tail().lines[-1] == "a 20%"
    log.feed("\r")
    log.feed("\n")  # "\r" and "\n" split across chunks
    assert log.tail().lines == ("start", "step 3", "next", "a 20%")
    log.feed("long text\rshort\n")  # overwritten from column 0, the rest stays
    assert log.tail().lines[-1] == "shorttext"
    log.feed("\x1b[31mred\x1b[0m\n")  # colours are dropped
    assert log.tail().lines[-1] == "red"


def test_long_lines_are_cut() -> None:
    log = LogBuffer(5)
    log.feed("x" * 50_000)
    log.feed("y" * 50_000 + "\nnext\n")
    first = log.tail().lines[0]
    assert len(first) < 10_010 and first.endswith(" …")
    assert log.tail().lines[-1] == "next"
    with pytest.raises(ValueError, match="max_log_lines"):
        LogBuffer(0)


def _tqdm() -> ModuleType:
    module: ModuleType = pytest.importorskip("tqdm")  # a test-only dependency
    return module


def test_tqdm_bars_are_read_from_the_output() -> None:
    tqdm = _tqdm()
    out = io.StringIO()
    log = LogBuffer(20)
    log.feed("loading data\n")
    assert log.bars() == ()
    bar = tqdm.tqdm(total=100, desc="epoch 1", file=out, mininterval=0)
    bar.update(45)
    log.feed(out.getvalue())
    fed = len(out.getvalue())
    (progress,) = log.bars()
    assert progress.description == "epoch 1" and progress.percent == pytest.approx(45)
    assert (progress.n, progress.total) == ("45", "100")
    assert progress.rate.endswith("it/s") and progress.detail.startswith("45/100 [")
    bar.update(55)
    bar.close()
    log.feed(out.getvalue()[fed:] + "saving model\n")
    (done,) = log.bars()
    assert done.percent == pytest.approx(100)
    lines = log.tail().lines
    assert lines[0] == "loading data" and lines[-1] == "saving model"
    assert lines[1].startswith("epoch 1: 100%|") and len(lines) == 3


def test_nested_tqdm_bars_by_position() -> None:
    tqdm = _tqdm()
    out = io.StringIO()
    log = LogBuffer(200)
    for epoch in tqdm.tqdm(range(2), desc="epoch", file=out, mininterval=0, position=0):
        for step in tqdm.tqdm(
            range(4), desc="batch", file=out, mininterval=0, position=1, leave=False
        ):
            if epoch == 1 and step == 2:
                text = out.getvalue()
                for i in range(0, len(text), 7):  # chunks split anywhere, even in ESC[A
                    log.feed(text[i : i + 7])
    bars = log.bars()
    assert [(b.description, b.n, b.total) for b in bars] == [
        ("epoch", "1", "2"),
        ("batch", "2", "4"),
    ]
    assert bars[0].line < bars[1].line  # the outer bar above the inner one


def test_progress_lines_parse_like_tqdm_prints_them() -> None:
    cases = {
        "dl:  62%|######1   | 1.23M/2.00M [00:00<00:00, 14.8GB/s, loss=0.5]": (
            "dl",
            62.0,
            "1.23M",
            "2.00M",
            "00:00",
        ),
        "stream: 5it [00:00, 2118.54it/s]": ("stream", None, "5", "", ""),
        "  0%|          | 0/3 [00:00<?, ?it/s]": ("", 0.0, "0", "3", ""),
        "100%|##########| 8/8 [00:02<00:00, 3.01s/it]": ("", 100.0, "8", "8", "00:00"),
    }
    for line, (desc, percent, n, total, remaining) in cases.items():
        p = parse_progress(line)
        assert p is not None, line
        assert (p.description, p.percent, p.n, p.total, p.remaining) == (
            desc,
            percent,
            n,
            total,
            remaining,
        )
    for line in ("copied 5 files [done, ok]", "50% done | see log", "plain text"):
        assert parse_progress(line) is None


def test_bars_render_like_tqdm_notebook() -> None:
    tqdm = _tqdm()
    out = io.StringIO()
    bar = tqdm.tqdm(total=40, desc="batch", file=out, mininterval=0)
    bar.update(10)
    feed = StatusFeed()
    feed.update(snapshot(PENDING, RUNNING))
    feed.feed(out.getvalue())
    view = JobStatusView()
    view.show(feed.snapshot(T0))
    assert '<span class="apolo-bar-desc">batch</span>' in view.bars
    assert 'aria-valuenow="25"' in view.bars and "width:25.0%" in view.bars
    assert " 25%  10/40  " in view.bars and "ETA " in view.bars
    text = view.bundle(live=False)["text/plain"]
    assert "  batch:  25%  10/40" in text
    assert json.dumps(view.log)  # the log state is plain JSON
