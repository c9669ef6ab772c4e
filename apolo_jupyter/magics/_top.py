"""``%apolo_top``: a running job's CPU, memory (and GPU) as a live chart, or as a
line per sample in a terminal or a headless run."""

from __future__ import annotations

import sys

from IPython.core.error import UsageError

from ..client import Client, IllegalArgumentError, ResourceNotFound
from ..kernel._frontend import use_widgets
from ._run import job_status, not_running

TEXT_SAMPLES = 10  # lines printed in text mode unless -n says otherwise


async def _print_samples(client: Client, job_id: str, limit: int) -> int:
    from ..widgets._telemetry import line

    shown = 0
    async with client.jobs.top(job_id) as samples:
        async for sample in samples:
            print(line(job_id, sample), flush=True)
            shown += 1
            if shown >= limit:
                break
    return shown


def show_top(job: str, samples: int | None) -> object:
    """The chart (widget mode), or print ``samples`` lines and return None."""
    rt, client, desc = job_status(job)
    if desc.status.is_finished:
        raise not_running(desc, "%apolo_top")
    if samples is not None and samples < 1:
        raise UsageError("-n takes a number of samples >= 1, e.g. %apolo_top JOB -n 5")
    if use_widgets() and samples is None:
        from ..kernel._bridge import feed_telemetry
        from ..widgets._telemetry import TelemetryChart

        chart = TelemetryChart(desc.id)
        rt.submit(feed_telemetry(client, desc.id, chart))
        return chart
    limit = samples or TEXT_SAMPLES
    try:
        shown = rt.run(_print_samples(client, desc.id, limit))
    except (ResourceNotFound, IllegalArgumentError) as exc:
        raise UsageError(f"%apolo_top {job}: {exc}") from None
    except KeyboardInterrupt:
        print(f"(stopped watching {desc.id}; it keeps running)")
        return None
    if shown < limit:
        print(f"({desc.id} stopped running)", file=sys.stdout)
    return None
