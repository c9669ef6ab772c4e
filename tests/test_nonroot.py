"""The local platform run by a normal user, not root (JupyterHub, a laptop):
jobs, volumes, secrets, disks, exec with and without a terminal, attach, top
and signals, against a daemon that runs as an unprivileged account
(``_nonroot``). The test connects to it with its URL and token.

As a normal user, bubblewrap puts each job in user namespaces of its own,
nested two deep (``local/_userns``); exec must enter both, in order, and end up
as the job's processes are: the user's uid, no capabilities."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from yarl import URL

from apolo_jupyter import Client, JobDescription, JobStatus, get
from apolo_jupyter.local._bwrap import candidates
from apolo_jupyter.local._exec_command import (
    HOST_ENV,
    command_line,
    env_file,
    make_target,
    sandbox_ready,
)
from apolo_jupyter.local._sandbox import SandboxMode, build_view
from apolo_jupyter.local._userns import UserNs, open_owner

from . import _nonroot
from ._nonroot import NonRootPlatform, as_account
from .conftest import until, wait_finished, wait_running
from .security.test_exec_chain import IMMUTABLE, _paths_before_the_command
from .test_exec import (
    collect,
    read_until,
    run,
    unique_sleep,
    until_none,
)

UBUNTU = "ubuntu"


@pytest.fixture(scope="module")
def nonroot() -> Iterator[NonRootPlatform]:
    account = _nonroot.make_account()
    try:
        with _nonroot.workspace() as base:
            bin_dir = _nonroot.python_env(base)
            platform = _nonroot.start(account, bin_dir, base)
            try:
                yield platform
            finally:
                _nonroot.stop(platform)
    finally:
        if account.made:  # whatever a failed start left: the account's only
            for proc in _nonroot.processes_of(account):
                proc.kill()
        _nonroot.remove_account(account)


@pytest.fixture
async def client(nonroot: NonRootPlatform) -> AsyncIterator[Client]:
    async with get(nonroot.url, nonroot.token, quiet=True) as c:
        yield c


async def _running(client: Client, command: str, **kw: object) -> JobDescription:
    job = await client.jobs.start(
        image=client.parse.remote_image(UBUNTU),
        preset_name="cpu-small",
        command=command,
        **kw,  # type: ignore[arg-type]
    )
    job = await wait_running(client, job.id)
    assert job.status == JobStatus.RUNNING, job.history
    return job


async def _log(client: Client, job_id: str) -> str:
    async with client.jobs.monitor(job_id) as chunks:
        return b"".join([chunk async for chunk in chunks]).decode()


def _find_payload(marker: str) -> psutil.Process | None:
    """The job's ``sleep <marker>`` on the host (not the bwrap that starts it)."""
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] == ["sleep", marker]:
            return proc
    return None


def _payload(marker: str) -> psutil.Process:
    found = _find_payload(marker)
    assert found is not None, f"no process runs sleep {marker}"
    return found


@pytest.fixture
async def sleeper(client: Client) -> AsyncIterator[tuple[JobDescription, str]]:
    """A running job that wrote /tmp/marker, and the marker of its sleep."""
    marker = unique_sleep()
    job = await client.jobs.start(
        image=client.parse.remote_image(UBUNTU),
        preset_name="cpu-small",
        command=f"sh -c 'echo from-the-job > /tmp/marker; exec sleep {marker}'",
        env={"JOB_VAR": "job value"},
        working_dir="/work/here",
    )
    try:
        assert (await wait_running(client, job.id)).status == JobStatus.RUNNING
        deadline = asyncio.get_running_loop().time() + 30
        while b"from-the-job" not in (await run(client, job.id, "cat /tmp/marker"))[0]:
            assert asyncio.get_running_loop().time() < deadline, "exec never worked"
            await asyncio.sleep(0.05)
        yield job, marker
    finally:
        await client.jobs.kill(job.id)


