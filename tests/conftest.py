"""Fixtures: a real local platform daemon on 127.0.0.1:0 in a temporary home."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from apolo_jupyter import (
    AbstractRecursiveFileProgress,
    Client,
    JobDescription,
    JobStatus,
    StorageProgressComplete,
    StorageProgressEnterDir,
    StorageProgressFail,
    StorageProgressLeaveDir,
    StorageProgressStart,
    StorageProgressStep,
    get,
)
from apolo_jupyter.client._local_home import (
    DaemonInfo,
    LocalPaths,
    ensure_running,
    is_running,
)

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell


def until(check: Callable[[], bool], timeout: float = 30) -> None:
    """Poll ``check`` (widgets update from the runtime's thread) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``apolo-jupyter ARGS`` (``python -m apolo_jupyter.cli``), waited for, its
    output captured as text; ``kwargs`` go to ``subprocess.run`` (e.g. ``env``)."""
    kwargs.setdefault("timeout", 120)
    return subprocess.run(
        [sys.executable, "-m", "apolo_jupyter.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


def dead_pid() -> int:
    """The pid of a process that has exited (for records a dead process left)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


def free_port() -> int:
    """A loopback port nothing listens on yet."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_daemon(
    paths: LocalPaths, info: DaemonInfo | None, timeout: float = 30.0
) -> None:
    if info is None:
        return
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while is_running(paths) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not is_running(paths), f"daemon {info.pid} did not stop"


def storage_host(platform: Platform, *parts: str) -> Path:
    """Where ``storage:<parts>`` of the default project is on the host."""
    return platform.paths.storage_dir.joinpath("local", "default", *parts)


class OpsSent:
    """The storage ops (``?op=``) a client's requests named, counted; WebSocket
    handshakes included."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._start)

    async def _start(self, session: Any, context: Any, params: Any) -> None:
        self.sent[params.url.query.get("op", "")] += 1


class Recorder(AbstractRecursiveFileProgress):
    """A progress object that keeps every event, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.in_flight = 0
        self.most_in_flight = 0

    def start(self, data: StorageProgressStart) -> None:
        self.events.append(data)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def step(self, data: StorageProgressStep) -> None:
        self.events.append(data)

    def complete(self, data: StorageProgressComplete) -> None:
        self.events.append(data)
        self.in_flight -= 1

    def enter(self, data: StorageProgressEnterDir) -> None:
        self.events.append(data)

    def leave(self, data: StorageProgressLeaveDir) -> None:
        self.events.append(data)

    def fail(self, data: StorageProgressFail) -> None:
        self.events.append(data)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class Platform:
    """A running local platform daemon and its data directory."""

    def __init__(self, home: Path, **settings: Any) -> None:
        self.paths = LocalPaths(home)
        config = {"kill_grace": 2.0, "capacity": {"cpu": 1000, "memory": 2**50}}
        config.update(settings)
        (home / "config.json").parent.mkdir(parents=True, exist_ok=True)
        (home / "config.json").write_text(json.dumps(config))
        self.info = ensure_running(self.paths)

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def token(self) -> str:
        return self.info.token

    def restart(self) -> None:
        self.stop()
        self.info = ensure_running(self.paths)

    def stop(self) -> None:
        stop_daemon(self.paths, self.info)


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    plat = Platform(tmp_path_factory.mktemp("platform"))
    yield plat
    plat.stop()


@pytest.fixture
def own_platform(tmp_path: Path) -> Iterator[Platform]:
    """A platform of the test's own, for restart and crash tests."""
    plat = Platform(tmp_path / "home")
    yield plat
    plat.stop()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[Client]:
    async with get(platform.url, platform.token, quiet=True) as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for a Jupyter server's routes (keeps its cookies)."""
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:
        yield session


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    """IPython with ``%load_ext apolo_jupyter`` (unloaded after the module)."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "apolo_jupyter")
    yield ip
    ip.run_line_magic("unload_ext", "apolo_jupyter")


@pytest.fixture
def isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, platform: Platform
) -> Path:
    """No login, no passed config: ``get()`` must pick the local platform."""
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in (
        "APOLO_PASSED_CONFIG",
        "APOLO_JUPYTER_QUIET",
        "NEURO_PASSED_CONFIG",
        "APOLO_CONFIG",
        "NEUROMATION_CONFIG",
        "XDG_DATA_HOME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("APOLO_JUPYTER_HOME", str(platform.paths.home))
    return home


class Gate:
    """A file the test creates to let its jobs go on. A job mounts the gate's
    storage folder (``volume``) and runs ``WAIT`` first, so an overlap or an
    order the test needs is certain rather than a matter of timing."""

    WAIT = "while [ ! -e /gate/open ]; do sleep 0.05; done"

    def __init__(self, platform: Platform) -> None:
        folder = f"gate-{uuid.uuid4().hex[:8]}"
        self.path = platform.paths.storage_dir / "local" / "default" / folder
        self.path.mkdir(parents=True)
        self.volume = f"storage:{folder}:/gate:ro"

    def open(self) -> None:
        (self.path / "open").touch()


async def start_job(
    client: Client, command: str, image: str = "ubuntu", **kwargs: Any
) -> JobDescription:
    """Start a ``cpu-small`` job of ``image`` running ``command``; ``kwargs`` go
    to ``client.jobs.start`` (``volumes``, ``tty``, ``name``...)."""
    return await client.jobs.start(
        image=client.parse.remote_image(image),
        preset_name="cpu-small",
        command=command,
        **kwargs,
    )


async def job_log(client: Client, job_id: str, **kwargs: Any) -> bytes:
    """The job's whole log (until it ends); ``kwargs`` go to ``jobs.monitor``."""
    out = b""
    async with client.jobs.monitor(job_id, **kwargs) as chunks:
        async for chunk in chunks:
            out += chunk
    return out


async def wait_log(client: Client, job_id: str, text: bytes) -> None:
    """Follow the job's log until a piece of it holds ``text`` (or it ends)."""
    async with client.jobs.monitor(job_id) as chunks:
        async for chunk in chunks:
            if text in chunk:
                return


async def wait_finished(client: Client, job_id: str) -> JobDescription:
    """Follow the job's status changes until it has finished."""
    async with client.jobs.watch(job_id) as updates:
        async for job in updates:
            if job.status.is_finished:
                return job
    raise AssertionError(f"watch of {job_id} ended before the job finished")


async def wait_running(client: Client, job_id: str) -> JobDescription:
    """Follow the job's status changes until it runs (or has finished)."""
    async with client.jobs.watch(job_id) as updates:
        async for job in updates:
            if job.status == JobStatus.RUNNING or job.status.is_finished:
                return job
    raise AssertionError(f"watch of {job_id} ended before the job ran")


def start_on_runtime(command: str, *, finish: bool = False) -> str:
    """Start an ``ubuntu`` job with the runtime's client (as widgets and magics
    do); with ``finish``, return once it has finished."""
    from apolo_jupyter.kernel._runtime import runtime

    rt = runtime()
    client = rt.client()

    async def start() -> str:
        job = await start_job(client, command)
        return (await wait_finished(client, job.id)).id if finish else job.id

    return rt.run(start(), timeout=60)
