"""``apolo-jupyter`` as a newcomer meets it: a job that waits for room says who
holds it and stays visibly alive; a mistyped option gets the command's own usage
and the option meant; only `run` says which platform it uses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Platform
from .test_exec_cli import CLI

GiB = 2**30
KILL = re.compile(r"kill one with apolo-jupyter kill (job-[0-9a-f-]+) ")


def _platform(tmp_path: Path, cpu: int) -> Platform:
    return Platform(tmp_path / "home", capacity={"cpu": cpu, "memory": 64 * GiB})


@pytest.fixture
def one_cpu(tmp_path: Path) -> Iterator[Platform]:
    plat = _platform(tmp_path, 1)
    yield plat
    plat.stop()


def _env(platform: Platform, tmp_path: Path) -> dict[str, str]:
    """The CLI finds the test's platform by itself (no login, no passed config)."""
    env = {k: v for k, v in os.environ.items() if "PASSED_CONFIG" not in k}
    for var in ("APOLO_CONFIG", "NEUROMATION_CONFIG", "APOLO_JUPYTER_QUIET", "COLUMNS"):
        env.pop(var, None)
    return {
        **env,
        "APOLO_JUPYTER_HOME": str(platform.paths.home),
        "HOME": str(tmp_path),
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _blocker(env: dict[str, str], name: str = "blocker") -> str:
    """A running job that holds one CPU of the platform."""
    started = _cli(env, "run", "--detach", "-n", name, "ubuntu", "--", "sleep 300")
    assert started.returncode == 0, started.stderr
    return started.stdout.split()[2]


def _usage_of(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "apolo_jupyter.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_mistyped_option_gets_the_commands_usage_and_the_option_meant() -> None:
    typo = _usage_of("run", "--life-spn", "1m", "ubuntu", "--", "true")
    assert typo.returncode == 2
    assert typo.stderr.startswith("usage: apolo-jupyter run [OPTIONS] IMAGE"), typo
    assert (
        "apolo-jupyter run: error: unrecognized arguments: --life-spn " in typo.stderr
    )
    assert "(did you mean --life-span?)" in typo.stderr
    assert "apolo-jupyter run --help lists the options" in typo.stderr
    # As `apolo run`, options are taken as spelled: no silent abbreviation.
    short = _usage_of("run", "--life", "1m", "ubuntu", "--", "true")
    assert short.returncode == 2 and "did you mean --life-span?" in short.stderr
    nested = _usage_of("local", "start", "--reset-stat")
    assert nested.stderr.startswith("usage: apolo-jupyter local start"), nested
    assert "(did you mean --reset-state?)" in nested.stderr
    listed = _usage_of("ps", "--fromat", "{id}")
    assert listed.stderr.startswith("usage: apolo-jupyter ps"), listed
    assert "--fromat (did you mean --format?) {id};" in listed.stderr
    joined = _usage_of("ps", "--fromat={id}")
    assert "--fromat={id} (did you mean --format?);" in joined.stderr, joined


def test_after_dashes_everything_is_the_jobs_command(
    one_cpu: Platform, tmp_path: Path
) -> None:
    """A word after ``--`` that looks like a (mistyped) option of ours is the
    job's, never ours."""
    env = _env(one_cpu, tmp_path)
    done = _cli(env, "run", "ubuntu", "--", "echo", "--life-spn", "--detach", "-s")
    assert done.returncode == 0, done.stderr
    assert "--life-spn --detach -s\n" in done.stdout, done.stdout


def test_only_run_says_which_platform_it_uses(
    one_cpu: Platform, tmp_path: Path
) -> None:
    env = _env(one_cpu, tmp_path)
    started = _cli(env, "run", "--detach", "ubuntu", "--", "sleep 300")
    assert started.returncode == 0, started.stderr
    assert "apolo_jupyter: embedded local platform at http" in started.stderr
    job = started.stdout.split()[2]
    (tmp_path / "notes.txt").write_text("notes")
    for args in (
        ("ps",),
        ("ps", "--format", "{id}"),
        ("status", job),
        ("logs", job),
        ("generate-run-command", job),
        ("cp", str(tmp_path / "notes.txt"), "storage:notes.txt"),
        ("kill", job),
    ):
        done = _cli(env, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert "platform" not in done.stdout + done.stderr, (args, done)
    listed = _cli(env, "ps", "--all", "--format", "{id}")
    assert listed.stdout.split() == ["ID", job], listed  # the table, nothing else
