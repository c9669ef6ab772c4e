"""Storage through our client on the real local platform: files, folders, safety."""

from __future__ import annotations

import errno
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from apolo_jupyter import (
    AbstractDeleteProgress,
    Action,
    Client,
    Container,
    IllegalArgumentError,
    JobStatus,
    ResourceNotFound,
    Resources,
    StorageProgressDelete,
    Volume,
)
from apolo_jupyter.client._storage import Storage
from apolo_jupyter.client._storage_models import FileStatusType
from apolo_jupyter.local._storage_fs import StorageError, locate, walk
from apolo_jupyter.local._storage_ops import (
    list_dir,
    make_dirs,
    open_file,
    remove,
    rename,
)

from .conftest import Platform, wait_finished

MiB = 1 << 20


def _folder() -> str:
    return f"st-{uuid.uuid4().hex[:8]}"


def _host(platform: Platform, *parts: str) -> Path:
    return platform.paths.storage_dir.joinpath("local", "default", *parts)


@pytest.fixture
def storage(client: Client) -> Storage:
    return client.storage


async def _read(
    storage: Storage, uri: URL, offset: int = 0, size: int | None = None
) -> bytes:
    out = b""
    async with storage.open(uri, offset, size) as chunks:
        async for chunk in chunks:
            out += chunk
    return out


async def _names(storage: Storage, uri: URL) -> list[str]:
    async with storage.ls(uri) as entries:
        return [entry.name async for entry in entries]


# ------------------------------------------------------------------ basics


async def test_project_root_is_a_managed_directory(storage: Storage) -> None:
    root = await storage.stat(URL("storage:"))
    assert root.type == FileStatusType.DIRECTORY
    assert root.permission == "manage"
    # typed as apolo_sdk types it: an Action, not a bare string
    assert root.permission is Action.MANAGE
    assert root.path == "/local/default"
    assert root.uri == URL("storage://local/local/default")
    assert isinstance(root.modification_time, int)


async def test_mkdir_ls_stat(storage: Storage, platform: Platform) -> None:
    folder = _folder()
    await storage.mkdir(URL(f"storage:{folder}"))
    await storage.mkdir(URL(f"storage:{folder}/sub dir"))
    await storage.create(URL(f"storage:{folder}/a.txt"), b"abc")
    assert _host(platform, folder, "a.txt").read_bytes() == b"abc"

    async with storage.ls(URL(f"storage:{folder}")) as entries:
        listed = {entry.name: entry async for entry in entries}
    assert set(listed) == {"a.txt", "sub dir"}
    assert listed["a.txt"].is_file() and listed["a.txt"].size == 3
    assert listed["sub dir"].is_dir()
    assert listed["a.txt"].uri == URL(f"storage://local/local/default/{folder}/a.txt")

    status = await storage.stat(URL(f"storage:{folder}/a.txt"))
    assert status.path == f"/local/default/{folder}/a.txt"
    assert status.uri == URL(f"storage://local/local/default/{folder}/a.txt")
    assert status.size == 3 and status.is_file()
    with pytest.raises(ResourceNotFound, match="No such file"):
        await storage.stat(URL(f"storage:{folder}/missing"))
    with pytest.raises(NotADirectoryError):
        await _names(storage, URL(f"storage:{folder}/a.txt"))


async def test_mkdir_parents_and_exist_ok(storage: Storage, platform: Platform) -> None:
    folder = _folder()
    deep = URL(f"storage:{folder}/a/b/c")
    with pytest.raises(FileNotFoundError, match="parents=True") as missing:
        await storage.mkdir(deep)
    assert missing.value.errno == errno.ENOENT
    assert missing.value.filename == f"storage://local/local/default/{folder}/a/b"
    await storage.mkdir(deep, parents=True)
    assert _host(platform, folder, "a", "b", "c").is_dir()

    with pytest.raises(FileExistsError, match="exist_ok=True") as exists:
        await storage.mkdir(deep)
    assert exists.value.filename == f"storage://local/local/default/{folder}/a/b/c"
    await storage.mkdir(deep, exist_ok=True)
    await storage.mkdir(deep, parents=True, exist_ok=True)

    await storage.create(URL(f"storage:{folder}/file"), b"x")
    with pytest.raises(FileExistsError):  # the server's EEXIST
        await storage.mkdir(URL(f"storage:{folder}/file"), exist_ok=True)
    with pytest.raises(NotADirectoryError):
        await storage.mkdir(URL(f"storage:{folder}/file/sub"), parents=True)


