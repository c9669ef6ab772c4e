"""The resource sparkline of a job's status view: its model (window, peaks, what a
browser is sent), and on the real platform the one ``jobs.top`` stream behind it,
which lives exactly while the view follows a running job: opened when the job
runs, closed on both sides when the job ends or the view stops following, never
opened on a platform without the route (the view then shows no sparkline)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp import web
from yarl import URL

from apolo_jupyter import Client, JobStatus, JobTelemetry, get
from apolo_jupyter.kernel._bridge import Attachment
from apolo_jupyter.kernel._runtime import Runtime, runtime
from apolo_jupyter.widgets import JobStatusView
from apolo_jupyter.widgets._status_model import StatusFeed
from apolo_jupyter.widgets._usage import WINDOW, UsageLog, figures, size, usage_text

from .conftest import Platform, start_job, until
from .test_gpu import SMI, UUIDS, fake_gpus
from .test_status_view import RUNNING, SUCCEEDED, T0, snapshot

pytestmark = pytest.mark.timeout(180)
BUSY = "sh -c 'echo busy; while :; do :; done'"


def sample(cpu: float, mb: int, gpu: int | None = None) -> JobTelemetry:
    return JobTelemetry(
        cpu=cpu,
        memory_bytes=mb * 10**6,
        timestamp=0.0,
        gpu_duty_cycle=gpu,
        gpu_memory_bytes=None if gpu is None else 3_100_000_000,
    )


# -- the model, fed samples as the bridge would --------------------------------------


def test_the_window_is_bounded_and_the_peaks_are_of_every_sample() -> None:
    log = UsageLog()
    for i in range(WINDOW + 15):
        log.add(sample(0.5 + (i == 3), 100 + i))
    usage = log.freeze()
    assert len(usage.samples) == WINDOW and usage.count == WINDOW + 15
    assert usage.samples[0].memory_bytes == 115 * 10**6  # the oldest went
    assert usage.peak is not None
    assert usage.peak.cpu == 1.5  # from a sample long out of the window
    assert usage.peak.memory_bytes == (100 + WINDOW + 14) * 10**6


def test_figures_in_words() -> None:
    assert figures(sample(0.934, 212)) == "CPU 0.93 · 212 MB"
    assert figures(sample(2.0, 1500, gpu=45)) == "CPU 2.00 · 1.5 GB · GPU 45% · 3.1 GB"
    assert [size(n) for n in (512, 2_500, 12_000_000, 999_999_999)] == [
        "512 B",
        "2.5 kB",
        "12 MB",
        "1000 MB",
    ]
    log = UsageLog()
    assert usage_text(log.freeze(), finished=False) == ""  # no samples: no words
    log.add(sample(0.99, 230))
    log.add(sample(0.93, 212))
    assert usage_text(log.freeze(), finished=False) == (
        "CPU 0.93 · 212 MB (peak CPU 0.99 · 230 MB)"
    )
    assert usage_text(log.freeze(), finished=True) == (
        "peak CPU 0.99 · 230 MB (2 samples)"
    )


def _feed(*samples: JobTelemetry) -> tuple[StatusFeed, JobStatusView]:
    feed = StatusFeed(hint="%apolo_logs job-0123", can_kill=True)
    feed.update(snapshot(RUNNING))
    view = JobStatusView()
    for s in samples:
        feed.sample(s)
        view.show(feed.snapshot(T0))
    return feed, view


def test_a_browser_gets_the_window_on_open_and_then_only_new_samples() -> None:
    feed, view = _feed(*(sample(0.1 * i, 100 + i) for i in range(1, 6)))
    full = view.get_state()["spark"]  # what a browser opening the view gets
    assert full["seq"] == 5 and full["window"] == WINDOW
    assert [row[:2] for row in full["rows"]] == [
        [round(0.1 * i, 3), (100 + i) * 10**6] for i in range(1, 6)
    ]
    update = view.get_state("spark")["spark"]  # what an update of the trait carries
    assert update == {
        "seq": 5,
        "window": WINDOW,
        "rows": [[0.5, 105 * 10**6, None, None]],
    }
    # Two samples between two updates (a throttled one): both rows, no more.
    feed.sample(sample(0.6, 106))
    feed.sample(sample(0.7, 107, gpu=80))
    view.show(feed.snapshot(T0))
    rows = view.get_state({"spark", "ui"})["spark"]["rows"]
    assert rows == [
        [0.6, 106 * 10**6, None, None],
        [0.7, 107 * 10**6, 80, 3_100_000_000],
    ]
    assert len(view.get_state()["spark"]["rows"]) == 7


def test_a_sample_alone_changes_nothing_but_the_sparkline() -> None:
    feed, view = _feed(sample(0.5, 100))
    before = view.get_state()
    feed.sample(sample(0.6, 101))
    changed: list[str] = []
    view.observe(lambda change: changed.append(change["name"]), names=list(before))
    from dataclasses import replace

    view.show(replace(view.snapshot, usage=feed.usage.freeze()))  # as the bridge does
    assert changed == ["spark"]


def test_an_ended_job_has_no_sparkline_and_says_its_peaks_in_words() -> None:
    feed, view = _feed(sample(0.99, 230), sample(0.93, 212))
    assert view.spark["seq"] == 2
    saved = view.bundle(live=True)  # saved while it runs: the figures as of then
    assert "  CPU 0.93 · 212 MB (peak CPU 0.99 · 230 MB)" in saved["text/plain"]
    feed.update(snapshot(RUNNING, SUCCEEDED))
    view.show(feed.snapshot(datetime.now(UTC)))
    assert view.spark == {} and view.get_state("spark")["spark"] == {}
    final = view.bundle(live=False)
    lines = final["text/plain"].splitlines()
    assert lines[1:3] == ["  ran 0:00:10", "  peak CPU 0.99 · 230 MB (2 samples)"]
    assert final["text/html"].count("peak CPU 0.99 · 230 MB (2 samples)") == 1
    assert "peak" not in view.head  # the live view's row: no figures said twice


# -- on the real platform ---------------------------------------------------------------


def _sockets(pid: int, *, local: int | None = None, remote: int | None = None) -> int:
    """How many TCP sockets process ``pid`` holds with that local or remote port."""
    found = 0
    for conn in psutil.Process(pid).net_connections(kind="tcp"):
        if local is not None and conn.laddr and conn.laddr.port == local:
            found += 1
        if remote is not None and conn.raddr and conn.raddr.port == remote:
            found += 1
    return found


async def _traced_client(url: str, token: str, top_ports: list[int]) -> Client:
    """A client that notes the local port of each ``top`` WebSocket it opens."""

    async def on_end(
        session: Any, ctx: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.url.path.endswith("/top") and params.response.status == 101:
            conn = params.response.connection
            assert conn is not None and conn.transport is not None
            top_ports.append(conn.transport.get_extra_info("sockname")[1])

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    return await get(url, token, quiet=True, trace_configs=[trace])


async def _client(url: str, token: str) -> Client:
    return await get(url, token, quiet=True)


async def _start(client: Client, command: str) -> str:
    job = await start_job(client, command=command)
    return job.id


async def _top_tasks() -> list[str]:
    return [
        t.get_name()
        for t in asyncio.all_tasks()
        if t.get_name().startswith("apolo-top")
    ]


@pytest.fixture
def rt() -> Iterator[Runtime]:
    yield runtime()


def test_the_top_stream_lives_exactly_while_a_view_follows_a_running_job(
    rt: Runtime, platform: Platform
) -> None:
    daemon, me = platform.info.pid, os.getpid()
    ports: list[int] = []
    client = rt.run(_traced_client(platform.url, platform.token, ports))
    job_id = rt.run(_start(client, BUSY))
    try:
        # A view that stops following while the job runs closes its stream.
        view = JobStatusView()
        att = Attachment(rt, client, job_id, view)
        until(lambda: bool(view.spark), 60)
        (port,) = ports
        assert _sockets(me, local=port) == 1 and _sockets(daemon, remote=port) == 1
        att.stop()
        until(lambda: att.top_task is not None and att.top_task.done())
        until(
            lambda: not _sockets(me, local=port) and not _sockets(daemon, remote=port)
        )
        assert rt.run(client.jobs.status(job_id)).status == JobStatus.RUNNING

        # A view that follows to the end: busy samples while it runs, then the
        # stream ends with the job, on both sides, and the sparkline goes.
        view = JobStatusView()
        att = Attachment(rt, client, job_id, view)

        def busy_rows() -> list[Any]:
            rows = view.spark.get("rows", [])
            return rows if len(rows) >= 3 and rows[-1][0] > 0.5 else []

        until(lambda: bool(busy_rows()), 90)
        rows = busy_rows()
        assert 0.5 < rows[-1][0] < 1.5 and rows[-1][1] > 0  # a core, resident memory
        assert len(view.get_state("spark")["spark"]["rows"]) < len(rows)
        assert len(ports) == 2
        port = ports[1]
        assert _sockets(me, local=port) == 1 and _sockets(daemon, remote=port) == 1
        assert rt.run(_top_tasks()) == [f"apolo-top-{job_id}"]
        rt.run(client.jobs.kill(job_id))
        final = att.future.result(60)
        assert final.status == JobStatus.CANCELLED
        assert att.top_task is not None and att.top_task.done()
        assert not att.top_error
        assert view.spark == {} and rt.run(_top_tasks()) == []
        until(
            lambda: not _sockets(me, local=port) and not _sockets(daemon, remote=port)
        )
        assert len(ports) == 2  # no stream was opened for the ended job
        plain = view.bundle(live=False)["text/plain"]
        assert "  peak CPU " in plain and "busy" in plain
    finally:
        rt.run(client.jobs.kill(job_id))
        rt.run(client.close())


def test_a_finished_job_gets_no_top_stream(rt: Runtime, platform: Platform) -> None:
    ports: list[int] = []
    client = rt.run(_traced_client(platform.url, platform.token, ports))
    try:
        job_id = rt.run(_start(client, "echo done"))
        until(lambda: rt.run(client.jobs.status(job_id)).status.is_finished)
        view = JobStatusView()
        att = Attachment(rt, client, job_id, view)
        assert att.future.result(60).status == JobStatus.SUCCEEDED
        assert att.top_task is None and ports == [] and view.spark == {}
    finally:
        rt.run(client.close())


class OldPlatform:
    """The local platform as one that predates ``top``: a pass-through proxy for
    its HTTP and WebSocket routes that answers a bare 404 to ``…/top``, as a
    server without the route does."""

    def __init__(self, upstream: str) -> None:
        self._upstream = URL(upstream)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.refused: list[str] = []

    async def start(self) -> str:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return str(self._upstream.with_host(host).with_port(port))

    async def stop(self) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/top"):
            self.refused.append(request.path)
            raise web.HTTPNotFound()
        assert self._session is not None
        url = self._upstream.join(request.rel_url)
        headers = {"Host": request.host}  # so the config names the proxy's URLs
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, url, headers)
        if "Content-Type" in request.headers:
            headers["Content-Type"] = request.headers["Content-Type"]
        async with self._session.request(
            request.method, url, headers=headers, data=await request.read()
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            if "Content-Type" in upstream.headers:
                response.content_type = upstream.content_type
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _websocket(
        self, request: web.Request, url: URL, headers: dict[str, str]
    ) -> web.StreamResponse:
        assert self._session is not None
        async with self._session.ws_connect(url, headers=headers) as upstream:
            down = web.WebSocketResponse()
            await down.prepare(request)

            async def pump(src: Any, dst: Any) -> None:
                async for msg in src:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await dst.send_str(msg.data)
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        await dst.send_bytes(msg.data)
                    else:
                        break

            tasks = {
                asyncio.create_task(pump(upstream, down)),
                asyncio.create_task(pump(down, upstream)),
            }
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await down.close()
            return down


def test_without_the_top_route_the_view_works_without_a_sparkline(
    rt: Runtime, platform: Platform
) -> None:
    old = OldPlatform(platform.url)
    url = rt.run(old.start())
    client = rt.run(_client(url, platform.token))
    try:
        job_id = rt.run(_start(client, "sh -c 'echo one; sleep 3; echo two'"))
        view = JobStatusView()
        att = Attachment(rt, client, job_id, view)
        final = att.future.result(60)
        assert final.status == JobStatus.SUCCEEDED
        assert old.refused == [f"/api/v1/monitoring/{job_id}/top"]  # asked once
        assert "does not serve" in att.top_error and "top" in att.top_error
        assert view.spark == {} and view.log_text == "one\ntwo"
        plain = view.bundle(live=False)["text/plain"]
        assert plain.splitlines()[0].startswith(f"{job_id}  succeeded")
        assert "CPU" not in plain and "peak" not in view.bundle(live=False)["text/html"]
    finally:
        rt.run(client.close())
        rt.run(old.stop())


# The GPU tests' fake nvidia-smi, which also says that every process on the
# machine uses its first GPU (87 %, 1500 MiB): the platform then adds GPU
# figures to the job's samples, as it does on a machine with a real GPU.
BUSY_GPU_SMI = SMI.replace(
    "esac",
    f"""--query-compute-apps=*)
    for p in /proc/[0-9]*; do echo "${{p#/proc/}}, 1500, {UUIDS[0]}"; done ;;
