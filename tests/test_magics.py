"""The magics in a real IPython shell: bad input, text output, terminal IPython."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from apolo_jupyter import JobDescription, JobStatus
from apolo_jupyter.kernel._runtime import runtime

from .conftest import free_port, until


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--bogus ubuntu", r"unrecognized arguments: --bogus.*%apolo_run\?"),
        ("", "needs an image"),
        (
            "Bad_Image! -- true",
            "^image 'Bad_Image!' is not an image name: write one such as python:3.11",
        ),
        ("-v /tmp:/data ubuntu -- true", r"-v.*'/tmp:/data'.*storage:"),
        ("-e =nameless ubuntu -- true", "NAME=value"),
        ("-e T=secret: ubuntu -- true", "secret"),
        ("--privileged ubuntu -- true", "--privileged is refused by the local"),
        ("--share bob ubuntu -- true", "--share is refused by the local"),
        ("--energy-schedule green ubuntu -- true", "no energy schedules"),
        ("--browse ubuntu -- true", "--browse is refused"),
        ("--no-http-auth --http-port 0 ubuntu -- true", "requires --http-port"),
        ("--restart sometimes ubuntu -- true", "invalid choice"),
        ("--schedule-timeout later ubuntu -- true", "--schedule-timeout"),
        ("--http-port web ubuntu -- true", "--http-port 'web' is not a port"),
        ("--port-forward 80 ubuntu -- true", "LOCAL:REMOTE"),
        ("--port-forward 99999:80 ubuntu -- true", "ports 1-65535"),
        (
            "-s cpu-huge ubuntu -- true",
            "unknown preset 'cpu-huge': choose one of cpu-small",
        ),
        ("--life-span soon ubuntu -- true", "not a duration"),
        ("ubuntu", r"needs a command.*Add -- COMMAND, e.g. %apolo_run ubuntu:latest"),
        ("-n 'My Job!' ubuntu -- true", r"job name 'My Job!' is invalid: 3-40 lower"),
        ("-n 'unclosed ubuntu -- true", "close the quote"),
    ],
)
def test_bad_input_is_a_usage_error_that_says_how_to_fix_it(
    shell: InteractiveShell, line: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("apolo_run", line)


@pytest.mark.parametrize(
    ("magic", "line", "message"),
    [
        (
            "apolo_status",
            "job-00000000-0000-4000-8000-000000000000",
            "unknown job.*%apolo_ps",
        ),
        ("apolo_kill", "job-00000000-0000-4000-8000-000000000000", "unknown job"),
        ("apolo_logs", "nope", "unknown job"),
        ("apolo_ps", "--status sleeping", "invalid choice"),
        ("apolo_use", "https://example.invalid/api/v1", "needs --token"),
        (
            "apolo_forward",
            "job-00000000-0000-4000-8000-000000000000 8080",
            "unknown job",
        ),
        ("apolo_forward", "some-job 70000", "use 1-65535"),
        ("apolo_forward", "some-job http", "invalid int value"),
    ],
)
def test_other_magics_refuse_bad_input(
    shell: InteractiveShell, magic: str, line: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic(magic, line)


def test_help_has_an_example(shell: InteractiveShell) -> None:
    for name in (
        "apolo_run",
        "apolo_status",
        "apolo_ps",
        "apolo_logs",
        "apolo_kill",
        "apolo_use",
    ):
        doc = shell.find_line_magic(name).__doc__ or ""
        assert "Example::" in doc and f"%{name}" in doc
    assert "%%apolo_job" in (shell.find_cell_magic("apolo_job").__doc__ or "")


def test_every_option_of_the_job_magics_comes_from_the_option_table(
    shell: InteractiveShell,
) -> None:
    from apolo_jupyter.kernel._run_options import CELL, MAGIC, options_for

    def flags(*where: str) -> set[str]:
        return {f for o in options_for(*where) for f in (*o.flags, *o.negative)}

    def accepted(magic: object) -> set[str]:
        parser = magic.parser  # type: ignore[attr-defined]
        return {f for action in parser._actions for f in action.option_strings}

    run = shell.find_line_magic("apolo_run")
    job = shell.find_cell_magic("apolo_job")
    # Besides the table: only the cell's stand-ins for IMAGE and -- CMD.
    assert accepted(run) == flags(MAGIC)
    assert accepted(job) == flags(MAGIC, CELL) | {"--image", "--python"}
    assert {"--sync", "--result", "--push", "--keep"} <= accepted(job)
    assert {"--result", "--push", "--keep"}.isdisjoint(accepted(run))


def test_run_attached_prints_text_and_returns_the_description(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    # With -o the value goes into the variable only: no Out[] under the output.
    assert (
        shell.run_line_magic(
            "apolo_run", "-o done ubuntu -- sh -c 'echo hello; exit 3'"
        )
        is None
    )
    job = shell.user_ns["done"]
    assert isinstance(job, JobDescription)
    assert job.status == JobStatus.FAILED and job.history.exit_code == 3
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if line.startswith(job.id)]
    assert [line.split()[1] for line in lines] == ["pending", "running", "failed"]
    # One line per status as it happened, the output, then the end.
    assert out.index(lines[1]) < out.index("hello") < out.index(lines[2])
    assert not any("exit code" in line for line in lines[:2]), lines
    assert out[-1].endswith("failed  Error: the command exited with code 3")  # once
    assert shell.display_formatter is not None
    shown = shell.display_formatter.format(job)[0]["text/plain"]
    assert shown == (
        f"JobDescription(id={job.id!r}, status=failed, image='ubuntu:latest', "
        "preset='cpu-small', reason='Error', exit_code=3)"
    )
    with pytest.raises(RuntimeError, match="failed"):
        shell.run_line_magic("apolo_run", "--raise ubuntu -- false")


def test_options_are_unquoted_as_a_shell_would(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    job = shell.run_line_magic(
        "apolo_run",
        """-e "MSG=hello world" -n 'quoted-name' "ubuntu:latest" -- sh -c 'echo "$MSG"'""",
    )
    assert job.status == JobStatus.SUCCEEDED, job
    assert job.name == "quoted-name"
    assert job.container.image.name == "ubuntu"
    assert job.container.env == {"MSG": "hello world"}
    assert "hello world" in capsys.readouterr().out.splitlines()


def test_cell_magic_runs_the_cell_with_bash(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    job = shell.run_cell_magic(
        "apolo_job",
        "-s cpu-small --image python:3.11",
        'echo "training"\nx=3; echo "epochs $x"\n',
    )
    assert job.status == JobStatus.SUCCEEDED
    out = capsys.readouterr().out
    assert "training\nepochs 3\n" in out
    job = shell.run_cell_magic(
        "apolo_job", "--python -n two-lines", "x = sum(range(10))\nprint(x)\n"
    )
    assert job.status == JobStatus.SUCCEEDED
    assert "45\n" in capsys.readouterr().out
    shell.run_line_magic("apolo_ps", "-a -n two-lines")
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 2 and table[1].startswith(job.id), table  # one row, one line


def test_detach_ps_logs_kill(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    job = shell.run_line_magic(
        "apolo_run", "--detach -n detached-one ubuntu -- sh -c 'echo up; sleep 60'"
    )
    rt = runtime()
    client = rt.client()
    try:
        assert job.status in (JobStatus.PENDING, JobStatus.RUNNING)
        # Named once: by its name, shorter than its id.
        assert capsys.readouterr().out.splitlines()[-1] == (
            "Detached: detached-one keeps running. Kill it with %apolo_kill "
            "detached-one; watch it again with %apolo_status detached-one"
        )
        shell.run_line_magic("apolo_ps", "-n detached-one")
        table = capsys.readouterr().out
        assert re.search(
            rf"{job.id}\s+detached-one\s+(pending|running)\s+cpu-small", table
        )

        async def logged_up() -> None:
            async with client.jobs.monitor(job.id) as chunks:
                async for chunk in chunks:
                    if b"up" in chunk:
                        return

        # %apolo_logs without -f stops after a short silence: wait for the output.
        rt.run(asyncio.wait_for(logged_up(), 30))
        shell.run_line_magic("apolo_logs", job.id)
        assert capsys.readouterr().out.strip() == "up"
        shell.run_line_magic("apolo_kill", job.id)
        assert capsys.readouterr().out.strip() == f"{job.id}: cancelled"
        final = shell.run_line_magic("apolo_status", job.id)
        assert final.status == JobStatus.CANCELLED
    finally:
        rt.run(client.jobs.kill(job.id), timeout=30)


def test_use_shows_and_switches_the_backend(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("apolo_use", "")
    assert "embedded local platform" in capsys.readouterr().out
    shell.run_line_magic("apolo_use", "local")
    assert "embedded local platform at http://127.0.0.1:" in capsys.readouterr().out


def test_terminal_ipython_prints_deterministic_text(tmp_path: Path) -> None:
    script = "\n".join(
        [
            "%load_ext apolo_jupyter",
            "job = %apolo_run ubuntu:latest -- sh -c 'echo from-the-job'",
            "print('final', job.status, job.history.exit_code)",
        ]
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("APOLO_JUPYTER_DISPLAY", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--quick",
            "--no-banner",
            "--colors=nocolor",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    ids = {line.split()[0] for line in lines if line.startswith("job-")}
    assert len(ids) == 1
    job_id = ids.pop()
    assert [line.split()[1] for line in lines if line.startswith(job_id)] == [
        "pending",
        "running",
        "succeeded",
    ]
    assert "from-the-job" in lines
    assert lines[-1] == "final succeeded 0"


def test_volumes_from_a_mount_picker(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    from apolo_jupyter.widgets import MountPicker

    shell.user_ns["picker"] = MountPicker(mounts=["storage:magic-vol:/var/data"])
    job = shell.run_line_magic(
        "apolo_run",
        "-v @picker ubuntu -- sh -c 'echo via-picker > /var/data/x; cat /var/data/x'",
    )
    assert job.status == JobStatus.SUCCEEDED
    assert "via-picker" in capsys.readouterr().out
    assert [v.container_path for v in job.container.volumes] == ["/var/data"]
    shell.user_ns["nothing"] = 42
    with pytest.raises(UsageError, match="name a MountPicker"):
        shell.run_line_magic("apolo_run", "-v @nothing ubuntu -- true")


def test_no_backend_reachable(shell: InteractiveShell, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot use http://127\.0\.0\.1:9/api/v1"):
        shell.run_line_magic("apolo_use", "http://127.0.0.1:9/api/v1 --token t")
    # A fresh terminal IPython whose only configured platform is unreachable.
    import base64
    import json

    passed = base64.b64encode(
        json.dumps(
            {"token": "t", "cluster": "c", "url": "http://127.0.0.1:9/api/v1"}
        ).encode()
    ).decode()
    env = {**os.environ, "HOME": str(tmp_path), "APOLO_PASSED_CONFIG": passed}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--quick",
            "--no-banner",
            "--colors=nocolor",
            "-c",
            "%load_ext apolo_jupyter\n%apolo_ps",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert "UsageError: no Apolo platform is reachable" in output, output
    assert "%apolo_use" in output


def _serves(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_run_port_forward_serves_while_the_job_runs(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    local, remote = free_port(), free_port()
    job = shell.run_line_magic(
        "apolo_run",
        f"--detach --port-forward {local}:{remote} python:3.11 -- "
        f"python3 -m http.server {remote} --bind 127.0.0.1",
    )
    try:
        out = capsys.readouterr().out
        assert f"forwarding 127.0.0.1:{local} to port {remote} of {job.id}" in out
        until(lambda: _serves(local))
    finally:
        shell.run_line_magic("apolo_kill", job.id)
    until(lambda: not _serves(local))  # the forward ends with the job
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=5)
