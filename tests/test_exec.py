"""``client.jobs.exec`` on the real local platform: inside the job's sandbox."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from yarl import URL

from apolo_jupyter import (
    Client,
    IllegalArgumentError,
    JobDescription,
    ResourceNotFound,
    StdStream,
    StdStreamError,
)
from apolo_jupyter.local._exec import session_processes

from .conftest import wait_finished, wait_running


async def running_job(
    client: Client, command: str, *, env: dict[str, str] | None = None, **kw: object
) -> JobDescription:
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command=command,
        env=env or {},
        **kw,  # type: ignore[arg-type]
    )
    job = await wait_running(client, job.id)
    assert job.status == "running", job.history
    return job


@pytest.fixture
async def ready_job(client: Client) -> AsyncIterator[JobDescription]:
    """A job that wrote /tmp/marker and then waits (ready once the file exists)."""
    job = await running_job(
        client,
        "sh -c 'echo written-by-the-job > /tmp/marker; exec sleep 300'",
        env={"JOB_VAR": "from the job"},
        working_dir="/work/here",
    )
    await until_output(client, job.id, "sh -c 'test -f /tmp/marker && echo yes'", "yes")
    yield job
    await client.jobs.kill(job.id)


async def collect(stream: StdStream) -> tuple[bytes, bytes, int | None]:
    """(stdout, stderr, exit code) until the stream ends."""
    out, err = bytearray(), bytearray()
    try:
        while (msg := await stream.read_out()) is not None:
            (out if msg.fileno == 1 else err).extend(msg.data)
    except StdStreamError as exc:
        return bytes(out), bytes(err), exc.exit_code
    return bytes(out), bytes(err), None


async def run(client: Client, job_id: str, cmd: str) -> tuple[bytes, bytes, int | None]:
    async with client.jobs.exec(job_id, cmd, stdout=True, stderr=True) as stream:
        return await collect(stream)


async def until_output(client: Client, job_id: str, cmd: str, want: str) -> None:
    deadline = time.monotonic() + 30
    while want not in (await run(client, job_id, cmd))[0].decode():
        assert time.monotonic() < deadline, f"{cmd!r} never printed {want!r}"
        await asyncio.sleep(0.05)


async def test_exec_sees_the_jobs_files_env_workdir_and_processes(
    client: Client, ready_job: JobDescription
) -> None:
    out, err, code = await run(
        client,
        ready_job.id,
        'sh -c \'cat /tmp/marker; echo "$JOB_VAR"; pwd; '
        'cat /proc/[0-9]*/cmdline | tr "\\0" " "; echo; echo oops >&2; exit 3\'',
    )
    text = out.decode()
    assert code == 3
    assert "written-by-the-job" in text  # the job's own /tmp, not a fresh one
    assert "from the job" in text
    assert "/work/here" in text
    assert "sleep 300" in text  # the job's processes: same pid namespace
    assert err == b"oops\n"  # stderr on its own channel


async def test_exec_has_no_capabilities(
    client: Client, ready_job: JobDescription
) -> None:
    out, _, code = await run(
        client, ready_job.id, "grep -E 'Cap(Eff|Bnd)' /proc/self/status"
    )
    assert code == 0
    assert out.decode().split() == ["CapEff:", "0000000000000000", "CapBnd:", "0" * 16]


async def test_exec_stdin_and_exit_code_zero(
    client: Client, ready_job: JobDescription
) -> None:
    async with client.jobs.exec(
        ready_job.id, "head -c 6", stdin=True, stdout=True, stderr=True
    ) as stream:
        await stream.write_in(b"hello\n")
        out, err, code = await collect(stream)
    assert (out, err, code) == (b"hello\n", b"", 0)


async def test_exec_with_a_tty_resizes_and_takes_ctrl_c(
    client: Client, ready_job: JobDescription
) -> None:
    async with client.jobs.exec(
        ready_job.id, "sh", tty=True, stdin=True, stdout=True
    ) as stream:
        await stream.resize(h=33, w=111)
        await stream.write_in(b"stty size; test -t 0 && echo tty-$((6*7))\n")
        seen = await read_until(stream, b"tty-42")
        assert b"33 111" in seen
        # Ctrl-C interrupts the foreground command, not the shell.
        await stream.write_in(b"sleep 100\n")
        await asyncio.sleep(0.3)
        await stream.write_in(b"\x03")
        await stream.write_in(b"echo code-$?\n")
        await read_until(stream, b"code-130")
        await stream.write_in(b"exit 5\n")
        with pytest.raises(StdStreamError) as info:
            while await stream.read_out() is not None:
                pass
    assert info.value.exit_code == 5


async def read_until(stream: StdStream, want: bytes) -> bytes:
    seen = bytearray()
    while want not in seen:
        msg = await asyncio.wait_for(stream.read_out(), 30)
        assert msg is not None, f"stream ended before {want!r}: {bytes(seen)!r}"
        seen.extend(msg.data)
    return bytes(seen)


def unique_sleep() -> str:
    """A sleep length no other run on this machine uses: processes are found
    by it among all the host's, and a test run may have company."""
    return f"{700 + secrets.randbelow(100)}.{secrets.randbelow(10**6):06d}"


