"""JobStatusView and status_line, fed hand-built snapshots as a bridge would."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType

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
from apolo_jupyter.widgets._status_view import status_line

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
CANCELLED = (JobStatus.CANCELLED, "", "killed by the user")
SUSPENDED = (JobStatus.SUSPENDED, "Preempted", "")


def test_no_job_yet() -> None:
    view = JobStatusView()
    assert view.status is None and view.exit_code is None
    assert view.bar.value == 0 and view.bar.max == 3
    assert repr(view) == "JobStatusView(no job yet)"
    assert view._kill.layout.display == "none"  # no on_kill: no button
    view.tick(T0)  # nothing to refresh, no error


def test_pending_running_succeeded() -> None:
    view = JobStatusView(on_kill=lambda: None)
    assert view._kill.layout.display == ""
    view.update(snapshot(PENDING))
    assert (view.status, view.bar.value, view.bar.bar_style) == (
        JobStatus.PENDING,
        1,
        "info",
    )
    assert view._label.value == "<b>pending</b> · Creating"
    assert f"<code>{JOB}</code> train" in view._info.value
    assert "preset cpu-small" in view._info.value
    assert "image <code>python:3.12</code>" in view._info.value
    assert "0.5 credits/h" in view._info.value
    view.tick(T0 + timedelta(seconds=7))
    assert view._clock.value == "waiting 0:00:07"
    assert not view._kill.disabled

    view.update(snapshot(PENDING, RUNNING))
    assert (view.bar.value, view.bar.bar_style) == (2, "")
    assert view._label.value == "<b>running</b>"
    view.tick(T0 + timedelta(seconds=10 + 3725))
    assert view._clock.value == "elapsed 1:02:05"
    assert repr(view) == f"JobStatusView({JOB}: running)"

    view.update(snapshot(PENDING, RUNNING, SUCCEEDED, exit_code=0))
    assert (view.bar.value, view.bar.bar_style) == (3, "success")
    assert view.exit_code == 0
    assert view._label.value == "<b>succeeded</b> · (exit code 0)"
    assert view._clock.value == "run time 0:00:10"
    view.tick(T0 + timedelta(hours=5))
    assert view._clock.value == "run time 0:00:10"  # finished: fixed
    assert view._kill.disabled
    assert repr(view) == f"JobStatusView({JOB}: succeeded, exit code 0)"


def test_failed_shows_reason_description_and_exit_code() -> None:
    view = JobStatusView(on_kill=lambda: None)
    view.update(snapshot(PENDING, RUNNING, FAILED, exit_code=3))
    assert (view.bar.value, view.bar.bar_style) == (3, "danger")
    assert view.exit_code == 3
    assert view._label.value == (
        "<b>failed</b> · Error: the command exited with code 3 · (exit code 3)"
    )
    assert view._kill.disabled
    assert repr(view) == f"JobStatusView({JOB}: failed, exit code 3)"


def test_cancelled_while_pending() -> None:
    view = JobStatusView()
    view.update(snapshot(PENDING, CANCELLED))
    assert (view.bar.value, view.bar.bar_style) == (3, "warning")
    assert view._label.value == "<b>cancelled</b> · killed by the user"
    assert view._clock.value == ""  # it never ran
    assert view.exit_code is None
    assert repr(view) == f"JobStatusView({JOB}: cancelled)"


def test_suspended_shows_as_pending_with_restarts() -> None:
    view = JobStatusView()
    view.update(snapshot(PENDING, RUNNING, SUSPENDED, restarts=1))
    assert (view.bar.value, view.bar.bar_style) == (1, "info")
    assert view._label.value == (
        "<b>suspended (preempted), restarts: 1</b> · Preempted"
    )
    view.tick(T0 + timedelta(seconds=25))
    assert view._clock.value == "waiting 0:00:05"  # since it was suspended
    view.update(snapshot(PENDING, RUNNING, SUSPENDED, RUNNING, restarts=1))
    assert (view.bar.value, view.bar.bar_style) == (2, "")
    assert view._label.value == "<b>running</b> · (restarts: 1)"


def test_life_span_countdown_while_running() -> None:
    view = JobStatusView()
    view.update(snapshot(PENDING, RUNNING, life_span=3600))
    view.tick(T0 + timedelta(seconds=10 + 60))
    assert view._clock.value == "elapsed 0:01:00 · life span left 0:59:00"
    view.tick(T0 + timedelta(hours=2))
    assert view._clock.value.endswith("life span left 0:00:00")  # never negative
    view.update(snapshot(PENDING, RUNNING, SUCCEEDED, life_span=3600, exit_code=0))
    assert "life span" not in view._clock.value


def test_naive_tick_is_taken_as_utc() -> None:
    view = JobStatusView()
    view.update(snapshot(PENDING, RUNNING))
    view.tick((T0 + timedelta(seconds=70)).replace(tzinfo=None))
    assert view._clock.value == "elapsed 0:01:00"


def test_out_of_order_and_duplicate_snapshots() -> None:
    view = JobStatusView(on_kill=lambda: None)
    finished = snapshot(PENDING, RUNNING, FAILED, exit_code=3)
    view.update(snapshot(PENDING, RUNNING))
    view.update(snapshot(PENDING))  # late: fewer transitions
    assert view.status is JobStatus.RUNNING and view.bar.value == 2
    view.update(finished)
    label = view._label.value
    view.update(snapshot(PENDING, RUNNING))  # late again
    view.update(finished)  # repeated
    view.update(finished)
    assert (view.status, view.bar.value, view.bar.bar_style, view._label.value) == (
        JobStatus.FAILED,
        3,
        "danger",
        label,
    )
    assert repr(view) == f"JobStatusView({JOB}: failed, exit code 3)"


def test_reasons_are_html_escaped() -> None:
    view = JobStatusView()
    evil = (JobStatus.FAILED, "<script>alert(1)</script>", "a & b <img src=x>")
    view.update(snapshot(PENDING, evil))
    assert "<script>" not in view._label.value
    assert "<img" not in view._label.value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in view._label.value
    assert "a &amp; b &lt;img src=x&gt;" in view._label.value
    view.set_note("<b>not bold</b>")
    assert "&lt;b&gt;not bold&lt;/b&gt;" in view._note.value


def test_set_note() -> None:
    view = JobStatusView()
    view.set_note(f"Detached: the job keeps running. Kill it with %apolo_kill {JOB}")
    assert f"%apolo_kill {JOB}" in view._note.value
    view.set_note("")
    assert view._note.value == ""


def test_kill_button_calls_on_kill_once_and_disables() -> None:
    calls: list[int] = []
    view = JobStatusView(on_kill=lambda: calls.append(1))
    view.update(snapshot(PENDING, RUNNING))
    assert view._kill.button_style == "danger" and not view._kill.disabled
    view._kill.click()
    view._kill.click()  # a double click does not kill twice
    assert calls == [1]
    assert view._kill.disabled and view._kill.description == "killing…"
    view.update(snapshot(PENDING, RUNNING))  # still running: still killing
    assert view._kill.disabled and view._kill.description == "killing…"
    view.update(snapshot(PENDING, RUNNING, CANCELLED))
    assert view._kill.disabled and view._kill.description == "Kill"
    view._kill.click()
    assert calls == [1]


def test_kill_requested_from_elsewhere_and_kill_failures() -> None:
    def refuse() -> None:
        raise RuntimeError("platform unreachable")

    view = JobStatusView(on_kill=refuse)
    view.update(snapshot(PENDING))
    view.kill_requested()  # e.g. %apolo_kill in another cell
    assert view._kill.disabled and view._kill.description == "killing…"
    view.kill_failed("job not found <here>")
    assert not view._kill.disabled and view._kill.description == "Kill"
    assert "job not found &lt;here&gt;" in view._error.value
    view._kill.click()  # on_kill raises: shown inline, the button comes back
    assert "could not kill the job: platform unreachable" in view._error.value
    assert not view._kill.disabled


def test_status_line() -> None:
    assert status_line(snapshot(PENDING)) == f"{JOB}  pending  Creating"
    assert status_line(snapshot(PENDING, RUNNING)) == f"{JOB}  running"
    assert (
        status_line(snapshot(PENDING, RUNNING, FAILED, exit_code=3))
        == f"{JOB}  failed  Error: the command exited with code 3 (exit code 3)"
    )
    assert (
        status_line(snapshot(PENDING, RUNNING, SUCCEEDED, exit_code=0))
        == f"{JOB}  succeeded  (exit code 0)"
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


# -- the log pane -----------------------------------------------------------------


def test_log_is_bounded_with_a_hint() -> None:
    view = JobStatusView(max_log_lines=50, logs_hint=f"%apolo_logs {JOB}")
    lines = [f"line {i}" for i in range(1000)]
    for start in range(0, 1000, 100):
        view.append_log("".join(f"{line}\n" for line in lines[start : start + 100]))
    assert view.dropped_lines == 950
    note, *shown = view.log_text.splitlines()
    assert note == f"950 earlier lines not shown — all of them: %apolo_logs {JOB}"
    assert shown == lines[-50:]
    outputs = view._output.outputs
    assert len(outputs) == 1
    assert outputs[0]["output_type"] == "stream" and outputs[0]["name"] == "stdout"


def test_log_without_hint_and_unbounded_case() -> None:
    view = JobStatusView(max_log_lines=3)
    assert view.log_text == "" and view.dropped_lines == 0
    view.append_log("a\nb\n")
    assert view.log_text == "a\nb\n" and view.dropped_lines == 0
    view.append_log("c\nd\n")
    assert view.log_text == "1 earlier line not shown\nb\nc\nd\n"
    with pytest.raises(ValueError, match="max_log_lines"):
        JobStatusView(max_log_lines=0)


def test_partial_lines_across_chunks() -> None:
    view = JobStatusView()
    for chunk in ["hel", "lo wor", "ld\nsecond", " line\n", "third (unfinished)"]:
        view.append_log(chunk)
    assert view.log_text == "hello world\nsecond line\nthird (unfinished)"
    view.append_log(" now done\n")
    assert view.log_text.splitlines()[-1] == "third (unfinished) now done"


def test_unfinished_line_counts_against_the_bound() -> None:
    view = JobStatusView(max_log_lines=2, logs_hint="%apolo_logs x")
    view.append_log("1\n2\n3\npartial")
    assert view.log_text.splitlines()[1:] == ["3", "partial"]
    assert view.dropped_lines == 2


def test_carriage_returns_keep_the_last_rewrite() -> None:
    view = JobStatusView()
    view.append_log("start\nstep 1\rstep 2\rstep 3\nnext\r\n")
    assert view.log_text == "start\nstep 3\nnext\n"
    view.append_log("a 10%\r")
    assert view.log_text.endswith("next\na 10%")
    view.append_log("a 20%")  # the rewrite replaces, it does not append
    assert view.log_text.endswith("next\na 20%")
    view.append_log("\r")
    view.append_log("\n")  # "\r" and "\n" split across chunks
    assert view.log_text == "start\nstep 3\nnext\na 20%\n"
    view.append_log("x\r\r\ny\n")
    assert view.log_text.endswith("a 20%\nx\ny\n")


def _tqdm() -> ModuleType:
    module: ModuleType = pytest.importorskip("tqdm")  # a test-only dependency
    return module


def test_tqdm_progress_goes_to_the_second_bar() -> None:
    tqdm = _tqdm()
    view = JobStatusView(max_log_lines=20)
    assert view._progress_row.layout.display == "none"
    out = io.StringIO()
    bar = tqdm.tqdm(total=100, desc="epoch 1", file=out, mininterval=0, ascii=False)
    view.append_log("loading data\n")
    assert view._progress_row.layout.display == "none"  # no bar yet
    bar.update(45)
    view.append_log(out.getvalue())
    out.seek(0)
    out.truncate()
    assert view._progress_row.layout.display == ""
    assert view.job_progress.value == pytest.approx(45.0)
    assert view.job_progress.description == "epoch 1"
    assert view._job_detail.value.startswith("45/100 [")
    assert view.log_text.splitlines()[-1].startswith("epoch 1:  45%|")
    bar.update(55)
    bar.close()
    view.append_log(out.getvalue() + "saving model\n")
    assert view.job_progress.value == pytest.approx(100.0)
    assert view.job_progress.bar_style == "success"
    lines = view.log_text.splitlines()
    assert lines[0] == "loading data"
    assert lines[1].startswith("epoch 1: 100%|") and "100/100" in lines[1]
    assert lines[2] == "saving model"
    assert len(lines) == 3  # every rewrite of the bar collapsed into one line


def test_tqdm_without_description_in_small_chunks() -> None:
    tqdm = _tqdm()
    out = io.StringIO()
    for _ in tqdm.tqdm(range(8), file=out, mininterval=0, ascii=True):
        pass
    text = out.getvalue()
    view = JobStatusView()
    for i in range(0, len(text), 7):  # chunks split anywhere, even inside "\r"
        view.append_log(text[i : i + 7])
    assert view.job_progress.value == pytest.approx(100.0)
    assert view.job_progress.description == ""
    assert view.log_text.startswith("100%|##########| 8/8 [")
    assert view.log_text.count("\n") == 1


def test_appending_10000_lines_in_chunks_is_fast() -> None:
    view = JobStatusView(max_log_lines=200, logs_hint="%apolo_logs x")
    chunk = "".join(f"step {i}: loss=0.{i:04d} some more text\n" for i in range(97))
    started = time.perf_counter()
    for _ in range(104):  # ~10,000 lines
        view.append_log(chunk[:501])
        view.append_log(chunk[501:])
    elapsed = time.perf_counter() - started
    assert view.dropped_lines == 97 * 104 - 200
    assert len(view.log_text.splitlines()) == 201
    assert elapsed < 2.0, f"10,000 lines took {elapsed:.2f} s"
