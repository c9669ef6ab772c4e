"""JobLauncher: validates as the user types, builds the magic line, runs the job."""

from __future__ import annotations

from apolo_jupyter.client import JobStatus
from apolo_jupyter.panels import JobLauncher, JobsPanel

from .conftest import until


def test_invalid_input_keeps_run_disabled_and_says_why() -> None:
    launcher = JobLauncher()
    assert (
        launcher.run.disabled and "command: give the program" in launcher.errors.value
    )
    launcher.command.value = "echo hi"
    assert not launcher.run.disabled and launcher.errors.value == ""
    for field, bad, message in [
        (launcher.image, "Bad Image!", "image:"),
        (launcher.env, "NOEQUALS", "env:"),
        (launcher.ports, "80", "LOCAL:REMOTE"),
        (launcher.life_span, "soon", "not a duration"),
    ]:
        good = field.value
        field.value = bad
        assert launcher.run.disabled, bad
        assert message in launcher.errors.value
        launcher.run.click()  # a click on a disabled form starts nothing
        assert launcher.status.children == ()
        field.value = good
    assert not launcher.run.disabled


def test_value_is_the_equivalent_magic_line() -> None:
    launcher = JobLauncher()
    launcher.preset.value = "cpu-small"
    launcher.image.value = "python:3.11"
    launcher.command.value = "python3 -c 'print(1)'"
    launcher.env.value = "A=1\nB=two words"
    launcher.life_span.value = "2h"
    launcher.preemptible.value = True
    assert launcher.value == (
        "%apolo_run -s cpu-small -e A=1 -e 'B=two words' --life-span 2h --preemptible "
        "python:3.11 -- python3 -c 'print(1)'"
    )


def test_run_starts_the_job_and_shows_its_status() -> None:
    launcher = JobLauncher()
    launcher.image.value = "ubuntu:latest"
    launcher.command.value = "sh -c 'echo launched'"
    launcher.name.value = "from-launcher"
    launcher.run.click()
    until(lambda: len(launcher.status.children) == 1)
    view = launcher.status.children[0]
    until(lambda: view.status == JobStatus.SUCCEEDED)
    assert view.exit_code == 0
    until(lambda: "launched" in view.log_text)
    panel = JobsPanel(all_jobs=True)
    try:
        until(lambda: any(r.job.name == "from-launcher" for r in panel._rows.values()))
    finally:
        assert panel.follower is not None
        panel.follower.cancel()
