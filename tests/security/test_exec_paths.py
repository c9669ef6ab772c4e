"""The platform finds a job's program and working directory inside the job's
own filesystem: a symlink the job planted never makes the platform look at the
host's, so what a job learns of a request never depends on which host paths
exist (no oracle of the host's files)."""

from __future__ import annotations

import shlex
import stat
import uuid
from pathlib import Path

import pytest

from apolo_jupyter import Client, IllegalArgumentError, JobDescription

from ..conftest import Platform, wait_running
from ..test_exec import run, until_output
from ._helpers import finished


def _host_tool(tmp_path: Path) -> Path:
    """An executable that exists on the host only (no job sees tmp_path)."""
    folder = tmp_path / "host-only"
    folder.mkdir()
    tool = folder / "host-tool"
    tool.write_text("#!/bin/sh\necho ran\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return tool


async def test_exec_finds_programs_in_the_jobs_root_not_the_hosts(
    client: Client, tmp_path: Path
) -> None:
    tool = _host_tool(tmp_path)
    missing = tmp_path / "no-such-host-path"
    plant = (
        f"ln -s {tool} /real; ln -s {missing} /none; "
        f"ln -s {tool.parent} /hostbin; ln -s {missing} /nobin; "
        "touch /tmp/planted; exec sleep 300"
    )
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command=f"sh -c {shlex.quote(plant)}",
        env={"PATH": "/hostbin:/nobin:/usr/bin:/bin"},
    )
    try:
        await wait_running(client, job.id)
        await until_output(
            client, job.id, "sh -c 'test -e /tmp/planted && echo y'", "y"
        )
        # Both symlinks dangle in the job: the same answer, whatever the host has.
        for name in ("/real", "/none"):
            with pytest.raises(IllegalArgumentError, match="does not exist in the job"):
                await run(client, job.id, name)
        with pytest.raises(IllegalArgumentError, match="'host-tool' was not found"):
            await run(client, job.id, "host-tool")
        # What the job does have is found, through its own symlinks too.
        out, _, code = await run(
            client, job.id, "sh -c 'ln -sf /usr/bin/env /tmp/e; echo ok'"
        )
        assert (out, code) == (b"ok\n", 0)
        out, _, code = await run(client, job.id, "/tmp/e echo via-link")
        assert (out, code) == (b"via-link\n", 0)
    finally:
        await client.jobs.kill(job.id)


async def _ends(client: Client, job: JobDescription) -> tuple[str, str, str]:
    job = await finished(client, job.id)
    description = job.history.description.replace(str(job.id), "<id>")
    return job.status, job.history.reason, description


async def test_a_jobs_start_never_looks_at_host_paths_through_its_volume(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    """A volume holds symlinks to host paths, one that exists and one that does
    not: a job whose program or working directory goes through either ends the
    same way."""
    tool = _host_tool(tmp_path)
    missing = tmp_path / "no-such-host-path"
    folder = f"oracle-{uuid.uuid4().hex[:8]}"
    host = platform.paths.storage_dir / "local" / "default" / folder
    host.mkdir(parents=True)
    (host / "exists").symlink_to(tool)
    (host / "missing").symlink_to(missing)
    (host / "exists-dir").symlink_to(tool.parent)
    (host / "missing-dir").symlink_to(missing)
    volume = client.parse.volume(f"storage:{folder}:/mnt/v:ro")

    async def start(command: str, working_dir: str | None = None) -> JobDescription:
        return await client.jobs.start(
            image=client.parse.remote_image("ubuntu"),
            preset_name="cpu-small",
            command=command,
            volumes=[volume],
            working_dir=working_dir,
        )

    programs = [
        await _ends(client, await start(f"/mnt/v/{n}")) for n in ("exists", "missing")
    ]
    assert programs[0] == programs[1], programs
    assert programs[0][0] == "failed", programs
    folders = [
        await _ends(client, await start("true", f"/mnt/v/{n}"))
        for n in ("exists-dir", "missing-dir")
    ]
    assert folders[0] == folders[1], folders
    assert folders[0][0] == "failed", folders
    # The volume's own files and folders are still checked before the start.
    (host / "sub").mkdir()
    ok = await _ends(client, await start("true", "/mnt/v/sub"))
    assert ok[0] == "succeeded", ok
