"""exec into a hostile job never runs the job's code with the platform's
privileges: nothing the job can write is loaded or executed before the exec'd
command has dropped every capability (see ``local/_exec.py``).

When the platform runs as root (as in CI), ``exec`` enters the job through
root's ``nsenter`` and drops capabilities in the job's own ``setpriv``. A job
that could swap the folders the dynamic loader reads (``/lib``, ``/lib64``) or
mount a volume over ``/usr`` or ``/etc`` would have its own library loaded
into that ``setpriv`` while it still holds every capability, and could then
read any host file (``open_by_handle_at``)."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import uuid
from pathlib import Path

import aiohttp
import psutil
import pytest

from apolo_jupyter import Client, JobDescription, JobStatus, get
from apolo_jupyter.local._exec_command import command_line, env_file, make_target
from apolo_jupyter.local._sandbox import SandboxMode

from ..conftest import Platform, wait_running
from ..test_exec import collect, run, until_output
from ._helpers import job_body, post_job

# Loaded by a privileged process, it leaves a note in the job's /tmp (where the
# job and the test read it); loaded by the job's own capless processes, nothing.
EVIL_SOURCE = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void loaded(void) {
    char line[256], caps[128] = "";
    FILE *status = fopen("/proc/self/status", "r");
    if (!status) return;
    while (fgets(line, sizeof line, status))
        if (!strncmp(line, "CapEff:", 7)) strncpy(caps, line, sizeof caps - 1);
    fclose(status);
    if (strstr(caps, "0000000000000000")) return;
    int fd = open("/tmp/pwned", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) { dprintf(fd, "privileged pid %d %s", getpid(), caps); close(fd); }
}
"""
# The host's, read-only in every job (and the kernel's /proc): where programs and
# the loader come from. Not /dev: the job's own tmpfs, which it may write.
IMMUTABLE = (
    "/usr",
    "/etc",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
)
STUB_SOURCE = "void apolo_stub(void) {}\n"
LIB = "libcap-ng.so.0"  # what setpriv (the chain's capability dropper) links

# In the job: a copy of /usr/lib whose libcap-ng is the evil one, put in place of
# the loader's folders (/lib, /lib64), and harmless swaps of /bin and /sbin: by
# renaming a symlink over each, or by moving it away and planting one.
SWAP_SCRIPT = f"""
set -u
mkdir -p /tmp/fake/x86_64-linux-gnu
for f in /usr/lib/*; do
  [ "$f" = /usr/lib/x86_64-linux-gnu ] || ln -s "$f" /tmp/fake/
done
for f in /usr/lib/x86_64-linux-gnu/*; do ln -s "$f" /tmp/fake/x86_64-linux-gnu/; done
rm /tmp/fake/x86_64-linux-gnu/{LIB}
cp /poc/{LIB} /tmp/fake/x86_64-linux-gnu/{LIB}
mkdir /tmp/fake64 && for f in /usr/lib64/*; do ln -s "$f" /tmp/fake64/; done
swap() {{
  ln -s "$2" "$1.new"
  if mv -T "$1.new" "$1" 2>>/tmp/err; then echo "swapped $1"; return; fi
  rm -f "$1.new"
  if mv -T "$1" "$1.old" 2>>/tmp/err; then
    ln -s "$2" "$1" && echo "swapped $1 (moved away)"
  else echo "kept $1"; fi
}}
swap /lib /tmp/fake
swap /lib64 /tmp/fake64
swap /bin /usr/bin
swap /sbin /usr/sbin
cat /tmp/err
echo READY
exec sleep 300
"""


def _build(tmp_path: Path) -> Path:
    """The evil libcap-ng: runs its constructor, then gives setpriv the real
    library's symbols (it needs the real one by absolute path)."""
    (tmp_path / "evil.c").write_text(EVIL_SOURCE)
    (tmp_path / "stub.c").write_text(STUB_SOURCE)
    stub = tmp_path / "stub.so"
    real = f"/usr/lib/x86_64-linux-gnu/{LIB}"
    assert Path(real).exists(), f"{real} is what setpriv links here"
    gcc = ["gcc", "-shared", "-fPIC"]
    subprocess.run(
        [*gcc, "-o", str(stub), str(tmp_path / "stub.c"), f"-Wl,-soname,{real}"],
        check=True,
    )
    evil = tmp_path / LIB
    subprocess.run(
        [
            *gcc,
            "-o",
            str(evil),
            str(tmp_path / "evil.c"),
            f"-Wl,-soname,{LIB}",
            "-Wl,--no-as-needed",
            str(stub),
        ],
        check=True,
        cwd=tmp_path,
    )
    return evil


