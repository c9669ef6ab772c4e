"""``apolo-jupyter`` as a newcomer meets it: a job that waits for room says who
holds it and stays visibly alive; a mistyped option gets the command's own usage
and the option meant; only `run` says which platform it uses."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Platform, cli
from .test_exec_cli import CLI, Terminal

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
    return cli(*args, env=env, stdin=subprocess.DEVNULL)


def _blocker(env: dict[str, str], name: str = "blocker") -> str:
    """A running job that holds one CPU of the platform."""
    started = _cli(env, "run", "--detach", "-n", name, "ubuntu", "--", "sleep 300")
    assert started.returncode == 0, started.stderr
    return started.stdout.split()[2]


def test_a_mistyped_option_gets_the_commands_usage_and_the_option_meant() -> None:
    typo = cli("run", "--life-spn", "1m", "ubuntu", "--", "true")
    assert typo.returncode == 2
    assert typo.stderr.startswith("usage: apolo-jupyter run [OPTIONS] IMAGE"), typo
    assert (
        "apolo-jupyter run: error: unrecognized arguments: --life-spn " in typo.stderr
    )
    assert "(did you mean --life-span?)" in typo.stderr
    assert "apolo-jupyter run --help lists the options" in typo.stderr
    # As `apolo run`, options are taken as spelled: no silent abbreviation.
    short = cli("run", "--life", "1m", "ubuntu", "--", "true")
    assert short.returncode == 2 and "did you mean --life-span?" in short.stderr
    nested = cli("local", "start", "--reset-stat")
    assert nested.stderr.startswith("usage: apolo-jupyter local start"), nested
    assert "(did you mean --reset-state?)" in nested.stderr
    listed = cli("ps", "--fromat", "{id}")
    assert listed.stderr.startswith("usage: apolo-jupyter ps"), listed
    assert "--fromat (did you mean --format?) {id};" in listed.stderr
    joined = cli("ps", "--fromat={id}")
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


TICK_LINE = re.compile(r"\r(pending for (\d+)s[^\r\n]*)")


def test_run_waiting_for_room_ticks_on_a_terminal(
    one_cpu: Platform, tmp_path: Path
) -> None:
    env = _env(one_cpu, tmp_path)
    blocker = _blocker(env)
    term = Terminal("run", "ubuntu", "--", "echo", "ran-after-the-wait", env=env)
    try:
        seen = term.expect(b" - Ctrl-C kills the job", timeout=60).decode()
        # The reason is printed in full once, as a status line: it names the job
        # that holds the room and the command that frees it.
        assert f"in use 1 of 1 CPU and 1.0 of 64.0 GiB by {blocker} (blocker); " in seen
        match = KILL.search(seen)
        assert match and match.group(1) == blocker, seen
        # Under it, one line rewritten in place, its seconds going up, never
        # wider than the terminal (80 columns), starting with the reason.
        deadline = time.monotonic() + 60
        while len({m[1] for m in TICK_LINE.findall(seen)}) < 2:
            assert time.monotonic() < deadline, seen
            term.read(0.5)
            seen = term.seen.decode()
        ticking = seen[seen.index("\rpending for ") :]
        assert "\n" not in ticking, seen
        for line, _ in TICK_LINE.findall(ticking):
            assert len(line.rstrip()) <= 79, line
            assert line.startswith(
                f"pending for {_}s: waiting for room (CPU): needs 1 CPU"
            ), line
            assert line.rstrip().endswith("... - Ctrl-C kills the job"), line
        killed = _cli(env, "kill", match.group(1))
        assert killed.stdout.strip() == f"{blocker}: cancelled", killed
        seen = term.expect(b"succeeded", timeout=60).decode()
        # The ticking line is erased: the status line that follows starts clean.
        assert re.search(r"\r +\r\[ *[\d.]+s\] running", seen), seen
        assert "ran-after-the-wait" in seen
    finally:
        code = term.close()
        _cli(env, "kill", blocker)
    assert code == 0


def test_run_waiting_for_room_into_a_pipe_prints_a_line_per_reason(
    tmp_path: Path,
) -> None:
    """Into a log: a plain line each time the reason changes (here the holders
    change), no line while it stays, no carriage return."""
    two_cpus = _platform(tmp_path, 2)
    try:
        env = _env(two_cpus, tmp_path)
        first, second = _blocker(env, "first"), _blocker(env, "second")
        proc = subprocess.Popen(
            [CLI, "run", "-s", "cpu-medium", "ubuntu", "--", "echo", "ran-at-last"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        watchdog = threading.Timer(120, proc.kill)  # a missing line fails, never hangs
        watchdog.start()
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline()]  # Job ID
            while f"kill one with apolo-jupyter kill {first} " not in lines[-1]:
                lines.append(proc.stdout.readline())
                assert lines[-1], lines  # the command is still there
            assert f"by {first} (first), {second} (second); " in lines[-1], lines
            # Long enough for a terminal's line to tick a few times.
            time.sleep(3)
            assert _cli(env, "kill", first).returncode == 0
            while f"kill one with apolo-jupyter kill {second} " not in lines[-1]:
                lines.append(proc.stdout.readline())
                assert lines[-1], lines
            assert _cli(env, "kill", second).returncode == 0
            out, _ = proc.communicate(timeout=90)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, (lines, out)
        text = "".join(lines) + out
        assert "ran-at-last" in out and "\r" not in text and "still" not in text
        waits = [
            line.split("] ", 1)[1] for line in text.splitlines() if "] pending" in line
        ]
        assert len(waits) >= 3, text  # pending, then each reason
        assert all(a != b for a, b in itertools.pairwise(waits)), text
    finally:
        two_cpus.stop()