async def test_upload_download_byte_exact(
    storage: Storage, platform: Platform, tmp_path: Path
) -> None:
    folder = _folder()
    await storage.mkdir(URL(f"storage:{folder}"))
    data = os.urandom(5 * MiB + 12345)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    dst = URL(f"storage:{folder}/blob.bin")
    await storage.upload_file(src, dst)
    assert _host(platform, folder, "blob.bin").read_bytes() == data
    assert (await storage.stat(dst)).size == len(data)

    await storage.download_file(dst, tmp_path / "down.bin")
    assert (tmp_path / "down.bin").read_bytes() == data
    await storage.download_file(dst, URL((tmp_path / "down2.bin").as_uri()))
    assert (tmp_path / "down2.bin").read_bytes() == data
    assert await _read(storage, dst) == data
    assert await _read(storage, dst, 3 * MiB + 7) == data[3 * MiB + 7 :]
    assert await _read(storage, dst, 10, 100) == data[10:110]
    assert await _read(storage, dst, 0, 0) == b""
    with pytest.raises(IllegalArgumentError, match="outside the file"):
        await _read(storage, dst, len(data) + 10)

    # a smaller file over a bigger one, and an empty one
    src.write_bytes(b"short")
    await storage.upload_file(URL(src.as_uri()), dst)
    assert await _read(storage, dst) == b"short"
    src.write_bytes(b"")
    await storage.upload_file(src, dst)
    assert (await storage.stat(dst)).size == 0
    await storage.download_file(dst, tmp_path / "empty.bin")
    assert (tmp_path / "empty.bin").read_bytes() == b""


async def test_create_streams_an_async_iterator(storage: Storage) -> None:
    folder = _folder()
    await storage.mkdir(URL(f"storage:{folder}"))

    async def parts() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([i]) * 300_000

    await storage.create(URL(f"storage:{folder}/f"), parts())
    body = await _read(storage, URL(f"storage:{folder}/f"))
    assert body == b"".join(bytes([i]) * 300_000 for i in range(5))
    await storage.write(URL(f"storage:{folder}/f"), b"XY", 1)
    assert (await _read(storage, URL(f"storage:{folder}/f"), 0, 4)) == b"\x00XY\x00"


async def test_upload_and_download_errors(storage: Storage, tmp_path: Path) -> None:
    folder = _folder()
    await storage.mkdir(URL(f"storage:{folder}"))
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(NotADirectoryError, match="parents=True"):  # as the SDK
        await storage.upload_file(src, URL(f"storage:{folder}/nope/f.txt"))
    with pytest.raises(IsADirectoryError, match=f"{folder}/f.txt"):
        await storage.upload_file(src, URL(f"storage:{folder}"))
    with pytest.raises(FileNotFoundError):
        await storage.upload_file(tmp_path / "missing", URL(f"storage:{folder}/m"))
    with pytest.raises(IsADirectoryError):
        await storage.upload_file(tmp_path, URL(f"storage:{folder}/m"))
    with pytest.raises(IsADirectoryError):
        await storage.download_file(URL(f"storage:{folder}"), tmp_path / "d")
    with pytest.raises(ResourceNotFound):
        await storage.download_file(URL(f"storage:{folder}/m"), tmp_path / "d")
    with pytest.raises(ResourceNotFound, match="No such directory"):
        await storage.create(URL(f"storage:{folder}/nope/f"), b"x")
    with pytest.raises(IsADirectoryError):
        await _read(storage, URL(f"storage:{folder}"))