--query-gpu=uuid,utilization.gpu*)
    echo "{UUIDS[0]}, 87" ;;
esac""",
)


def test_a_gpu_job_s_view_draws_its_gpu_too(
    rt: Runtime, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("busy-gpu")
    plat = Platform(folder / "home", nvidia=fake_gpus(folder, BUSY_GPU_SMI))
    client = rt.run(_client(plat.url, plat.token))
    try:
        job = rt.run(
            client.jobs.start(
                image=client.parse.remote_image("ubuntu"),
                preset_name="gpu-small",
                command="sleep 300",
            )
        )
        view = JobStatusView()
        att = Attachment(rt, client, job.id, view)
        until(lambda: bool(view.spark), 60)
        duty, memory = view.spark["rows"][-1][2:]
        # Each of the job's processes (the sandbox's init, sleep) "uses" 1500 MiB.
        assert duty == 87 and memory > 0 and memory % (1500 * 2**20) == 0
        rt.run(client.jobs.kill(job.id))
        att.future.result(60)
        lines = view.bundle(live=False)["text/plain"].splitlines()
        usage = [line for line in lines if line.startswith("  peak CPU ")]
        assert len(usage) == 1, lines
        assert re.search(r" · GPU 87% · [\d.]+ GB \(\d+ samples?\)$", usage[0]), usage
    finally:
        rt.run(client.close())
        plat.stop()
