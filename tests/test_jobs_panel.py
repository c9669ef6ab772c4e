"""JobsPanel on the real platform: rows appear, update by push, kill from a row."""

from __future__ import annotations

from apolo_jupyter.kernel._runtime import runtime
from apolo_jupyter.panels import JobsPanel

from .conftest import start_on_runtime, until


def test_rows_update_by_push_and_kill_buttons_work() -> None:
    sleeper = start_on_runtime("sleep 60")
    panel = JobsPanel()
    try:
        until(lambda: panel.status_of(sleeper) == "running")
        short = start_on_runtime("sleep 3")  # started after the panel: discovered
        until(lambda: panel.status_of(short) == "succeeded")
        row_boxes = list(panel._table.children)
        panel.kill_button(sleeper).click()
        until(lambda: panel.status_of(sleeper) == "cancelled")
        assert panel.kill_button(sleeper).disabled
        # Rows were updated in place, never rebuilt.
        assert list(panel._table.children)[: len(row_boxes)] == row_boxes
        assert f"{sleeper}: cancelled" in repr(panel)
    finally:
        assert panel.follower is not None
        panel.follower.cancel()
        rt = runtime()
        rt.run(rt.client().jobs.kill(sleeper), timeout=30)  # if the test failed early