async def test_rm_and_mv(storage: Storage, platform: Platform) -> None:
    folder = _folder()
    await storage.mkdir(URL(f"storage:{folder}/d/e"), parents=True)
    await storage.create(URL(f"storage:{folder}/d/e/f"), b"1")
    await storage.create(URL(f"storage:{folder}/g"), b"2")

    await storage.mv(URL(f"storage:{folder}/g"), URL(f"storage:{folder}/d/h"))
    assert await _names(storage, URL(f"storage:{folder}")) == ["d"]
    assert await _read(storage, URL(f"storage:{folder}/d/h")) == b"2"
    await storage.mv(URL(f"storage:{folder}/d"), URL(f"storage:{folder}/moved"))
    assert await _names(storage, URL(f"storage:{folder}/moved")) == ["e", "h"]
    with pytest.raises(ResourceNotFound):
        await storage.mv(URL(f"storage:{folder}/d"), URL(f"storage:{folder}/x"))
    with pytest.raises(ResourceNotFound, match="No such directory"):
        await storage.mv(URL(f"storage:{folder}/moved"), URL(f"storage:{folder}/a/b"))

    with pytest.raises(IsADirectoryError, match="recursive=True"):
        await storage.rm(URL(f"storage:{folder}/moved"))
    await storage.rm(URL(f"storage:{folder}/moved/h"))
    await storage.rm(URL(f"storage:{folder}/moved"), recursive=True)
    assert not _host(platform, folder, "moved").exists()
    with pytest.raises(ResourceNotFound):
        await storage.rm(URL(f"storage:{folder}/moved"), recursive=True)
    with pytest.raises(PermissionError, match="managed by the platform"):
        await storage.rm(URL("storage:"), recursive=True)
    assert _host(platform).is_dir()


class Deletions(AbstractDeleteProgress):
    def __init__(self) -> None:
        self.events: list[StorageProgressDelete] = []

    def delete(self, data: StorageProgressDelete) -> None:
        self.events.append(data)


async def test_rm_reports_each_removed_entry_to_progress(
    storage: Storage, platform: Platform
) -> None:
    # apolo_sdk's rm(progress=...) calls progress.delete once per entry the
    # platform removed, children before their folder, with full storage URIs.
    folder = _folder()
    await storage.mkdir(URL(f"storage:{folder}/d/e"), parents=True)
    await storage.create(URL(f"storage:{folder}/d/e/f"), b"1")
    await storage.create(URL(f"storage:{folder}/d/g"), b"2")
    base = f"storage://local/local/default/{folder}"

    one = Deletions()
    await storage.rm(URL(f"storage:{folder}/d/g"), progress=one)
    assert one.events == [StorageProgressDelete(URL(f"{base}/d/g"), is_dir=False)]

    tree = Deletions()
    await storage.rm(URL(f"storage:{folder}/d"), recursive=True, progress=tree)
    assert tree.events == [
        StorageProgressDelete(URL(f"{base}/d/e/f"), is_dir=False),
        StorageProgressDelete(URL(f"{base}/d/e"), is_dir=True),
        StorageProgressDelete(URL(f"{base}/d"), is_dir=True),
    ]
    assert not _host(platform, folder, "d").exists()


async def test_an_unknown_cluster_is_named_in_apolo_sdk_words(
    storage: Storage,
) -> None:
    # Code written for apolo_sdk matches the start of its message.
    sdk_words = "Cluster nowhere doesn't exist in a list of available clusters"
    with pytest.raises(RuntimeError, match=sdk_words) as caught:
        await storage.stat(URL("storage://nowhere/local/default/x"))
    assert "['local']" in str(caught.value)
    with pytest.raises(RuntimeError, match=sdk_words):
        await storage.mv(
            URL("storage://nowhere/local/default/a"),
            URL("storage://nowhere/local/default/b"),
        )