def host_processes_with(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(name))
            except OSError:
                pass
    return found


def until_none(marker: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while host_processes_with(marker):
        assert time.monotonic() < deadline, f"processes with {marker!r} left behind"
        time.sleep(0.02)


async def test_a_dropped_exec_connection_leaves_nothing_behind(
    client: Client, ready_job: JobDescription
) -> None:
    marker = unique_sleep()
    async with client.jobs.exec(
        ready_job.id,
        f"sh -c 'sleep {marker} & sleep {marker} & echo started; wait'",
        stdout=True,
        stderr=True,
    ) as stream:
        await read_until(stream, b"started")
        deadline = time.monotonic() + 30
        while len(host_processes_with(f"sleep\0{marker}")) < 2:  # both exec'd
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        leader = min(host_processes_with(marker))
    # The client closed mid-command: the platform kills the whole session.
    await asyncio.to_thread(until_none, marker)
    assert session_processes(leader) == []
    # The job itself goes on.
    assert (await client.jobs.status(ready_job.id)).status == "running"


async def test_exec_dies_with_the_job(client: Client) -> None:
    job = await running_job(client, "sleep 300")
    marker = unique_sleep()
    async with client.jobs.exec(
        job.id, f"sh -c 'echo started; exec sleep {marker}'", stdout=True
    ) as stream:
        await read_until(stream, b"started")
        await client.jobs.kill(job.id)
        _, _, code = await asyncio.wait_for(collect(stream), 30)
    assert code is not None and code != 0
    await asyncio.to_thread(until_none, marker)


async def test_env_is_not_on_any_command_line(client: Client) -> None:
    # Both are this run's own: another run's processes on the machine can show
    # neither.
    secret = f"s3cr3t-{secrets.token_hex(8)}"
    marker = unique_sleep()
    job = await running_job(client, "sleep 300", env={"TOKEN": secret})
    try:
        async with client.jobs.exec(
            job.id, f"sh -c 'echo \"$TOKEN\"; exec sleep {marker}'", stdout=True
        ) as stream:
            assert secret.encode() in await read_until(stream, secret.encode())
            deadline = time.monotonic() + 30
            while not host_processes_with(f"sleep\0{marker}"):  # exec'd
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            assert host_processes_with(secret) == []
    finally:
        await client.jobs.kill(job.id)


async def test_bad_exec_requests_say_what_to_do(
    client: Client, ready_job: JobDescription
) -> None:
    with pytest.raises(IllegalArgumentError, match="Command is required"):
        await run(client, ready_job.id, "  ")
    with pytest.raises(IllegalArgumentError, match="'no-such-tool' was not found"):
        await run(client, ready_job.id, "no-such-tool --help")
    with pytest.raises(IllegalArgumentError, match="cannot split"):
        await run(client, ready_job.id, "echo 'unclosed")
    with pytest.raises(IllegalArgumentError, match="tty mode"):
        async with client.jobs.exec(
            ready_job.id, "true", tty=True, stdout=True, stderr=True
        ):
            pass
    with pytest.raises(ResourceNotFound, match="not found"):
        await run(client, "job-00000000-0000-4000-8000-000000000000", "true")


async def test_exec_on_a_finished_job_is_refused(client: Client) -> None:
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command="true",
    )
    await wait_finished(client, job.id)
    with pytest.raises(ResourceNotFound, match="succeeded, not running"):
        await run(client, job.id, "true")


async def test_exec_cannot_be_led_out_of_the_sandbox_by_its_working_dir(
    client: Client, tmp_path: Path
) -> None:
    """A hostile job swaps its working directory (in a writable volume) for a
    symlink to a host folder. An exec must not start there: its working
    directory would be the host folder, readable through /proc/<pid>/cwd."""
    host_dir = tmp_path / "host-only"
    host_dir.mkdir()
    (host_dir / "host-secret").write_text("seen-from-the-host\n")
    folder = f"exec-wd-{uuid.uuid4().hex[:8]}"
    await client.storage.mkdir(URL(f"storage:{folder}/w"), parents=True)
    job = await running_job(
        client,
        f"sh -c 'cd / && rm -r /var/data/w && ln -s {host_dir} /var/data/w "
        "&& touch /tmp/swapped && exec sleep 300'",
        working_dir="/var/data/w",
        volumes=[client.parse.volume(f"storage:{folder}:/var/data")],
    )
    try:
        await until_output(
            client, job.id, "sh -c 'test -e /tmp/swapped && echo yes'", "yes"
        )
        out, err, _ = await run(client, job.id, "sh -c 'cat host-secret; pwd -P'")
        assert b"seen-from-the-host" not in out + err
        assert str(host_dir).encode() not in out
    finally:
        await client.jobs.kill(job.id)
