"""JobLauncher: errors under their field once touched, in the form's words; Run
held while a launch is in flight and after it; the job runs on the platform."""

from __future__ import annotations

import re
import uuid

from apolo_jupyter.client import JobStatus
from apolo_jupyter.kernel._runtime import runtime
from apolo_jupyter.panels import JobLauncher, JobsPanel
from apolo_jupyter.widgets import MountPicker
from apolo_jupyter.widgets._launcher import JobLauncherView, LaunchRequest

from .conftest import until

FLAGS = re.compile(r"(?<![\w-])--?[a-z][\w-]*")  # -e, --life-span, ...


def shown_errors(launcher: JobLauncherView) -> dict[str, str]:
    return {
        key: re.sub(r"<[^>]+>", "", box.value)
        for key, box in launcher._errors.items()
        if box.value
    }


def test_errors_show_under_their_field_once_touched() -> None:
    launcher = JobLauncher()
    assert launcher.run.disabled
    assert shown_errors(launcher) == {}  # nothing typed, nothing red
    assert "To run: enter a command." in launcher.summary.value
    launcher.command.value = "echo hi"
    assert not launcher.run.disabled and launcher.summary.value == ""
    assert "Same as" in launcher.line.value
    for field, key, bad, words in [
        (launcher.image, "image", "Bad Image!", "is not an image name"),
        (launcher.env, "env", "A=1\nNOEQUALS", "line 2: write NAME=value"),
        (launcher.env, "env", "1X=1", "is not a variable name"),
        (launcher.ports, "ports", "8080:80 80", "“80”: write pairs"),
        (launcher.life_span, "life_span", "soon", "is not a duration"),
        (launcher.life_span, "life_span", "30s", "at least 1 minute"),
        # The rule %apolo_run -n applies (one check for both).
        (launcher.name, "name", "My Job!", "“My Job!” is not a job name: 3-40 low"),
        (launcher.name, "name", "a--b", "is not a job name"),
    ]:
        good = field.value
        field.value = bad
        errors = shown_errors(launcher)
        assert list(errors) == [key], errors  # under that field only
        assert words in errors[key], errors
        assert not FLAGS.search(errors[key]), errors  # the form's words, not flags
        assert launcher.run.disabled and "fix the fields" in launcher.summary.value
        launcher.run.click()  # a click on a disabled form starts nothing
        assert launcher.status.children == ()
        field.value = good
    assert shown_errors(launcher) == {} and not launcher.run.disabled
    launcher.command.value = ""
    assert shown_errors(launcher) == {
        "command": "enter the program to run, e.g. python3 train.py"
    }


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


async def _named(name: str) -> int:
    client = runtime().client()
    async with client.jobs.list(name=name) as jobs:
        return len([job async for job in jobs])


def test_run_starts_one_job_and_holds_run_until_the_form_changes() -> None:
    launcher = JobLauncher()
    launcher.image.value = "ubuntu:latest"
    launcher.command.value = "sh -c 'echo launched'"
    name = f"from-launcher-{uuid.uuid4().hex[:8]}"
    launcher.name.value = name
    launcher.run.click()
    launcher.run.click()  # a second click, queued while the first launched
    until(lambda: len(launcher.status.children) == 1)
    view = launcher.status.children[0]
    assert launcher.run.disabled
    assert re.search(r"Started job-\S+\. Change the form", launcher.summary.value)
    assert runtime().run(_named(name)) == 1
    until(lambda: view.status == JobStatus.SUCCEEDED)
    assert view.exit_code == 0
    until(lambda: "launched" in view.log_text)
    panel = JobsPanel(all_jobs=True)
    try:
        assert any(r.name == name for r in panel.job_rows)
    finally:
        assert panel.follower is not None
        panel.follower.cancel()
    launcher.name.value = name + "-2"  # a change: Run again
    assert not launcher.run.disabled and launcher.summary.value == ""


def test_a_refused_launch_is_said_beside_run_and_run_comes_back() -> None:
    launched: list[LaunchRequest] = []

    def refuse(request: LaunchRequest) -> None:
        launched.append(request)
        assert launcher.run.disabled  # in flight
        launcher.show_error("the platform refused the job: quota exceeded")

    picker = MountPicker(
        list_folders=lambda _: [],
        create_folder=lambda _: None,
        parse_volume=runtime().client().parse.volume,
    )
    launcher = JobLauncherView(
        presets=["cpu-small"],
        picker=picker,
        check_image=lambda _: None,
        check_env=lambda _: None,
        check_port_pair=lambda _: None,
        check_life_span=lambda _: None,
        on_run=refuse,
    )
    launcher.command.value = "true"
    launcher.run.click()
    assert len(launched) == 1
    assert (
        "quota exceeded" in launcher.summary.value
        and "apolo-error" in launcher.summary.value
    )
    assert not launcher.run.disabled
