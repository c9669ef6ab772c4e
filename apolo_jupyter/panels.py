"""Ready-made panels wired to the notebook runtime: ``JobsPanel()``, ``JobLauncher()``."""

from __future__ import annotations

import concurrent.futures
import contextlib

from .kernel._bridge import Attachment, follow_panel
from .kernel._options import JobOptions, parse_duration, parse_port_pair
from .kernel._platform_registry import kill_base, register_client
from .kernel._runtime import runtime
from .magics._run import start_job
from .widgets import JobStatusView, MountPicker
from .widgets._jobs_panel import LIMIT, JobsPanelView
from .widgets._launcher import JobLauncherView, LaunchRequest

FIRST_LIST = 30.0  # seconds JobsPanel() waits for its first rows


def JobsPanel(*, all_jobs: bool = False, limit: int = LIMIT) -> JobsPanelView:
    """Jobs with live status and kill buttons (running and pending ones by default;
    finished ones too with ``all_jobs``), newest first, at most ``limit`` rows
    (a line under the table counts the rest).

    Rows update by push as jobs change; jobs started elsewhere appear within 2 s.
    The panel is returned with its first rows, so its saved text lists them.
    """
    rt = runtime()
    client = rt.client()

    def kill(job_id: str) -> None:
        rt.submit(client.jobs.kill(job_id))

    view = JobsPanelView(
        on_kill=kill,
        all_jobs=all_jobs,
        kill_base=kill_base(register_client(client)),
        limit=limit,
    )
    listed: concurrent.futures.Future[None] = concurrent.futures.Future()
    view.follower = rt.submit(
        follow_panel(client, view, all_jobs=all_jobs, listed=listed)
    )
    # If the platform is slow, the panel shows empty: rows arrive as it answers.
    with contextlib.suppress(concurrent.futures.TimeoutError):
        listed.result(FIRST_LIST)
    return view


def JobLauncher(*, show_hidden: bool = False) -> JobLauncherView:  # a factory
    """A form to start a job: image, preset, command, mounts, ports, preemptible,
    life span. Its Run button starts the job and shows its live status; it never
    starts a job from invalid input. ``launcher.value`` is the ``%apolo_run`` line.
    Its storage folders leave out internal ones (``.apolo-jupyter``, any name
    starting with a dot) unless ``show_hidden``.
    """
    rt = runtime()
    client = rt.client()
    holder: list[JobLauncherView] = []

    def on_run(req: LaunchRequest) -> None:
        launcher = holder[0]
        options = JobOptions(
            image=req.image,
            command=req.command,
            preset=req.preset,
            volumes=req.volumes,
            env=req.env,
            name=req.name or None,
            life_span=req.life_span or None,
            preemptible=req.preemptible,
            port_forwards=req.port_forwards,
            detach=True,
        )
        try:
            job = start_job(options)
        except Exception as exc:  # shown in the form, never raised into the kernel
            launcher.show_error(str(exc))
            return
        attachments: list[Attachment] = []
        view = JobStatusView(on_kill=lambda: attachments[0].kill())
        attachments.append(Attachment(rt, client, job.id, view, job=job))
        launcher.show_status(view)

    launcher = JobLauncherView(
        presets=list(client.presets),
        picker=MountPicker(show_hidden=show_hidden),
        check_image=client.parse.remote_image,
        check_env=client.parse.env,
        check_port_pair=parse_port_pair,
        check_life_span=parse_duration,
        on_run=on_run,
    )
    holder.append(launcher)
    return launcher