async def _read(client: Client, job: JobDescription, path: str) -> str:
    out, _, _ = await run(client, job.id, f"sh -c 'cat {path} 2>/dev/null; true'")
    return out.decode(errors="replace")


@pytest.mark.parametrize("tty", [False, True])
async def test_a_job_that_swaps_the_loaders_folders_gets_no_privileged_code(
    client: Client, tmp_path: Path, tty: bool
) -> None:
    evil = _build(tmp_path)
    folder = f"chain-{uuid.uuid4().hex[:8]}"
    await client.storage.mkdir(client.parse.str_to_uri(f"storage:{folder}"))
    for name, data in ((LIB, evil.read_bytes()), ("swap.sh", SWAP_SCRIPT.encode())):
        uri = client.parse.str_to_uri(f"storage:{folder}/{name}")
        await client.storage.create(uri, data)
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command="bash /poc/swap.sh",
        volumes=[client.parse.volume(f"storage:{folder}:/poc:ro")],
    )
    try:
        job = await wait_running(client, job.id)
        assert job.status == JobStatus.RUNNING, job.history
        log = b""
        async with client.jobs.monitor(job.id) as chunks:
            async for chunk in chunks:
                log += chunk
                if b"READY" in log:
                    break
        # Whatever the job managed to swap, an exec still works and drops
        # every capability before anything of the job's is loaded.
        if tty:
            async with client.jobs.exec(
                job.id, "true", tty=True, stdin=True, stdout=True
            ) as stream:
                _, _, code = await collect(stream)
            assert code == 0
        else:
            assert b"READY" in log, log.decode()
            await until_output(client, job.id, "echo exec-ran", "exec-ran")
        pwned = await _read(client, job, "/tmp/pwned")
        assert pwned == "", f"job code ran with capabilities: {pwned}\n{log!r}"
        # The loader's folders cannot be swapped at all.
        assert b"swapped" not in log, log.decode()
    finally:
        await client.jobs.kill(job.id)


SYSTEM_TARGETS = [
    "/usr",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/local/lib",
    "/etc",
    "/etc/ld.so.preload",
    "/lib",
    "/lib64/x",
    "/bin",
    "/sbin",
    "/proc/sys",
    "/dev/shm",
]


@pytest.fixture(scope="module")
def sources(platform: Platform) -> dict[str, dict[str, str]]:
    """A storage folder, a secret and a disk that exist: a volume of each kind
    that only its mount path could make wrong."""
    folder = f"sys-{uuid.uuid4().hex[:8]}"
    (platform.paths.storage_dir / "local" / "default" / folder).mkdir(parents=True)

    async def make() -> str:
        async with get(platform.url, platform.token, quiet=True) as client:
            await client.secrets.add("sysfolder", b"/tmp/evil.so\n")
            disk = await client.disks.create(2**20)
            return disk.id

    disk_id = asyncio.run(make())
    base = "local/local/default"
    return {
        "volumes": {"src_storage_uri": f"storage://{base}/{folder}"},
        "secret_volumes": {"src_secret_uri": f"secret://{base}/sysfolder"},
        "disk_volumes": {"src_disk_uri": f"disk://{base}/{disk_id}"},
    }


@pytest.mark.parametrize("target", SYSTEM_TARGETS)
async def test_no_volume_of_any_kind_covers_a_system_folder(
    platform: Platform, sources: dict[str, dict[str, str]], target: str
) -> None:
    """A volume there would put files the job controls where the privileged
    part of exec (and every program) looks for its loader and libraries."""
    async with aiohttp.ClientSession() as session:
        for key, item in sources.items():
            control = job_body("true", **{key: [{**item, "dst_path": "/mnt/v"}]})
            status, answer = await post_job(
                session, platform.url, platform.token, control
            )
            assert status in (200, 201, 202), (key, answer)
            body = job_body("true", **{key: [{**item, "dst_path": target}]})
            status, answer = await post_job(session, platform.url, platform.token, body)
            assert status == 400, (key, target, answer)
            assert "system folder" in str(answer), answer


