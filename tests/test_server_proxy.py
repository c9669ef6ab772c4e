"""The jupyter-server extension against a real ``jupyter server`` subprocess.

A loopback aiohttp backend (in a thread of its own) echoes what it received,
streams large bodies, echoes WebSocket messages and counts every request; it is
registered as a forward from this process, so its record's pid is alive.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from apolo_jupyter.kernel import _forward_registry as registry
from apolo_jupyter.kernel._forward_control import proxy_url
from apolo_jupyter.server._rewrite import SANDBOX_CSP

from ._jupyter import Server, start_jupyter_server
from .conftest import dead_pid

pytestmark = pytest.mark.timeout(60)

CHUNK = 1 << 16


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-per-chunk bytes."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(i.to_bytes(8, "big")).digest() * 2048
        i += 1
    return bytes(out[:size])


class Backend:
    def __init__(self) -> None:
        self.count = 0
        self.seen: list[dict[str, Any]] = []
        self.first_chunk = threading.Event()
        self.release = threading.Event()
        self.second_sent = threading.Event()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            fut.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._count], client_max_size=1 << 30)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/download/{size}", self._download)
        app.router.add_post("/slow-upload", self._slow_upload)
        app.router.add_get("/slow-download", self._slow_download)
        app.router.add_get("/truncated", self._truncated)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.count += 1
        self.seen.append(
            {
                "method": request.method,
                "path": request.raw_path,
                "headers": [[k, v] for k, v in request.headers.items()],
            }
        )
        result: web.StreamResponse = await handler(request)
        return result

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "query_string": request.raw_path.partition("?")[2],
                "headers": [[k, v] for k, v in request.headers.items()],
                "size": size,
                "sha256": digest.hexdigest(),
            },
            headers={
                "ETag": '"v1"',
                "Cache-Control": "no-store",
                # Each of these would act on the whole Jupyter origin:
                "Set-Cookie": "evil=1; Path=/",
                "Clear-Site-Data": '"cookies", "storage"',
                "Access-Control-Allow-Origin": "https://evil.example",
                "Access-Control-Allow-Credentials": "true",
                "Service-Worker-Allowed": "/",
                "Refresh": "0; url=https://evil.example/",
                "NEL": '{"report_to": "x", "max_age": 86400}',
                "X-Content-Type-Options": "none",
                "X-Backend": "yes",
            },
        )

    async def _download(self, request: web.Request) -> web.StreamResponse:
        data = pattern(int(request.match_info["size"]))
        resp = web.StreamResponse()
        resp.content_length = len(data)
        await resp.prepare(request)
        for i in range(0, len(data), CHUNK):
            await resp.write(data[i : i + CHUNK])
        await resp.write_eof()
        return resp

    async def _slow_upload(self, request: web.Request) -> web.StreamResponse:
        first = await request.content.readany()
        self.first_chunk.set()
        rest = await request.read()
        return web.json_response({"first": len(first), "total": len(first) + len(rest)})

    async def _slow_download(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"first-part;")
        await loop.run_in_executor(None, self.release.wait, 60)
        await resp.write(b"second-part")
        self.second_sent.set()
        await resp.write_eof()
        return resp

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": request.query["to"]})

    async def _truncated(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b"x" * 10)
        assert request.transport is not None
        request.transport.close()
        return resp

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("chat.v2", "chat.v1"))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                if msg.data == "close":
                    await ws.close(code=4001, message=b"bye")
                    break
                if msg.data.startswith("send-mib:"):  # one message that big
                    await ws.send_bytes(b"x" * (int(msg.data[9:]) << 20))
                    continue
                await ws.send_str("echo:" + msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(b"echo:" + msg.data)
        return ws


# -- the jupyter server -----------------------------------------------------------


def start_server(tmp: Path, forwards: Path, *extra: str) -> Server:
    return start_jupyter_server(tmp, *extra, APOLO_JUPYTER_FORWARDS_DIR=str(forwards))


@pytest.fixture(scope="module")
def forwards_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("forwards")
    old = os.environ.get(registry.ENV_DIR)
    os.environ[registry.ENV_DIR] = str(path)
    yield path
    if old is None:
        del os.environ[registry.ENV_DIR]
    else:
        os.environ[registry.ENV_DIR] = old


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    b = Backend()
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, forwards_dir: Path
) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("jupyter"), forwards_dir)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def fwd(backend: Backend, forwards_dir: Path) -> registry.Forward:
    return registry.register(backend.port, "job-under-test")


def proxied(server: Server, fwd: registry.Forward, path: str) -> str:
    return f"{server.url}/apolo/forward/{fwd.id}{path}"


def header_names(headers: list[list[str]]) -> set[str]:
    return {k.lower() for k, _ in headers}


# -- tests ----------------------------------------------------------------------


async def test_authenticated_get_reaches_backend(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend
) -> None:
    async with http.get(
        proxied(server, fwd, "/some/path?x=1"), headers=server.auth
    ) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
        assert SANDBOX_CSP in r.headers.getall("Content-Security-Policy")
        assert r.headers["ETag"] == '"v1"' and r.headers["Cache-Control"] == "no-store"
        assert not any("evil" in c for c in r.headers.getall("Set-Cookie", []))
        for name in (
            "Clear-Site-Data",
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Credentials",
            "Service-Worker-Allowed",
            "Refresh",
            "NEL",
            "X-Backend",
        ):
            # (Jupyter itself sends an empty Access-Control-Allow-Origin.)
            assert not any(r.headers.getall(name, [])), (name, r.headers.getall(name))
        assert r.headers.getall("X-Content-Type-Options", ["nosniff"]) == ["nosniff"]
    assert body["method"] == "GET" and body["path"] == "/some/path"
    assert body["query_string"] == "x=1"
    assert dict((k.lower(), v) for k, v in body["headers"])["host"] == (
        f"127.0.0.1:{backend.port}"
    )


@pytest.mark.parametrize(
    "method", ["HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
)
async def test_every_method_is_proxied(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend,
    method: str,
) -> None:  # fmt: skip
    before = backend.count
    async with http.request(
        method, proxied(server, fwd, "/m"), headers=server.auth, data=b"abc"
    ) as r:
        assert r.status == 200, await r.text()
        assert SANDBOX_CSP in r.headers.getall("Content-Security-Policy")
        if method != "HEAD":
            body = await r.json()
            assert body["method"] == method and body["size"] == 3
    assert backend.count == before + 1


async def test_credentials_are_stripped(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward
) -> None:
    headers = {
        **server.auth,
        "Cookie": "_xsrf=abc; username-x=secret; other=1",
        "X-XSRFToken": "abc",
        "X-CSRFToken": "abc",
        "X-Custom": "kept",
    }
    url = proxied(server, fwd, f"/h?x=1&token={server.token}&y=%20z&_xsrf=abc")
    for method in ("GET", "POST"):
        async with http.request(method, url, headers=headers, data=b"b") as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        names = header_names(body["headers"])
        assert not names & {"authorization", "cookie", "x-xsrftoken", "x-csrftoken"}
        assert "x-custom" in names
        assert body["query_string"] == "x=1&y=%20z"
        assert server.token not in json.dumps(body)


async def test_cookie_auth_is_stripped_and_needs_xsrf(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend
) -> None:
    async with http.get(f"{server.url}/api/status?token={server.token}") as r:
        assert r.status == 200
    assert any(c.key.startswith("username-") for c in http.cookie_jar)
    async with http.get(proxied(server, fwd, "/c")) as r:
        assert r.status == 200, await r.text()
        assert not header_names((await r.json())["headers"]) & {"cookie"}
    before = backend.count
    async with http.post(proxied(server, fwd, "/c"), data=b"x") as r:
        assert r.status == 403  # cookie auth without the XSRF token
    assert backend.count == before


@pytest.mark.parametrize(
    "method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
)
async def test_unauthenticated_http_is_refused(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend,
    method: str,
) -> None:  # fmt: skip
    before = backend.count
    for headers in ({}, {"Authorization": "token wrong"}):
        async with http.request(
            method, proxied(server, fwd, "/x"), headers=headers, allow_redirects=False
        ) as r:
            assert r.status == 403
    assert backend.count == before


async def test_redirects_stay_inside_the_forward(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend
) -> None:
    prefix = f"/apolo/forward/{fwd.id}"
    cases = {
        "/elsewhere?a=1": f"{prefix}/elsewhere?a=1",
        f"http://127.0.0.1:{backend.port}/x?y=1": f"{prefix}/x?y=1",
        f"http://localhost:{backend.port}": f"{prefix}/",
        "next/page": "next/page",
        "https://evil.example/": None,
        f"http://127.0.0.1:{backend.port + 1}/": None,
        "//evil.example/x": None,
    }
    for target, expected in cases.items():
        async with http.get(
            proxied(server, fwd, "/redirect"),
            params={"to": target},
            headers=server.auth,
            allow_redirects=False,
        ) as r:
            assert r.status == 302
            assert r.headers.get("Location") == expected, target


async def test_expect_100_continue_upload(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward
) -> None:
    data = pattern(2 << 20)
    async with (
        asyncio.timeout(20),
        http.post(
            proxied(server, fwd, "/upload"),
            headers=server.auth,
            data=data,
            expect100=True,
        ) as r,
    ):
        assert r.status == 200, await r.text()
        body = await r.json()
    assert body["size"] == len(data)
    assert "expect" not in {k.lower() for k, _ in body["headers"]}


async def test_websocket_from_another_origin_never_reaches_the_job(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend
) -> None:
    # A browser on another site sends the user's cookie, never the token header.
    async with http.get(f"{server.url}/api/status?token={server.token}") as r:
        assert r.status == 200
    before = backend.count
    for origin in ("http://evil.example", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(
                proxied(server, fwd, "/ws?action=delete-everything"),
                headers={"Origin": origin},
            )
        assert info.value.status == 403
    assert backend.count == before


async def test_unauthenticated_websocket_is_refused(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend
) -> None:
    before = backend.count
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(proxied(server, fwd, "/ws"))
    assert info.value.status == 403
    assert backend.count == before


async def test_websocket_relay(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend
) -> None:
    headers = {**server.auth, "Cookie": "a=b"}
    async with http.ws_connect(
        proxied(server, fwd, f"/ws?token={server.token}&q=1"),
        headers=headers,
        protocols=("chat.v1", "other"),
    ) as ws:
        assert ws.protocol == "chat.v1"
        await ws.send_str("hello")
        assert await ws.receive_str(timeout=10) == "echo:hello"
        payload = bytes(range(256)) * 1000
        await ws.send_bytes(payload)
        assert await ws.receive_bytes(timeout=10) == b"echo:" + payload
        await ws.send_str("close")
        msg = await ws.receive(timeout=10)
        assert msg.type == WSMsgType.CLOSE and msg.data == 4001
    seen = [s for s in backend.seen if s["path"].startswith("/ws")][-1]
    assert seen["path"] == "/ws?q=1"
    assert not header_names(seen["headers"]) & {"authorization", "cookie"}


async def test_an_oversized_message_from_the_job_closes_with_1009(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward
) -> None:
    async with http.ws_connect(
        proxied(server, fwd, "/ws"), headers=server.auth, max_msg_size=0
    ) as ws:
        await ws.send_str("send-mib:9")  # under tornado's 10 MiB: relayed
        assert len(await ws.receive_bytes(timeout=30)) == 9 << 20
        await ws.send_str("send-mib:11")  # over it: not buffered, closed
        msg = await ws.receive(timeout=30)
        assert msg.type == WSMsgType.CLOSE and msg.data == 1009, msg
    async with http.get(f"{server.url}/api/status", headers=server.auth) as r:
        assert r.status == 200  # the server is still there


async def test_large_bodies_stream_byte_exact(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward
) -> None:
    size = 50 * 1024 * 1024
    data = pattern(size)
    async with http.post(
        proxied(server, fwd, "/up"), headers=server.auth, data=data
    ) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert body["size"] == size
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    digest, got = hashlib.sha256(), 0
    async with http.get(
        proxied(server, fwd, f"/download/{size}"), headers=server.auth
    ) as r:
        assert r.status == 200
        async for chunk in r.content.iter_any():
            digest.update(chunk)
            got += len(chunk)
    assert got == size and digest.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_bodies_are_not_buffered(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend
) -> None:
    backend.release.clear()
    backend.first_chunk.clear()

    async def upload() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        # The backend sees the first chunk while the rest is not yet sent.
        assert await asyncio.to_thread(backend.first_chunk.wait, 10)
        yield b"b" * 1000

    async with http.post(
        proxied(server, fwd, "/slow-upload"), headers=server.auth, data=upload()
    ) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["total"] == 2000
    backend.second_sent.clear()
    # A proxy that buffered the response would send nothing for 60 s.
    try:
        async with asyncio.timeout(10):
            r = await http.get(
                proxied(server, fwd, "/slow-download"), headers=server.auth
            )
            first = await r.content.readexactly(11)
        assert first == b"first-part;"
        assert not backend.second_sent.is_set()  # arrived before the backend finished
        backend.release.set()
        assert await r.content.read() == b"second-part"
        r.release()
    finally:
        backend.release.set()  # never leave the backend waiting


async def test_unknown_and_crafted_ids(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend
) -> None:
    before = backend.count
    unknown = secrets.token_urlsafe(16)
    async with http.get(
        f"{server.url}/apolo/forward/{unknown}/x", headers=server.auth
    ) as r:
        assert r.status == 404
        text = await r.text()
        assert "unknown or expired forward" in text and unknown not in text
    for crafted in ("%3Cscript%3Ealert(1)%3C%2Fscript%3E", "..%2F..%2Fapi", "<script>"):
        async with http.get(
            f"{server.url}/apolo/forward/{crafted}/api/status",
            headers=server.auth,
            allow_redirects=False,
        ) as r:
            assert r.status == 404
            text = await r.text()
            assert "<script>" not in text and "script%3E" not in text
    assert backend.count == before


async def test_unregistered_and_dead_forwards_are_gone(
    http: aiohttp.ClientSession, server: Server, backend: Backend, forwards_dir: Path
) -> None:
    gone = registry.register(backend.port, "job-gone")
    async with http.get(proxied(server, gone, "/"), headers=server.auth) as r:
        assert r.status == 200
    registry.unregister(gone.id)
    async with http.get(proxied(server, gone, "/"), headers=server.auth) as r:
        assert r.status == 404
    dead = registry.register(backend.port, "job-dead")
    record = forwards_dir / f"{dead.id}.json"
    data = json.loads(record.read_text())
    data["pid"] = dead_pid()
    record.write_text(json.dumps(data))
    async with http.get(proxied(server, dead, "/"), headers=server.auth) as r:
        assert r.status == 404
    assert not record.exists()


async def test_refused_with_unauthenticated_access_disallowed(
    http: aiohttp.ClientSession, tmp_path: Path, forwards_dir: Path,
    fwd: registry.Forward, backend: Backend,
) -> None:  # fmt: skip
    strict = start_server(
        tmp_path, forwards_dir, "--ServerApp.allow_unauthenticated_access=False"
    )
    try:
        before = backend.count
        for method in ("GET", "POST", "DELETE"):
            async with http.request(method, proxied(strict, fwd, "/x"),
                                    allow_redirects=False) as r:  # fmt: skip
                assert r.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(proxied(strict, fwd, "/ws"))
        assert info.value.status == 403
        assert backend.count == before
        async with http.get(proxied(strict, fwd, "/ok"), headers=strict.auth) as r:
            assert r.status == 200
    finally:
        strict.stop()


async def test_upstream_down_and_truncated(
    http: aiohttp.ClientSession, server: Server, fwd: registry.Forward, backend: Backend
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    down = registry.register(closed_port, "job-down")
    try:
        async with http.get(
            proxied(server, down, "/x?q=<b>"), headers=server.auth
        ) as r:
            assert r.status == 502
            assert r.headers["Content-Type"].startswith("text/plain")
            assert "<b>" not in await r.text()
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(proxied(server, down, "/ws"), headers=server.auth)
        assert info.value.status == 502
    finally:
        registry.unregister(down.id)
    async with http.get(proxied(server, fwd, "/truncated"), headers=server.auth) as r:
        assert r.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()  # the truncation shows; it is not passed off as complete
    async with http.get(proxied(server, fwd, "/after"), headers=server.auth) as r:
        assert r.status == 200  # the server is fine afterwards


def test_shipped_config_enables_the_extension() -> None:
    root = Path(__file__).resolve().parents[1]
    config = root / "etc/jupyter/jupyter_server_config.d/apolo_jupyter.json"
    data = json.loads(config.read_text())
    assert data == {
        "ServerApp": {"jpserver_extensions": {"apolo_jupyter.server": True}}
    }


async def test_under_a_base_url_as_on_jupyterhub(
    http: aiohttp.ClientSession, tmp_path: Path, forwards_dir: Path,
    fwd: registry.Forward, backend: Backend, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    hub = start_server(tmp_path, forwards_dir, "--ServerApp.base_url=/user/alice/")
    try:
        # What the kernel shows the user: JupyterHub's prefix, then the route.
        monkeypatch.delenv("APOLO_JUPYTER_BASE_URL", raising=False)
        monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice")
        url = hub.url + proxy_url(fwd.id) + "some/path"
        assert url == f"{hub.url}/user/alice/apolo/forward/{fwd.id}/some/path"
        async with http.get(url, headers=hub.auth) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["path"] == "/some/path"
        async with http.get(
            f"{hub.url}/user/alice/apolo/forward/{fwd.id}/redirect",
            params={"to": "/login"},
            headers=hub.auth,
            allow_redirects=False,
        ) as r:
            assert r.headers["Location"] == f"/user/alice/apolo/forward/{fwd.id}/login"
        async with http.get(proxied(hub, fwd, "/x"), headers=hub.auth) as r:
            assert r.status == 404  # not served outside the base URL
    finally:
        hub.stop()