def test_the_daemon_runs_as_the_account_with_the_sandbox(
    nonroot: NonRootPlatform,
) -> None:
    assert psutil.Process(nonroot.info.pid).uids().real == nonroot.account.uid
    status = nonroot.run("local", "status")
    assert status.returncode == 0, status.stderr
    # bubblewrap, not the unisolated fallback: what the rest checks is real.
    assert "sandbox: bubblewrap" in status.stdout, status.stdout


async def test_jobs_volumes_secrets_and_disks_as_a_normal_user(
    client: Client, nonroot: NonRootPlatform
) -> None:
    folder = f"nr-{uuid.uuid4().hex[:8]}"
    await client.storage.mkdir(URL(f"storage:{folder}"), parents=True)
    await client.storage.create(URL(f"storage:{folder}/in.txt"), b"input")
    key = f"nr{uuid.uuid4().hex[:8]}"
    await client.secrets.add(key, b"secret-value")
    disk = await client.disks.create(2**20, timedelta(hours=1))
    volumes = client.parse.volumes(
        [f"storage:{folder}:/mnt/data", f"secret:{key}:/var/secrets/s"]
    )
    job = await client.jobs.start(
        image=client.parse.remote_image(UBUNTU),
        preset_name="cpu-small",
        command="sh -c 'id -u; cat /mnt/data/in.txt; echo; cat /var/secrets/s; "
        "echo; echo out > /mnt/data/out.txt; echo kept > /mnt/d/f; cat /mnt/d/f'",
        volumes=volumes.volumes,
        secret_files=volumes.secret_files,
        disk_volumes=client.parse.volumes([f"disk:{disk.id}:/mnt/d"]).disk_volumes,
    )
    done = await wait_finished(client, job.id)
    log = await _log(client, job.id)
    assert done.status == JobStatus.SUCCEEDED, (done.history, log)
    # The job is the user: its uid, and what it writes to storage is the user's.
    assert log.split() == [str(nonroot.account.uid), "input", "secret-value", "kept"]
    out = nonroot.paths.storage_dir / "local" / "default" / folder / "out.txt"
    assert out.read_text() == "out\n"
    assert out.stat().st_uid == nonroot.account.uid
    async with client.storage.open(URL(f"storage:{folder}/out.txt")) as chunks:
        assert b"".join([c async for c in chunks]) == b"out\n"
    await client.disks.rm(disk.id)


async def test_a_read_only_volume_stays_so_in_a_user_namespace_of_the_jobs(
    client: Client, nonroot: NonRootPlatform
) -> None:
    """The job's mounts belong to the outer user namespace: a job that makes a
    user namespace of its own (and is root there) cannot remount one rw."""
    folder = f"nr-{uuid.uuid4().hex[:8]}"
    await client.storage.mkdir(URL(f"storage:{folder}"), parents=True)
    job = await client.jobs.start(
        image=client.parse.remote_image(UBUNTU),
        preset_name="cpu-small",
        command="sh -c 'touch /mnt/ro/a 2>/dev/null || echo refused; "
        'unshare -rm sh -c "id -u; mount -o remount,rw,bind /mnt/ro 2>/dev/null '
        "|| echo no-remount; touch /mnt/ro/b 2>/dev/null || echo refused\"'",
        volumes=client.parse.volumes([f"storage:{folder}:/mnt/ro:ro"]).volumes,
    )
    done = await wait_finished(client, job.id)
    log = await _log(client, job.id)
    assert log.split() == ["refused", "0", "no-remount", "refused"], log
    assert done.status == JobStatus.SUCCEEDED, done.history
    host = nonroot.paths.storage_dir / "local" / "default" / folder
    assert list(host.iterdir()) == []


