"""JobsPanel on the real platform: rows appear, update by push, kill from a row."""

from __future__ import annotations

from apolo_jupyter._runtime import runtime
from apolo_jupyter.panels import JobsPanel

from .conftest import until


def _start(command: str) -> str:
    rt = runtime()
    client = rt.client()

    async def start() -> str:
        job = await client.jobs.start(
            image=client.parse.remote_image("ubuntu"),
            preset_name="cpu-small",
            command=command,
        )
        return job.id

    return rt.run(start(), timeout=60)


def test_rows_update_by_push_and_kill_buttons_work() -> None:
    sleeper = _start("sleep 60")
    panel = JobsPanel()
    try:
        until(lambda: panel.status_of(sleeper) == "running")
        short = _start("sleep 3")  # started after the panel: discovered
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