def _payload(marker: str) -> int:
    """Host pid of the job's ``sleep <marker>``."""
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] == ["sleep", marker]:
            return int(proc.pid)
    raise AssertionError(f"no process runs sleep {marker}")


_FILE_CALL = re.compile(r'^\d+\s+(\w+)\((?:AT_FDCWD, |(-?\d+), )?"([^"]*)"')


def _paths_before_the_command(trace: str, command: str) -> list[str]:
    """The paths that the chain resolves inside the job (after nsenter's chroot)
    until it executes ``command``, with capabilities gone."""
    paths: list[str] = []
    inside = False
    for line in trace.splitlines():
        if re.match(r"^\d+\s+chroot\(", line):
            inside = True
            continue
        match = _FILE_CALL.match(line)
        if not inside or match is None:
            continue
        call, dirfd, path = match.groups()
        if call == "execve" and path == command:
            return paths
        if path == "" or (dirfd is not None and not path.startswith("/")):
            continue  # an open fd (AT_EMPTY_PATH), or relative to one
        paths.append(path)
    raise AssertionError(f"the chain never ran {command}:\n{trace}")


async def test_the_privileged_part_of_exec_reads_only_immutable_host_folders(
    client: Client, tmp_path: Path
) -> None:
    """What nsenter, setsid and setpriv open or execute inside the job, before
    capabilities are gone, all lies in the system folders, and in the job each
    of those is a read-only mount point that it cannot rename or replace."""
    marker = f"{uuid.uuid4().int % 10**6}.{uuid.uuid4().int % 10**6}"
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command=f"sleep {marker}",
    )
    try:
        await wait_running(client, job.id)
        await until_output(client, job.id, "echo up", "up")
        out, _, _ = await run(client, job.id, "cat /proc/self/mountinfo")
        mounts = {line.split()[4]: line.split() for line in out.decode().splitlines()}
        present = [f for f in IMMUTABLE if f in mounts]
        for folder in ("/usr", "/etc", "/lib", "/lib64", "/bin", "/sbin", "/proc"):
            assert folder in present, (folder, sorted(mounts))
        for folder in present:
            if folder != "/proc":
                assert "ro" in mounts[folder][5].split(","), mounts[folder]
        init = psutil.Process(_payload(marker)).ppid()
        env = {"PATH": "/usr/bin:/bin"}
        target = make_target(job.id, SandboxMode.BWRAP, init, env, "/")
        for tty in (False, True):
            env_fd = env_file(env)
            cmd = command_line(target, ["true"], tty=tty, env_fd=env_fd)
            log = tmp_path / f"trace-{tty}"
            master, slave = pty.openpty()
            try:
                done = subprocess.run(
                    ["strace", "-f", "-qq", "-e", "trace=%file", "-o", str(log), *cmd],
                    stdin=slave if tty else subprocess.DEVNULL,
                    capture_output=not tty,
                    stdout=slave if tty else None,
                    stderr=slave if tty else None,
                    pass_fds=(env_fd,),
                    start_new_session=tty,
                    timeout=60,
                    check=False,
                )
            finally:
                os.close(env_fd)
                os.close(master)
                os.close(slave)
            assert done.returncode == 0, (done, log.read_text())
            loader = cmd[cmd.index("--", cmd.index("/usr/bin/setpriv")) + 1]
            paths = _paths_before_the_command(log.read_text(), loader)
            # Not vacuous: the loader's cache, libc and setpriv itself are there.
            assert "/etc/ld.so.cache" in paths, paths
            assert "/usr/bin/setpriv" in paths, paths
            assert any("libc.so" in p for p in paths), paths
            # "/" is the job's root itself (nsenter's chdir), which no job moves.
            outside = [
                p
                for p in paths
                if p != "/"
                and not any(p == f or p.startswith(f + "/") for f in IMMUTABLE)
            ]
            assert outside == [], outside
    finally:
        await client.jobs.kill(job.id)
