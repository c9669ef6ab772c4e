"""Same-host storage transfers: the local platform's Unix socket, attacked with
raw requests (no token, wrong fds, paths out of the storage, a client that
leaves mid-copy), and the client's use of it (a long home path, a socket gone)."""

from __future__ import annotations

import array
import json
import os
import socket
import stat
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from apolo_jupyter import get
from apolo_jupyter.client import _storage_frames as frames
from apolo_jupyter.local._storage_local import MAX_CONNECTIONS, PROGRESS_STEP

from ..conftest import OpsSent, Platform, storage_host, until

MiB = 1 << 20


def _api(folder: str, *parts: str) -> str:
    return "/" + "/".join(("local", "default", folder, *parts))


class Raw:
    """A connection to the socket, spoken by hand."""

    def __init__(self, platform: Platform) -> None:
        self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.conn.settimeout(30)
        self.conn.connect(str(platform.paths.home / frames.LOCAL_SOCKET_NAME))

    def send(self, message: Any, fds: list[int] = ()) -> None:  # type: ignore[assignment]
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        ancillary = (
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            if fds
            else []
        )
        self.conn.sendmsg([data], ancillary)

    def receive(self) -> dict[str, Any] | None:
        data = self.conn.recv(1 << 16)
        return json.loads(data) if data else None

    def hello(self, token: str) -> dict[str, Any] | None:
        self.send({"token": token})
        return self.receive()

    def ask(self, message: Any, fds: list[int] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        self.send(message, fds)
        reply = self.receive()
        assert reply is not None
        return reply

    def close(self) -> None:
        self.conn.close()


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_the_socket_is_the_owners_alone(platform: Platform) -> None:
    st = os.stat(platform.paths.home / frames.LOCAL_SOCKET_NAME)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(platform.paths.home).st_mode) == 0o700


def test_no_token_no_transfer(platform: Platform, tmp_path: Path) -> None:
    victim = tmp_path / "v"
    victim.write_bytes(b"x")
    for hello in (
        {"token": "not-a-token"},
        {"token": platform.token + "x"},
        {"nothing": 1},
        b"not json",
        b"[" * 60_000,
        [1, 2],
    ):
        raw = Raw(platform)
        fd = os.open(victim, os.O_RDONLY)
        try:
            raw.send(hello, [fd])  # an fd sent along is closed, not kept
        finally:
            os.close(fd)
        reply = raw.receive()
        assert reply is not None and "token" in reply["error"]
        assert raw.receive() is None  # and the connection is closed
        raw.close()
    # a request instead of the token
    raw = Raw(platform)
    fd = os.open(victim, os.O_RDONLY)
    raw.send({"id": 1, "op": "put", "path": _api("x", "stolen")}, [fd])
    os.close(fd)
    reply = raw.receive()
    assert reply is not None and "error" in reply
    raw.close()
    assert not storage_host(platform, "x", "stolen").exists()


