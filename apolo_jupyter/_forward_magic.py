"""``%apolo_forward``: show a PortForwardToggle for a job's port."""

from __future__ import annotations

from IPython.core.error import UsageError

from ._forward_control import ForwardControl
from ._magic_run import connect, known_job
from .widgets._forward_toggle import PortForwardToggle


def forward_toggle(job_id: str, port: int, on: bool) -> PortForwardToggle:
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is not a TCP port: use 1-65535, e.g. 8080")
    rt, client = connect()
    with known_job(job_id):
        job = rt.run(client.jobs.status(job_id), timeout=30)
    control = ForwardControl(rt, client, job.id, port)
    if on:
        control.view.turn_on()
    return control.view