async def test_exec_runs_inside_the_job_as_the_job(
    client: Client, nonroot: NonRootPlatform, sleeper: tuple[JobDescription, str]
) -> None:
    job, marker = sleeper
    out, err, code = await run(
        client,
        job.id,
        'sh -c \'cat /tmp/marker; echo "$JOB_VAR"; pwd; id -u; '
        "readlink /proc/self/ns/user; echo oops >&2; exit 3'",
    )
    assert (code, err) == (3, b"oops\n"), out
    assert out.decode().splitlines() == [
        "from-the-job",  # the job's own /tmp
        "job value",  # its environment
        "/work/here",  # its working directory
        str(nonroot.account.uid),  # the user, as the job
        # the job's own user namespace (the inner one)
        os.readlink(f"/proc/{_payload(marker).pid}/ns/user"),
    ]
    out, _, _ = await run(client, job.id, "cat /proc/self/status")
    status = dict(line.split(":\t", 1) for line in out.decode().splitlines())
    assert status["CapEff"] == "0" * 16 and status["NoNewPrivs"] == "1", status
    # The job's processes (its pid namespace), and no namespace descriptor of
    # the platform's left to the command.
    out, _, _ = await run(client, job.id, "ps -eo args")
    assert f"sleep {marker}" in out.decode().splitlines()
    out, _, _ = await run(client, job.id, "ls -l /proc/self/fd/")
    assert b"user:[" not in out and b"memfd:" not in out, out


async def test_exec_with_a_terminal(
    client: Client, sleeper: tuple[JobDescription, str]
) -> None:
    job, _ = sleeper
    async with client.jobs.exec(
        job.id,
        "sh -c 'read line; test -t 0 && echo tty; stty size; echo got $line; exit 5'",
        tty=True,
        stdin=True,
        stdout=True,
    ) as stream:
        await stream.resize(h=33, w=99)
        await stream.write_in(b"hello\r")
        out, _, code = await collect(stream)
    assert code == 5
    assert out.replace(b"\r", b"").split(b"\n")[1:4] == [b"tty", b"33 99", b"got hello"]


async def test_a_dropped_exec_leaves_nothing_behind(
    client: Client, sleeper: tuple[JobDescription, str]
) -> None:
    job, _ = sleeper
    marker = unique_sleep()
    async with client.jobs.exec(
        job.id,
        f"sh -c 'sleep {marker} & echo started; exec sleep {marker}'",
        stdout=True,
    ) as stream:
        await read_until(stream, b"started")
    await asyncio.to_thread(until_none, marker)
    assert (await client.jobs.status(job.id)).status == JobStatus.RUNNING


async def test_attach_top_and_signal(client: Client) -> None:
    script = (
        "import sys\n"
        "print('ready', flush=True)\n"
        "line = input()\n"
        "print('got', line[::-1], flush=True)\n"
        "while True: pass\n"
    )
    job = await _running(client, f'python3 -c "{script}"', tty=True)
    async with client.jobs.attach(job.id, tty=True, stdin=True, stdout=True) as stream:
        await stream.write_in(b"olleh\r")
        await read_until(stream, b"got hello")
    busiest = 0.0
    async with client.jobs.top(job.id) as samples:
        async for sample in samples:
            busiest = max(busiest, sample.cpu)
            assert sample.memory_bytes > 0
            if busiest > 0.3:
                break
    assert busiest > 0.3  # the busy loop, seen by a non-root top
    await client.jobs.send_signal(job.id)  # SIGKILL, as the real platform
    done = await wait_finished(client, job.id)
    assert done.status == JobStatus.FAILED and done.history.exit_code == 137


