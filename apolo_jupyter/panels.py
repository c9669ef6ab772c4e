"""Ready-made panels wired to the notebook runtime: ``JobsPanel()``."""

from __future__ import annotations

from ._runtime import runtime
from .widgets._bridge import follow_panel
from .widgets._jobs_panel import JobsPanelView


def JobsPanel(*, all_jobs: bool = False) -> JobsPanelView:
    """Jobs with live status and kill buttons (running and pending ones by default).

    Rows update by push as jobs change; jobs started elsewhere appear within 2 s.
    """
    rt = runtime()
    client = rt.client()

    def kill(job_id: str) -> None:
        rt.submit(client.jobs.kill(job_id))

    view = JobsPanelView(on_kill=kill)
    view.follower = rt.submit(follow_panel(client, view, all_jobs=all_jobs))
    return view
