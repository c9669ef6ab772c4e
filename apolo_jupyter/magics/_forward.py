"""``%apolo_forward``: show a PortForwardToggle for a job's port."""

from __future__ import annotations

import time

from IPython.core.error import UsageError

from ..kernel._forward_control import ForwardControl
from ..kernel._frontend import use_widgets
from ..widgets._forward_toggle import ERROR, ON, PortForwardToggle
from ._run import job_status

TEXT_WAIT = 60.0  # seconds text mode waits for a forward asked for with --on


def forward_toggle(job_id: str, port: int, on: bool) -> PortForwardToggle:
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is not a TCP port: use 1-65535, e.g. 8080")
    rt, client, job = job_status(job_id)
    if job.status.is_finished:
        raise UsageError(
            f"{job.id} is {job.status.value}; port forwarding needs a running job "
            "(start one with %apolo_run --detach IMAGE -- COMMAND)"
        )
    control = ForwardControl(rt, client, job.id, port)
    if on:
        control.view.turn_on()
    if not use_widgets():  # a terminal or a headless run sees no widget: say it
        _report(control, on)
    return control.view


def _report(control: ForwardControl, on: bool) -> None:
    view = control.view
    if not on:
        print(f"{view.job_id}:{view.job_port}: off (add --on to forward it)")
        return
    deadline = time.monotonic() + TEXT_WAIT
    while view.state not in (ON, ERROR) and time.monotonic() < deadline:
        time.sleep(0.02)
    record = control.record
    if view.state == ON and record is not None:
        print(
            f"{view.job_id}:{view.job_port}: on at {view.url} (through Jupyter) "
            f"and 127.0.0.1:{record.port}"
        )
    else:
        reason = view.error or f"not on after {TEXT_WAIT:.0f} s"
        print(f"{view.job_id}:{view.job_port}: {view.state}: {reason}")