async def test_disk_usage(storage: Storage) -> None:
    usage = await storage.disk_usage()
    assert usage.cluster_name == "local" and usage.org_name == "local"
    assert usage.total > 0 and 0 <= usage.free <= usage.total
    assert 0 < usage.used <= usage.total


async def test_job_writes_into_a_volume_read_back_through_storage(
    client: Client, storage: Storage, tmp_path: Path
) -> None:
    folder = _folder()
    job = await client.jobs.run(
        Container(
            image=client.parse.remote_image("ubuntu:latest"),
            resources=Resources(memory_mb=100, cpu=0.5),
            command="sh -c 'echo hi > /mnt/data/out.txt'",
            volumes=[Volume(URL(f"storage:{folder}"), "/mnt/data")],
        )
    )
    assert (await wait_finished(client, job.id)).status == JobStatus.SUCCEEDED
    assert await _read(storage, URL(f"storage:{folder}/out.txt")) == b"hi\n"
    await storage.download_file(URL(f"storage:{folder}/out.txt"), tmp_path / "o")
    assert (tmp_path / "o").read_text() == "hi\n"
    assert await _names(storage, URL(f"storage:{folder}")) == ["out.txt"]


# ------------------------------------------------------------------ safety


def _snapshot(root: Path) -> dict[str, tuple[str, bytes, int]]:
    """Every entry under ``root``: kind, content, mtime (symlinks not followed)."""
    result: dict[str, tuple[str, bytes, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st_ = path.lstat()
            if path.is_symlink():
                result[str(path)] = (
                    "link",
                    os.readlink(path).encode(),
                    st_.st_mtime_ns,
                )
            elif path.is_dir():
                result[str(path)] = ("dir", b"", st_.st_mtime_ns)
            else:
                result[str(path)] = ("file", path.read_bytes(), st_.st_mtime_ns)
    return result


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A folder outside the storage root that nothing may touch."""
    outside = tmp_path / "sentinel"
    (outside / "inner").mkdir(parents=True)
    (outside / "secret.txt").write_text("secret")
    (outside / "inner" / "deep.txt").write_text("deep")
    return outside


@pytest.fixture
async def raw(platform: Platform) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {platform.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


async def _raw(
    session: aiohttp.ClientSession,
    platform: Platform,
    method: str,
    encoded_path: str,
    data: bytes | None = None,
) -> tuple[int, dict[str, object]]:
    url = URL(f"{platform.url}/storage{encoded_path}", encoded=True)
    async with session.request(method, url, data=data) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if resp.status >= 400 else {})


async def test_dotdot_in_the_url_is_refused(
    raw: aiohttp.ClientSession, platform: Platform, sentinel: Path
) -> None:
    before = _snapshot(sentinel)
    project = _host(platform)
    rel = os.path.relpath(sentinel, project)  # ../../../..../sentinel
    assert rel.startswith("..")
    encodings = [
        rel,
        rel.replace("..", "%2e%2e"),
        rel.replace("..", "%2E%2E"),
        rel.replace("/", "%2f"),
        rel.replace("..", ".%2e").replace("/", "%2F"),
    ]
    for form in encodings:
        base = f"/local/default/{form}"
        for method, query, data in [
            ("GET", "op=OPEN", None),
            ("GET", "op=LISTSTATUS", None),
            ("GET", "op=GETFILESTATUS", None),
            ("PUT", "op=CREATE", b"pwned"),
            ("PUT", "op=MKDIRS", None),
            ("PATCH", "op=WRITE", b"pwned"),
            ("DELETE", "op=DELETE&recursive=true", None),
            ("POST", "op=RENAME&destination=/local/default/stolen", None),
        ]:
            name = "inner" if query.startswith("op=LIST") else "secret.txt"
            status, body = await _raw(
                raw, platform, method, f"{base}/{name}?{query}", data
            )
            assert status == 400, (form, method, query, status, body)
            assert body["errno"] == "EACCES", body
            assert "'..'" in str(body["error"])
    status, body = await _raw(
        raw,
        platform,
        "POST",
        f"/local/default/x?op=RENAME&destination=/local/default/{rel}/y",
    )
    assert status == 400 and body["errno"] == "EACCES"
    assert _snapshot(sentinel) == before
    assert not _host(platform, "stolen").exists()


async def test_dotdot_in_a_client_uri_is_refused(storage: Storage) -> None:
    for text in ("storage:../x", "storage:a/../../b", "storage:.."):
        with pytest.raises(ValueError, match=r"'\.\.' is not allowed"):
            await storage.stat(URL(text))


async def test_symlinks_out_of_the_storage_are_not_followed(
    storage: Storage, platform: Platform, sentinel: Path, tmp_path: Path
) -> None:
    folder = _folder()
    await storage.mkdir(URL(f"storage:{folder}"))
    (_host(platform, folder) / "out").symlink_to(sentinel)
    (_host(platform, folder) / "etc").symlink_to("/etc")
    (_host(platform, folder) / "secret").symlink_to(sentinel / "secret.txt")
    (_host(platform, folder) / "dangling").symlink_to(sentinel / "new-file")
    before = _snapshot(sentinel)
    src = tmp_path / "payload"
    src.write_bytes(b"pwned")

    link = await storage.stat(URL(f"storage:{folder}/out"))
    assert link.is_symlink() and link.target == str(sentinel)
    async with storage.ls(URL(f"storage:{folder}")) as entries:
        kinds = {entry.name: entry.type async for entry in entries}
    assert set(kinds.values()) == {FileStatusType.SYMLINK}

    def uri(path: str) -> URL:
        return URL(f"storage:{folder}/{path}")

    refused = [
        _read(storage, uri("etc/passwd")),
        _read(storage, uri("out/secret.txt")),
        _read(storage, uri("secret")),
        _names(storage, uri("out")),
        _names(storage, uri("etc")),
        storage.stat(uri("out/secret.txt")),
        storage.create(uri("out/new.txt"), b"pwned"),
        storage.create(uri("secret"), b"pwned"),
        storage.create(uri("dangling"), b"pwned"),
        storage.write(uri("secret"), b"pwned", 0),
        storage.mkdir(uri("out/newdir"), parents=True, exist_ok=True),
        storage.mkdir(uri("dangling"), exist_ok=True),
        storage.rm(uri("out/inner"), recursive=True),
        storage.rm(uri("out/secret.txt")),
        storage.mv(uri("out/secret.txt"), uri("stolen")),
        storage.mv(uri("stolen"), uri("out/planted")),
        storage.upload_file(src, uri("out/new.txt")),
    ]
    for call in refused:
        with pytest.raises(PermissionError, match="leads outside the storage"):
            await call
    with pytest.raises(IsADirectoryError, match="symlink"):  # not a file to download
        await storage.download_file(uri("secret"), tmp_path / "leak")
    assert not (tmp_path / "leak").exists()

    # deleting and renaming a symlink act on the link, never on its target
    await storage.mv(uri("out"), uri("out2"))
    await storage.rm(uri("out2"))
    await storage.rm(uri("secret"))
    assert _snapshot(sentinel) == before
    assert await _names(storage, URL(f"storage:{folder}")) == ["dangling", "etc"]


async def test_symlinks_inside_the_storage_work(
    storage: Storage, platform: Platform
) -> None:
    folder = _folder()
    await storage.mkdir(URL(f"storage:{folder}/real"), parents=True)
    await storage.create(URL(f"storage:{folder}/real/f"), b"data")
    (_host(platform, folder) / "alias").symlink_to("real")
    assert await _read(storage, URL(f"storage:{folder}/alias/f")) == b"data"
    assert await _names(storage, URL(f"storage:{folder}/alias")) == ["f"]
    alias = await storage.stat(URL(f"storage:{folder}/alias"))
    assert alias.is_dir() and alias.target == "real"


async def test_absolute_host_paths_stay_inside_the_storage(
    storage: Storage, raw: aiohttp.ClientSession, platform: Platform, sentinel: Path
) -> None:
    before = _snapshot(sentinel)
    root_before = sorted(p.name for p in platform.paths.storage_dir.iterdir())
    absolute = URL(f"storage:{sentinel}/secret.txt")  # /tmp/... is a project path
    with pytest.raises(ResourceNotFound):
        await storage.stat(absolute)
    with pytest.raises(ResourceNotFound):
        await _read(storage, absolute)
    with pytest.raises(ResourceNotFound):
        await storage.create(URL(f"storage:{sentinel}/new"), b"pwned")
    for path in (f"/{sentinel}/secret.txt", f"//{sentinel}/secret.txt"):
        status, body = await _raw(raw, platform, "GET", quote(path) + "?op=OPEN")
        assert status == 404, body
        status, body = await _raw(
            raw, platform, "PUT", quote(path) + "?op=CREATE", b"x"
        )
        assert status in (400, 404), body
        status, body = await _raw(raw, platform, "GET", f"{path}?op=OPEN")
        assert status == 404, body
    assert _snapshot(sentinel) == before
    assert sorted(p.name for p in platform.paths.storage_dir.iterdir()) == root_before


async def test_bad_requests_are_clear(
    raw: aiohttp.ClientSession, platform: Platform
) -> None:
    status, body = await _raw(raw, platform, "GET", "/local/default?op=NOPE")
    assert status == 400 and "LISTSTATUS" in str(body["error"])
    status, body = await _raw(raw, platform, "PUT", "/local/default?op=OPEN")
    assert status == 405 and "GET" in str(body["error"])
    status, body = await _raw(
        raw, platform, "GET", "/local/default/a%00b?op=GETFILESTATUS"
    )
    assert status == 400 and "NUL" in str(body["error"])
    status, body = await _raw(raw, platform, "PATCH", "/local/default/x?op=WRITE", b"x")
    assert status == 400 and "Content-Range" in str(body["error"])


# ------------------------------------------------------------------ fuzzing

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
path_text = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.sampled_from(
            [
                "..",
                ".",
                "",
                "a",
                "%2e%2e",
                "%2F",
                "~",
                "\x00",
                "/",
                "é",
                "?",
                "#",
                "x" * 300,
            ]
        ),
        max_size=6,
    ).map("/".join),
)


def _documented(exc: BaseException) -> bool:
    if isinstance(exc, RuntimeError):
        return "doesn't exist" in str(exc)
    return isinstance(exc, (OSError, ValueError))


@FUZZ
@given(text=path_text)
async def test_random_paths_give_documented_errors(storage: Storage, text: str) -> None:
    for call in (
        lambda: storage.stat(URL("storage:" + text)),
        lambda: storage.mkdir(URL("storage:fuzz/" + text), parents=True, exist_ok=True),
    ):
        try:
            await call()
        except Exception as exc:
            assert _documented(exc), repr(exc)
            assert "Internal Server Error" not in str(exc), repr(exc)


@FUZZ
@given(
    text=path_text,
    op=st.sampled_from(["GETFILESTATUS", "LISTSTATUS", "OPEN", "MKDIRS", "CREATE"]),
)
async def test_random_paths_never_break_the_server(
    raw: aiohttp.ClientSession, platform: Platform, text: str, op: str
) -> None:
    encoded = quote(text, safe="/%")
    method = "PUT" if op in ("MKDIRS", "CREATE") else "GET"
    prefix = "/local/default/fuzz/" if method == "PUT" else "/"
    url_path = prefix + encoded + f"?op={op}"
    try:
        URL(f"{platform.url}/storage{url_path}", encoded=True)
    except ValueError:  # yarl refuses the URL before sending it
        return
    body_bytes = b"x" if op == "CREATE" else None
    status, body = await _raw(raw, platform, method, url_path, body_bytes)
    assert status < 500, (text, status, body)
    if status >= 400:
        assert isinstance(body.get("error"), str) and body["error"]


async def test_a_symlink_swapped_in_after_the_check_is_not_followed(
    tmp_path: Path, sentinel: Path
) -> None:
    """A job may replace a folder by a symlink between the check and the use."""
    root_dir = tmp_path / "storage"
    (root_dir / "local" / "default" / "f" / "d" / "sub").mkdir(parents=True)
    (root_dir / "local" / "default" / "f" / "d" / "secret.txt").write_text("mine")
    root = os.path.realpath(root_dir)
    entries = {
        name: locate(root, f"/local/default/f/d/{name}")
        for name in ("secret.txt", "sub", "new")
    }
    real_d = os.path.realpath(root_dir / "local" / "default" / "f" / "d")
    before = _snapshot(sentinel)
    swapped = root_dir / "local" / "default" / "f" / "d"
    swapped.rename(swapped.with_name("d.orig"))
    swapped.symlink_to(sentinel)

    with pytest.raises(OSError):  # the walk from the root meets the symlink
        walk(root, real_d)
    attempts: list[Callable[[], object]] = [
        lambda: open_file(entries["secret.txt"], os.O_RDONLY),
        lambda: open_file(entries["secret.txt"], os.O_WRONLY | os.O_TRUNC),
        lambda: open_file(entries["new"], os.O_WRONLY | os.O_CREAT),
        lambda: make_dirs(entries["new"]),
        lambda: list_dir(entries["sub"]),
        lambda: remove(entries["sub"], True),
        lambda: remove(entries["secret.txt"], False),
        lambda: rename(entries["secret.txt"], locate(root, "/local/default/f/x")),
        lambda: rename(locate(root, "/local/default/f/d.orig"), entries["new"]),
    ]
    for attempt in attempts:
        with pytest.raises((OSError, StorageError)):
            attempt()
    assert _snapshot(sentinel) == before


header_text = st.one_of(
    st.text(max_size=30),
    st.builds(
        "bytes{}{}-{}/{}".format,
        st.sampled_from(["=", " ", ""]),
        st.integers(-5, 1 << 40),
        st.integers(-5, 1 << 40),
        st.sampled_from(["*", "10", "x"]),
    ),
)


@FUZZ
@given(
    text=path_text,
    other=path_text,
    op=st.sampled_from(["OPEN", "WRITE", "DELETE", "RENAME", "CREATE", "LISTSTATUS"]),
    header=header_text,
    body=st.binary(max_size=64),
)
async def test_random_requests_never_break_the_server(
    raw: aiohttp.ClientSession,
    platform: Platform,
    text: str,
    other: str,
    op: str,
    header: str,
    body: bytes,
) -> None:
    """Mutating requests stay under storage:fuzz; headers and bodies are random."""
    method = {"OPEN": "GET", "LISTSTATUS": "GET", "WRITE": "PATCH"}.get(op, "PUT")
    method = {"DELETE": "DELETE", "RENAME": "POST"}.get(op, method)
    query = f"op={op}&recursive=true"
    if op == "RENAME":
        query += "&destination=" + quote("/local/default/fuzz/" + other, safe="")
    headers = {"Range": header, "Content-Range": header}
    url_path = "/local/default/fuzz/" + quote(text, safe="/%") + "?" + query
    url = URL(f"{platform.url}/storage{url_path}", encoded=True)
    try:
        async with raw.request(method, url, data=body, headers=headers) as resp:
            status, answer = resp.status, await resp.read()
    except ValueError:  # a header value the client itself refuses
        return
    assert status < 500, (status, answer)
    if status >= 400:
        error = json.loads(answer)["error"]
        assert isinstance(error, str) and error