def test_requests_that_are_refused(platform: Platform, tmp_path: Path) -> None:
    folder = f"raw-{uuid.uuid4().hex[:8]}"
    storage_host(platform, folder).mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (storage_host(platform, folder, "door")).symlink_to(outside)
    (storage_host(platform, folder, "key")).symlink_to(outside / "secret")
    mine = tmp_path / "mine"
    mine.write_bytes(b"mine")
    pid = platform.info.pid
    before = _fds(pid)
    raw = Raw(platform)
    assert raw.hello(platform.token) == {"ok": True}

    reader = os.open(mine, os.O_RDONLY)
    read_end, write_end = os.pipe()
    folder_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    device = os.open("/dev/null", os.O_RDWR)
    a, b = socket.socketpair()
    try:
        put = {"id": 1, "op": "put", "path": _api(folder, "f")}
        cases: list[tuple[Any, list[int], str]] = [
            (put, [], "exactly one"),
            (put, [reader, reader], "exactly one"),
            (put, [read_end], "regular file"),
            (put, [folder_fd], "regular file"),
            (put, [device], "regular file"),
            (put, [a.fileno()], "regular file"),
            ({**put, "id": "1"}, [reader], "'id'"),
            ({**put, "op": "delete"}, [reader], "'op'"),
            ({**put, "path": "local/default/x"}, [reader], "'path'"),
            ({**put, "path": 7}, [reader], "'path'"),
            ({**put, "path": _api(folder, "..", "..", "x")}, [reader], "'..'"),
            ({**put, "path": _api(folder, "a\0b")}, [reader], "NUL"),
            ({**put, "path": "/local/default"}, [reader], "project folder"),
            ({**put, "path": "/local/f"}, [reader], "project folder"),
            ({**put, "path": _api(folder, "door", "new")}, [reader], "outside"),
            ({**put, "path": _api(folder, "key")}, [reader], "outside"),
            ({**put, "op": "get", "path": _api(folder, "key")}, [write_end], "regular"),
            (b"not json", [reader], "JSON"),
            (b"[" * 60_000, [reader], "JSON"),
            (b"x" * (frames.LOCAL_MAX_MESSAGE + 10), [reader], "longer"),
        ]
        for message, fds, why in cases:
            reply = raw.ask(message, fds)
            assert "error" in reply and why in reply["error"], (message, reply)
        # a get into a file opened for reading only
        (storage_host(platform, folder, "f")).write_bytes(b"stored")
        get_req = {"id": 2, "op": "get", "path": _api(folder, "f")}
        reply = raw.ask(get_req, [reader])
        assert "error" in reply
        assert mine.read_bytes() == b"mine"
        # a get of a link that leads out of the storage
        out = tmp_path / "out"
        out_fd = os.open(out, os.O_RDWR | os.O_CREAT)
        reply = raw.ask({**get_req, "path": _api(folder, "key")}, [out_fd])
        assert "error" in reply and "outside" in reply["error"]
        os.close(out_fd)
        assert out.read_bytes() == b""
        # too many fds at once: cut to what fits, all closed
        many = [os.dup(reader) for _ in range(frames.LOCAL_MAX_FDS + 3)]
        reply = raw.ask(put, many)
        assert "error" in reply
        for fd in many:
            os.close(fd)
    finally:
        for fd in (reader, read_end, write_end, folder_fd, device):
            os.close(fd)
        a.close()
        b.close()
    assert (outside / "secret").read_bytes() == b"secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    # the connection still works, and nothing that was sent is kept open
    fd = os.open(mine, os.O_RDONLY)
    reply = raw.ask({"id": 3, "op": "put", "path": _api(folder, "ok")}, [fd])
    os.close(fd)
    assert reply == {"id": 3, "size": 4}
    assert storage_host(platform, folder, "ok").read_bytes() == b"mine"
    raw.close()
    until(lambda: _fds(pid) <= before, timeout=10)  # (an earlier test's may close too)


def test_a_large_copy_reports_progress(platform: Platform, tmp_path: Path) -> None:
    folder = f"raw-{uuid.uuid4().hex[:8]}"
    big = tmp_path / "big"
    data = os.urandom(2 * PROGRESS_STEP + 5)
    big.write_bytes(data)
    raw = Raw(platform)
    assert raw.hello(platform.token) == {"ok": True}
    fd = os.open(big, os.O_RDONLY)
    raw.send({"id": 7, "op": "put", "path": _api(folder, "big")}, [fd])
    os.close(fd)
    replies = [raw.receive(), raw.receive(), raw.receive()]
    assert replies == [
        {"id": 7, "progress": PROGRESS_STEP},
        {"id": 7, "progress": 2 * PROGRESS_STEP},
        {"id": 7, "size": len(data)},
    ]
    assert storage_host(platform, folder, "big").read_bytes() == data
    back = tmp_path / "back"
    fd = os.open(back, os.O_WRONLY | os.O_CREAT)
    raw.send({"id": 8, "op": "get", "path": _api(folder, "big")}, [fd])
    os.close(fd)
    assert [raw.receive() for _ in range(3)][-1] == {"id": 8, "size": len(data)}
    assert back.read_bytes() == data
    raw.close()


def test_a_client_that_leaves_mid_copy(platform: Platform, tmp_path: Path) -> None:
    """The copy stops at its next step: a file it replaces stays as it was (no
    temporary file left), a new file keeps the prefix copied (as an interrupted
    HTTP upload does, for continue_ to resume)."""
    folder = f"raw-{uuid.uuid4().hex[:8]}"
    storage_host(platform, folder).mkdir(parents=True)
    old = storage_host(platform, folder, "old")
    old.write_bytes(b"the old version")
    big = tmp_path / "big"
    big.write_bytes(os.urandom(24 * PROGRESS_STEP))
    for name in ("old", "new"):
        raw = Raw(platform)
        assert raw.hello(platform.token) == {"ok": True}
        fd = os.open(big, os.O_RDONLY)
        raw.send({"id": 1, "op": "put", "path": _api(folder, name)}, [fd])
        os.close(fd)
        raw.conn.shutdown(socket.SHUT_RDWR)
        raw.close()

    def settled() -> bool:
        names = sorted(p.name for p in storage_host(platform, folder).iterdir())
        new = storage_host(platform, folder, "new")
        return names == ["new", "old"] and new.stat().st_size % PROGRESS_STEP == 0

    until(settled, timeout=30)
    assert old.read_bytes() == b"the old version"
    assert sorted(p.name for p in storage_host(platform, folder).iterdir()) == [
        "new",
        "old",
    ]
    size = storage_host(platform, folder, "new").stat().st_size
    assert 0 < size < big.stat().st_size and size % PROGRESS_STEP == 0
    assert storage_host(platform, folder, "new").read_bytes() == big.read_bytes()[:size]