async def test_the_privileged_part_of_a_users_exec_reads_only_immutable_folders(
    client: Client,
    nonroot: NonRootPlatform,
    sleeper: tuple[JobDescription, str],
    tmp_path: Path,
) -> None:
    """As root's (``security/test_exec_chain``): what the chain opens inside
    the job before the command runs lies in folders the job cannot change.
    As a normal user, the second nsenter holds the rights of the outer user
    namespace there (over the job's mounts) until it has entered the inner
    one; setsid and setpriv already run without capabilities."""
    _, marker = sleeper
    init = _payload(marker).ppid()
    env = {"PATH": "/usr/bin:/bin"}
    target = make_target("job", SandboxMode.BWRAP, init, env, "/")
    assert target.user_ns is UserNs.NESTED
    strace_as = [] if not nonroot.account.made else ["-u", nonroot.account.name]
    for tty in (False, True):
        env_fd, owner_fd = env_file(env), open_owner(init)
        cmd = command_line(target, ["true"], tty=tty, env_fd=env_fd, owner_fd=owner_fd)
        log = tmp_path / f"trace-{tty}"
        master, slave = pty.openpty()
        try:
            done = subprocess.run(
                ["strace", "-f", "-qq", "-e", "trace=%file", *strace_as,
                 "-o", str(log), *cmd],
                stdin=slave if tty else subprocess.DEVNULL,
                stdout=slave if tty else subprocess.PIPE,
                stderr=slave if tty else subprocess.PIPE,
                pass_fds=(env_fd, owner_fd),
                start_new_session=tty,
                timeout=60,
                check=False,
            )  # fmt: skip
        finally:
            for fd in (env_fd, owner_fd, master, slave):
                os.close(fd)
        assert done.returncode == 0, (done, log.read_text())
        loader = cmd[cmd.index("--", cmd.index("/usr/bin/setpriv")) + 1]
        paths = _paths_before_the_command(log.read_text(), loader)
        assert "/usr/bin/setpriv" in paths and "/etc/ld.so.cache" in paths, paths
        outside = [
            p
            for p in paths
            if p != "/" and not any(p == f or p.startswith(f + "/") for f in IMMUTABLE)
        ]
        assert outside == [], outside


def test_exec_enters_a_sandbox_that_lives_in_the_namespace_owning_it(
    nonroot: NonRootPlatform,
) -> None:
    """The other layout a user's bubblewrap can make (``_userns.OWN``): with
    ``--uid 0`` it keeps the sandbox in the one user namespace it made. exec
    enters it in one step and ends as that sandbox's uid, without capabilities."""
    marker = unique_sleep()
    argv = [candidates()[0].path, *build_view([], []).args(), "--uid", "0",
            "--gid", "0", "--", "sleep", marker]  # fmt: skip
    account = nonroot.account
    sandbox = subprocess.Popen(
        argv,
        env=HOST_ENV,
        cwd="/",
        start_new_session=True,
        **as_account(account),
    )
    try:
        until(lambda: _find_payload(marker) is not None)
        init = _payload(marker).ppid()
        until(lambda: sandbox_ready(init))
        target = make_target("job", SandboxMode.BWRAP, init, {"PATH": "/bin"}, "/")
        assert target.user_ns is UserNs.OWN
        env_fd, owner_fd = env_file(target.env), open_owner(init)
        try:
            cmd = command_line(
                target,
                ["sh", "-c", "id -u; grep CapEff /proc/self/status; "
                 "readlink /proc/self/ns/user; ls /proc/self/fd"],
                env_fd=env_fd,
                owner_fd=owner_fd,
            )  # fmt: skip
            done = subprocess.run(
                cmd,
                env=HOST_ENV,
                cwd="/",
                **as_account(account),
                pass_fds=(env_fd, owner_fd),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            os.close(env_fd)
            os.close(owner_fd)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.split("\n")
        assert lines[:3] == [
            "0",
            "CapEff:\t" + "0" * 16,
            os.readlink(f"/proc/{init}/ns/user"),
        ]
        assert lines[3:] == ["0", "1", "2", "3", ""]  # ls's own fds: nothing leaked
    finally:
        tree = [
            sandbox.pid,
            *(p.pid for p in psutil.Process(sandbox.pid).children(True)),
        ]
        for pid in tree:  # the init too: a sandbox killed mid-start keeps it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        sandbox.wait()
        until_none(marker)
