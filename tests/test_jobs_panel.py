"""JobsPanel on the real platform: rows appear with the panel, update by push, one
row at a time, and carry what the browser needs (kill route, live flag, age)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from apolo_jupyter.kernel import _platform_registry as platforms
from apolo_jupyter.kernel._runtime import runtime
from apolo_jupyter.panels import JobsPanel
from apolo_jupyter.widgets._jobs_panel import JobsPanelView, short_id
from apolo_jupyter.widgets._static import WIDGET_MIME

from .conftest import start_on_runtime, until


@pytest.fixture
def sleeper() -> Iterator[str]:
    job_id = start_on_runtime("sleep 60")
    yield job_id
    rt = runtime()
    rt.run(rt.client().jobs.kill(job_id), timeout=30)


def _stop(panel: JobsPanelView) -> None:
    assert panel.follower is not None
    panel.follower.cancel()


def test_rows_update_by_push_and_kill_from_a_row(sleeper: str) -> None:
    panel = JobsPanel()
    try:
        # Returned with its first rows: its saved text lists them at once.
        assert panel.status_of(sleeper) in ("pending", "running")
        bundle, _ = panel._repr_mimebundle_()
        assert sleeper in bundle["text/plain"] and sleeper in bundle["text/html"]
        assert bundle[WIDGET_MIME]["model_id"] == panel.model_id
        until(lambda: panel.status_of(sleeper) == "running")
        short = start_on_runtime("sleep 3")  # started after the panel: discovered
        until(lambda: panel.status_of(short) == "succeeded")
        rows_before = [dict(r) for r in panel.rows]
        # A Kill click without the server route, as the widget's comm delivers it:
        message = {"method": "custom", "content": {"event": "kill", "job_id": sleeper}}
        panel._handle_msg({"content": {"data": message}, "buffers": []})
        until(lambda: panel.status_of(sleeper) == "cancelled")
        row = {r["id"]: r for r in panel.rows}[sleeper]
        assert row["live"] is False  # no Kill on a finished job
        assert row["short"] == short_id(sleeper) and row["created_ms"] > 0
        # Row by row: this test's rows keep their order and the other one is
        # unchanged. (Other tests' jobs on the shared runtime platform may change
        # meanwhile: their rows are not this test's to judge.)
        mine = {sleeper, short}
        after = [dict(r) for r in panel.rows if r["id"] in mine]
        before = [r for r in rows_before if r["id"] in mine]
        assert len(before) == 2
        assert [r["id"] for r in after] == [r["id"] for r in before]
        assert [r for r in after if r["id"] == short] == [
            r for r in before if r["id"] == short
        ]
        assert f"{sleeper}: cancelled" in repr(panel)
        panel.click_kill(sleeper)  # finished: nothing to do, no error
    finally:
        _stop(panel)


def test_the_kill_route_names_the_kernels_platform() -> None:
    panel = JobsPanel(all_jobs=True)
    try:
        prefix, _, rest = panel.kill_base.partition("apolo/platforms/")
        assert prefix == "" and rest.endswith("/jobs/")
        record = platforms.lookup(rest.removesuffix("/jobs/"))
        config = runtime().client().config
        assert record is not None
        assert (record.api_url, record.token) == (
            str(config.api_url),
            config.auth_token,
        )
    finally:
        _stop(panel)


def test_an_empty_panel_says_how_to_start_a_job() -> None:
    panel = JobsPanelView(on_kill=lambda _: None)
    assert "Start one with %apolo_run" in panel.empty_text
    assert "all_jobs=True" in panel.empty_text
    bundle, _ = panel._repr_mimebundle_()
    assert "Start one with %apolo_run" in bundle["text/plain"]
    assert repr(panel) == "JobsPanel(no jobs)"


def test_all_jobs_newest_first_with_their_image_and_a_row_limit() -> None:
    started = [start_on_runtime(f"echo {n}", finish=True) for n in range(3)]
    panel = JobsPanel(all_jobs=True, limit=2)
    try:
        assert [r["id"] for r in panel.rows] == started[:0:-1]  # the newest two
        total = len(panel.job_rows)
        assert total >= 3
        assert panel.more == f"{total - 2} more — %apolo_ps --all lists them all"
        row = panel.rows[0]
        assert (row["image"], row["command"]) == ("ubuntu:latest", "echo 2")
        bundle, metadata = panel._repr_mimebundle_()
        lines = bundle["text/plain"].splitlines()
        assert lines[0].split() == ["ID", "NAME", "STATUS", "IMAGE", "PRESET", "AGE"]
        assert [line.split()[0] for line in lines[1:3]] == started[:0:-1]
        assert lines[3] == panel.more and len(lines) == 4
        html = bundle["text/html"]
        assert '<code title="echo 2">ubuntu:latest</code>' in html
        assert panel.more in html and started[0] not in html
        # The live widget names this kernel process (see server._reopen).
        assert metadata["apolo_jupyter"]["kernel"]["pid"] == os.getpid()
    finally:
        _stop(panel)
    with pytest.raises(ValueError, match="limit=0: show at least 1 row"):
        JobsPanelView(on_kill=lambda _: None, limit=0)