def test_connections_are_limited(own_platform: Platform) -> None:
    conns = []
    try:
        for _ in range(MAX_CONNECTIONS):
            raw = Raw(own_platform)
            assert raw.hello(own_platform.token) == {"ok": True}
            conns.append(raw)
        extra = Raw(own_platform)
        reply = extra.receive()
        assert reply is not None and "connections" in reply["error"]
        extra.close()
    finally:
        for raw in conns:
            raw.close()
    # once they are gone, a new one gets in
    done = threading.Event()

    def again() -> None:
        for _ in range(100):
            raw = Raw(own_platform)
            reply = raw.hello(own_platform.token)
            raw.close()
            if reply == {"ok": True}:
                done.set()
                return
            threading.Event().wait(0.05)

    again()
    assert done.is_set()


def _tree(root: Path) -> dict[str, bytes]:
    files = {"a": os.urandom(100), "sub/b": os.urandom(3 * MiB), "sub/c": b""}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


async def test_a_home_with_a_long_path_and_a_socket_gone(tmp_path: Path) -> None:
    """A home deeper than a Unix socket's path may be still gets same-host
    transfers; once its socket is gone, transfers go over the WebSocket."""
    home = tmp_path.joinpath(*(["deep-folder-name"] * 8), "home")
    assert len(str(home / frames.LOCAL_SOCKET_NAME)) > 107
    platform = Platform(home)
    try:
        src = tmp_path / "src"
        files = _tree(src)
        requests = OpsSent()
        async with get(
            platform.url, platform.token, quiet=True, trace_configs=[requests.config]
        ) as client:
            await client.storage.mkdir(URL("storage:long"))
            requests.sent.clear()
            await client.storage.upload_dir(src, URL("storage:long/up"))
            await client.storage.download_dir(URL("storage:long/up"), tmp_path / "down")
            assert requests.sent == Counter({"GETFILESTATUS": 2, "WEBSOCKET": 2})
            for name, data in files.items():
                assert (tmp_path / "down" / name).read_bytes() == data
                assert storage_host(platform, "long", "up", name).read_bytes() == data

        (home / frames.LOCAL_SOCKET_NAME).unlink()
        requests = OpsSent()
        async with get(
            platform.url, platform.token, quiet=True, trace_configs=[requests.config]
        ) as client:
            await client.storage.upload_dir(src, URL("storage:long/again"))
            # the 3 MiB file goes over HTTP beside the socket
            assert requests.sent["CREATE"] == 1 and requests.sent["WEBSOCKET"] == 1
            for name, data in files.items():
                assert (
                    storage_host(platform, "long", "again", name).read_bytes() == data
                )
    finally:
        platform.stop()


def test_a_file_passed_in_is_not_inherited_by_jobs(
    platform: Platform, tmp_path: Path
) -> None:
    """The platform starts job processes: a file a client passed in is
    close-on-exec from the moment it arrives (MSG_CMSG_CLOEXEC), so no process
    it starts meanwhile can inherit it."""
    folder = f"raw-{uuid.uuid4().hex[:8]}"
    big = tmp_path / "big"
    with big.open("wb") as stream:
        for _ in range(48):
            stream.write(os.urandom(PROGRESS_STEP))
    raw = Raw(platform)
    assert raw.hello(platform.token) == {"ok": True}
    fd = os.open(big, os.O_RDONLY)
    raw.send({"id": 1, "op": "put", "path": _api(folder, "big")}, [fd])
    os.close(fd)
    pid = platform.info.pid
    seen: list[int] = []
    while not seen:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{name}") == str(big):
                    with open(f"/proc/{pid}/fdinfo/{name}") as info:
                        flags = next(ln for ln in info if ln.startswith("flags:"))
                    seen.append(int(flags.split()[1], 8))
            except (FileNotFoundError, StopIteration):
                continue
        reply = None if seen else _nowait(raw)
        if reply is not None and "size" in reply:
            pytest.fail("the copy ended before its fd was seen")
    assert seen[0] & os.O_CLOEXEC, oct(seen[0])
    while (reply := raw.receive()) is not None and "size" not in reply:
        pass
    raw.close()


def _nowait(raw: Raw) -> dict[str, Any] | None:
    try:
        data = raw.conn.recv(1 << 16, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    return json.loads(data) if data else None
