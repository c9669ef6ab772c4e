"""Storage folders through our client on the real local platform: upload_dir,
download_dir, glob, filters, update, continue_ after a real interruption, progress."""

from __future__ import annotations

import asyncio
import errno
import os
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from apolo_jupyter import (
    Client,
    FileFilter,
    StorageProgressComplete,
    StorageProgressEnterDir,
    StorageProgressFail,
    StorageProgressLeaveDir,
    StorageProgressStart,
    StorageProgressStep,
)
from apolo_jupyter.client._file_filter import translate

from .conftest import Platform, Recorder

MiB = 1 << 20
OLD = time.time() - 3600  # an hour ago: surely older than anything the server writes


def _folder() -> str:
    return f"dirs-{uuid.uuid4().hex[:8]}"


def _host(platform: Platform, *parts: str) -> Path:
    return platform.paths.storage_dir.joinpath("local", "default", *parts)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) below ``root``."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = None if path.is_dir() else path.read_bytes()
    return out


def _make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty folder").mkdir()
    (root / "a.txt").write_bytes(b"alpha")
    (root / "empty.bin").write_bytes(b"")
    (root / "big.bin").write_bytes(os.urandom(3 * MiB + 17))
    (root / "sub" / "ünï cødé.txt").write_text("names travel as they are")
    (root / "sub" / "deeper" / "exact.bin").write_bytes(os.urandom(MiB))
    for i in range(30):
        (root / "sub" / f"small-{i}.txt").write_bytes(os.urandom(100 + i))


# ------------------------------------------------------------------ round trip


async def test_upload_then_download_a_tree_byte_exact_with_progress(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    _make_tree(src)
    folder = _folder()
    up = Recorder()
    await client.storage.upload_dir(src, URL(f"storage:{folder}"), progress=up)
    assert _tree(_host(platform, folder)) == _tree(src)

    down = Recorder()
    await client.storage.download_dir(
        URL(f"storage:{folder}"), tmp_path / "back", progress=down
    )
    assert _tree(tmp_path / "back") == _tree(src)

    for rec, files in ((up, 35), (down, 35)):
        starts = rec.of(StorageProgressStart)
        completes = rec.of(StorageProgressComplete)
        assert len(starts) == len(completes) == files
        assert {s.src for s in starts} == {c.src for c in completes}
        # every folder entered once and left once, after all inside it
        entered = [e.src for e in rec.of(StorageProgressEnterDir)]
        left = [e.src for e in rec.of(StorageProgressLeaveDir)]
        assert sorted(entered) == sorted(left) and len(entered) == 4
        assert rec.events[0] == rec.of(StorageProgressEnterDir)[0]
        assert isinstance(rec.events[-1], StorageProgressLeaveDir)
        assert rec.events[-1].src == rec.events[0].src
        # the big file's steps grow to its size
        big = [s for s in rec.of(StorageProgressStep) if s.src.name == "big.bin"]
        assert [s.current for s in big] == sorted(s.current for s in big)
        assert big[-1].current == big[-1].size == 3 * MiB + 17
        assert rec.most_in_flight > 1, "files should go several at once"
    start = up.of(StorageProgressStart)[0]
    assert start.src.scheme == "file"
    assert str(start.dst).startswith(f"storage://local/local/default/{folder}/")
    assert str(down.of(StorageProgressStart)[0].src).startswith("storage://local/")


async def test_an_empty_file_reports_start_and_complete_without_a_step(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    # apolo_sdk sends no step for a file with no bytes (a progress bar would
    # otherwise draw 0 of 0); /dev/null is read as an empty file.
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}"))
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    for src in (empty, Path(os.devnull)):
        rec = Recorder()
        dst = URL(f"storage:{folder}/{src.name}")
        await client.storage.upload_file(src, dst, progress=rec)
        assert [type(e) for e in rec.events] == [
            StorageProgressStart,
            StorageProgressComplete,
        ]
        assert rec.events[0].size == rec.events[1].size == 0
        assert _host(platform, folder, src.name).read_bytes() == b""

    rec = Recorder()
    back = tmp_path / "back.bin"
    await client.storage.download_file(
        URL(f"storage:{folder}/empty.bin"), back, progress=rec
    )
    assert [type(e) for e in rec.events] == [
        StorageProgressStart,
        StorageProgressComplete,
    ]
    assert back.read_bytes() == b""


async def test_upload_dir_into_an_existing_folder_merges(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}/keep"), parents=True)
    await client.storage.create(URL(f"storage:{folder}/keep/old.txt"), b"old")
    (tmp_path / "new.txt").write_text("new")
    await client.storage.upload_dir(tmp_path, URL(f"storage:{folder}"))
    assert _host(platform, folder, "keep", "old.txt").read_bytes() == b"old"
    assert _host(platform, folder, "new.txt").read_bytes() == b"new"


async def test_folder_errors_say_what_is_wrong(client: Client, tmp_path: Path) -> None:
    storage = client.storage
    folder = _folder()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(FileNotFoundError):
        await storage.upload_dir(tmp_path / "missing", URL(f"storage:{folder}"))
    with pytest.raises(NotADirectoryError, match="upload_file"):
        await storage.upload_dir(tmp_path / "file.txt", URL(f"storage:{folder}"))
    with pytest.raises(FileNotFoundError, match="parents=True") as missing:
        await storage.upload_dir(tmp_path, URL(f"storage:{folder}/no/such"))
    assert missing.value.errno == errno.ENOENT
    await storage.mkdir(URL(f"storage:{folder}"))
    await storage.create(URL(f"storage:{folder}/taken"), b"a file")
    with pytest.raises(NotADirectoryError, match="a file has that name"):
        await storage.upload_dir(tmp_path, URL(f"storage:{folder}/taken"))
    with pytest.raises(NotADirectoryError, match="download_file"):
        await storage.download_dir(URL(f"storage:{folder}/taken"), tmp_path / "d")
    with pytest.raises(NotADirectoryError):
        await storage.download_dir(URL(f"storage:{folder}"), tmp_path / "file.txt")
    with pytest.raises(IsADirectoryError, match="upload_dir"):
        await storage.upload_file(tmp_path, URL(f"storage:{folder}/x"))
    with pytest.raises(IsADirectoryError, match="download_dir"):
        await storage.download_file(URL(f"storage:{folder}"), tmp_path / "x")


async def test_a_socket_and_a_link_loop_are_reported_and_skipped(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    import socket

    src = tmp_path / "s"
    (src / "sub").mkdir(parents=True)
    (src / "ok.txt").write_text("fine")
    (src / "sub" / "up").symlink_to(src, target_is_directory=True)  # a loop
    (src / "sub" / "self").symlink_to(src / "sub", target_is_directory=True)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "control.sock"))
    try:
        rec = Recorder()
        folder = _folder()
        await client.storage.upload_dir(src, URL(f"storage:{folder}"), progress=rec)
    finally:
        sock.close()
    fails = {f.src.name: f.message for f in rec.of(StorageProgressFail)}
    assert "not a regular file" in fails["control.sock"]
    assert "a link to a folder it is in" in fails["up"]
    assert "a link to a folder it is in" in fails["self"]
    assert _tree(_host(platform, folder)) == {"ok.txt": b"fine", "sub": None}


# ------------------------------------------------------------------ filters


async def test_filter_and_ignore_files_as_gitignore(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    src = repo / "project"
    (src / "data" / "raw").mkdir(parents=True)
    (src / "build").mkdir()
    (src / "src").mkdir()
    (repo / ".gitignore").write_text("# above the upload\n*.log\n")
    (src / ".gitignore").write_text("build/\n/data/raw/\n*.tmp\n!keep.tmp\n")
    (src / "src" / ".gitignore").write_text("secret.txt\n")
    files = {
        "main.py": "x",
        "run.log": "x",  # ignored by the repository's .gitignore
        "a.tmp": "x",
        "keep.tmp": "x",  # re-included
        "build/out.o": "x",
        "data/raw/big.csv": "x",
        "data/small.csv": "x",
        "src/secret.txt": "x",
        "src/code.py": "x",
        "notes.md": "x",
    }
    for rel, text in files.items():
        (src / rel).write_text(text)
    folder = _folder()

    async def no_markdown(path: str) -> bool:
        return not path.endswith(".md")

    await client.storage.upload_dir(
        src,
        URL(f"storage:{folder}"),
        filter=no_markdown,
        ignore_file_names=frozenset({".gitignore"}),
    )
    got = {k for k, v in _tree(_host(platform, folder)).items() if v is not None}
    assert got == {
        ".gitignore",
        "main.py",
        "keep.tmp",
        "data/small.csv",
        "src/.gitignore",
        "src/code.py",
    }

    # download_dir takes a filter too (folders end with "/")
    seen: list[str] = []

    async def no_src(path: str) -> bool:
        seen.append(path)
        return path != "src/"

    await client.storage.download_dir(
        URL(f"storage:{folder}"), tmp_path / "down", filter=no_src
    )
    assert "src/" in seen and "data/" in seen and "main.py" in seen
    assert not (tmp_path / "down" / "src").exists()
    assert (tmp_path / "down" / "data" / "small.csv").exists()


PATTERNS = [
    "*.py",
    "build/",
    "/top.txt",
    "a/**/b",
    "**/cache",
    "logs/**",
    "doc/*.md",
    "[abc].txt",
    "[!x]y",
    # "^" negates only "!" does in the SDK (as in fnmatch): "[^x]y" is ^y or xy
    "[^x]y",
    "[]z]",
    "[a-]q",
    "file?.bin",
    "\\#notacomment",
    "trailing\\ ",
    "*",
    "a/b/",
    "**",
    "x[",
    "name",
]
PATHS = [
    "x.py",
    "deep/down/x.py",
    "build/",
    "build",
    "sub/build/",
    "top.txt",
    "sub/top.txt",
    "a/b",
    "a/x/y/b",
    "a/b/",
    "cache",
    "q/cache/",
    "logs/a/b.txt",
    "logs/",
    "doc/a.md",
    "doc/sub/a.md",
    "a.txt",
    "d.txt",
    "zy",
    "xy",
    "^y",
    "]",
    "z",
    "-q",
    "aq",
    "file1.bin",
    "file12.bin",
    "#notacomment",
    "trailing ",
    "x[",
    "name",
    "dir/name/",
]


def test_file_filter_rules_match_the_official_sdk() -> None:
    """Every pattern on every path: the same verdict as apolo_sdk's FileFilter
    (our own implementation, checked against the reference)."""
    import apolo_sdk

    for pattern in PATTERNS:
        for prefix, prefix2 in (("", ""), ("sub/", ""), ("", "outer/")):
            ours = FileFilter()
            theirs = apolo_sdk.FileFilter()
            data = f"# comment\n{pattern}\n".encode()
            ours.read_from_buffer(data, prefix, prefix2)
            theirs.read_from_buffer(data, prefix, prefix2)
            for path in PATHS:
                for full in (path, prefix + path):
                    want = asyncio.run(theirs.match(full))
                    assert ours.match_now(full) == want, (pattern, prefix, full)
                    assert asyncio.run(ours.match(full)) == want


def test_translate_edge_cases() -> None:
    import re

    assert re.fullmatch(translate("**/x"), "x")
    assert re.fullmatch(translate("**/x"), "a/b/x/")
    assert not re.fullmatch(translate("a/*/c"), "a/b/d/c")
    assert re.fullmatch(translate("a/**/c"), "a/c")
    assert not re.fullmatch(translate("[!a]"), "/")
    assert not re.fullmatch(translate("[^a]"), "/")
    # a backward range matches nothing (the SDK's regex fails to compile there)
    assert not re.fullmatch(translate("[z-a]"), "m")
    assert re.fullmatch(translate("[!z-a]"), "m")
    with pytest.raises(ValueError, match="end with '/'"):
        FileFilter().exclude("x", prefix="sub")


def test_match_now_refuses_an_async_only_default() -> None:
    async def custom(path: str) -> bool:
        return True

    rules = FileFilter(custom)
    rules.exclude("*.log")
    assert rules.match_now("a.log") is False
    with pytest.raises(TypeError, match="can only be awaited"):
        rules.match_now("a.txt")


# ------------------------------------------------------------------ update / continue_


async def test_update_sends_only_what_is_newer(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for rel in ("a.txt", "b.txt", "sub/c.txt"):
        (src / rel).write_text(rel)
        os.utime(src / rel, (OLD, OLD))
    folder = _folder()
    dst = URL(f"storage:{folder}")
    await client.storage.upload_dir(src, dst)
    (src / "b.txt").write_text("b, changed")  # newer than storage's copy
    rec = Recorder()
    await client.storage.upload_dir(src, dst, update=True, progress=rec)
    assert [s.src.name for s in rec.of(StorageProgressStart)] == ["b.txt"]
    assert _host(platform, folder, "b.txt").read_text() == "b, changed"

    # and back: only what storage has newer than the local copy
    down = tmp_path / "down"
    await client.storage.download_dir(dst, down)
    for path in _host(platform, folder).rglob("*.txt"):
        os.utime(path, (OLD, OLD))
    for path in down.rglob("*.txt"):
        os.utime(path, (OLD - 3600, OLD - 3600))  # storage's copies are newer
    (down / "a.txt").write_text("a, local and newest")
    rec = Recorder()
    await client.storage.download_dir(dst, down, update=True, progress=rec)
    assert sorted(s.dst.name for s in rec.of(StorageProgressStart)) == [
        "b.txt",
        "c.txt",
    ]
    assert (down / "a.txt").read_text() == "a, local and newest"

    # update on single files
    os.utime(_host(platform, folder, "a.txt"))  # storage's copy: changed now
    later = time.time() + 3600
    os.utime(down / "a.txt", (later, later))  # the local copy: changed later
    rec = Recorder()
    await client.storage.upload_file(
        src / "a.txt", dst / "a.txt", update=True, progress=rec
    )
    assert rec.events == []  # storage's copy is newer than the local one
    await client.storage.download_file(
        dst / "a.txt", down / "a.txt", update=True, progress=rec
    )
    assert rec.events == []  # the local copy is the newest


class CancelAfter(Recorder):
    """Cancels the transfer's task once ``limit`` bytes of a file are done."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.task: asyncio.Task[None] | None = None

    def step(self, data: StorageProgressStep) -> None:
        super().step(data)
        if data.current >= self.limit and self.task is not None:
            self.task.cancel()


async def _interrupted(coro: Any, rec: CancelAfter) -> None:
    rec.task = asyncio.ensure_future(coro)
    with pytest.raises(asyncio.CancelledError):
        await rec.task


async def test_continue_resumes_an_interrupted_upload(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    # One file over HTTP (a same-host copy is too quick to cut reliably; its
    # cut is tested on the platform's side, tests/security/test_storage_local).
    os.environ["APOLO_JUPYTER_STORAGE_TRANSPORT"] = "websocket"
    try:
        await _single_file_resumes(client, platform, tmp_path)
    finally:
        del os.environ["APOLO_JUPYTER_STORAGE_TRANSPORT"]
    await _folder_resumes(client, platform, tmp_path)


async def _single_file_resumes(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    data = os.urandom(40 * MiB + 123)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    os.utime(src, (OLD, OLD))
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}"))
    dst = URL(f"storage:{folder}/big.bin")

    cut = CancelAfter(12 * MiB)
    await _interrupted(client.storage.upload_file(src, dst, progress=cut), cut)
    partial = _host(platform, folder, "big.bin").stat().st_size
    assert 12 * MiB <= partial < len(data)

    rec = Recorder()
    await client.storage.upload_file(src, dst, continue_=True, progress=rec)
    first = rec.of(StorageProgressStep)[0]
    assert first.current > 8 * MiB, "should resume, not start over"
    assert _host(platform, folder, "big.bin").read_bytes() == data

    # complete now: continuing again sends nothing
    rec = Recorder()
    await client.storage.upload_file(src, dst, continue_=True, progress=rec)
    assert rec.events == []


async def _folder_resumes(client: Client, platform: Platform, tmp_path: Path) -> None:
    """A folder upload resumes its files the same way: over HTTP (large files
    go that way with the socket too), and after a same-host copy."""
    data = os.urandom(40 * MiB + 123)
    folder = _folder()
    await client.storage.mkdir(URL(f"storage:{folder}"))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big.bin").write_bytes(data)
    (tree / "small.txt").write_text("small")
    for path in tree.iterdir():
        os.utime(path, (OLD, OLD))
    for transport in ("websocket", "auto"):
        os.environ["APOLO_JUPYTER_STORAGE_TRANSPORT"] = transport
        try:
            target = URL(f"storage:{folder}/{transport}")
            cut = CancelAfter(12 * MiB)
            await _interrupted(
                client.storage.upload_dir(tree, target, progress=cut), cut
            )
            rec = Recorder()
            await client.storage.upload_dir(tree, target, continue_=True, progress=rec)
        finally:
            del os.environ["APOLO_JUPYTER_STORAGE_TRANSPORT"]
        steps = [e for e in rec.of(StorageProgressStep) if e.dst.name == "big.bin"]
        if transport == "websocket":
            assert steps[0].current > 8 * MiB, "should resume, not start over"
        else:
            # A same-host copy is quick: the cut may find it done, and then
            # nothing of it goes again.
            assert not steps or steps[0].current > 8 * MiB
        assert _host(platform, folder, transport, "big.bin").read_bytes() == data
        assert _host(platform, folder, transport, "small.txt").read_text() == "small"


async def test_continue_keeps_a_short_copy_and_sends_only_the_rest(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    # A storage copy of at most one MiB was written by one CREATE, so all of it
    # is there: continue_ sends the bytes after it, as apolo_sdk does, not the
    # whole file again. The copy's own first bytes differ here to show which
    # bytes were sent.
    folder = _folder()
    host = _host(platform, folder)
    (host / "t").mkdir(parents=True)
    src = tmp_path / "t" / "f.txt"
    src.parent.mkdir()
    src.write_bytes(b"new content")
    os.utime(src, (OLD, OLD))
    for copy in (host / "f.txt", host / "t" / "f.txt"):
        copy.write_bytes(b"old")  # written now: surely newer than the source

    await client.storage.upload_file(
        src, URL(f"storage:{folder}/f.txt"), continue_=True
    )
    assert (host / "f.txt").read_bytes() == b"old content"
    await client.storage.upload_dir(
        src.parent, URL(f"storage:{folder}/t"), continue_=True
    )
    assert (host / "t" / "f.txt").read_bytes() == b"old content"

    # a copy that is not shorter is left alone; one that is longer goes again
    (host / "f.txt").write_bytes(b"older stuff")
    await client.storage.upload_file(
        src, URL(f"storage:{folder}/f.txt"), continue_=True
    )
    assert (host / "f.txt").read_bytes() == b"older stuff"
    (host / "f.txt").write_bytes(b"a longer old copy")
    await client.storage.upload_file(
        src, URL(f"storage:{folder}/f.txt"), continue_=True
    )
    assert (host / "f.txt").read_bytes() == b"new content"


async def test_continue_resumes_an_interrupted_download(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    data = os.urandom(40 * MiB + 5)
    folder = _folder()
    host = _host(platform, folder)
    host.mkdir()
    (host / "big.bin").write_bytes(data)
    os.utime(host / "big.bin", (OLD, OLD))  # uploaded an hour ago
    src = URL(f"storage:{folder}/big.bin")
    dst = tmp_path / "big.bin"

    cut = CancelAfter(12 * MiB)
    await _interrupted(client.storage.download_file(src, dst, progress=cut), cut)
    partial = dst.stat().st_size
    assert 12 * MiB <= partial < len(data)
    rec = Recorder()
    await client.storage.download_file(src, dst, continue_=True, progress=rec)
    assert rec.of(StorageProgressStep)[0].current > partial
    assert rec.of(StorageProgressStart)[0].size == len(data)
    assert dst.read_bytes() == data

    cut = CancelAfter(12 * MiB)
    await _interrupted(
        client.storage.download_dir(
            URL(f"storage:{folder}"), tmp_path / "d", progress=cut
        ),
        cut,
    )
    assert (tmp_path / "d" / "big.bin").stat().st_size < len(data)
    rec = Recorder()
    await client.storage.download_dir(
        URL(f"storage:{folder}"), tmp_path / "d", continue_=True, progress=rec
    )
    assert rec.of(StorageProgressStep)[0].current >= 12 * MiB
    assert (tmp_path / "d" / "big.bin").read_bytes() == data


# ------------------------------------------------------------------ glob


async def _globbed(client: Client, pattern: str, dironly: bool = False) -> list[str]:
    """What ``storage.glob`` yields for ``pattern``, sorted, as text."""
    async with client.storage.glob(URL(pattern), dironly=dironly) as it:
        return sorted(str(u) for u in [u async for u in it])


async def test_glob(client: Client, platform: Platform) -> None:
    folder = _folder()
    host = _host(platform, folder)
    for rel in (
        "a.csv",
        "b.csv",
        "c.txt",
        ".hidden.csv",
        "x/1.csv",
        "x/y/2.csv",
        "y/3.csv",
        "z1/k",
        "z2/k",
    ):
        (host / rel).parent.mkdir(parents=True, exist_ok=True)
        (host / rel).write_text(rel)

    def found(pattern: str, dironly: bool = False) -> Awaitable[list[str]]:
        return _globbed(client, pattern, dironly)

    base = f"storage:{folder}"
    assert await found(f"{base}/*.csv") == [f"{base}/a.csv", f"{base}/b.csv"]
    assert await found(f"{base}/.*.csv") == [f"{base}/.hidden.csv"]
    assert await found(f"{base}/[ab].csv") == [f"{base}/a.csv", f"{base}/b.csv"]
    assert await found(f"{base}/?.txt") == [f"{base}/c.txt"]
    assert await found(f"{base}/*/*.csv") == [f"{base}/x/1.csv", f"{base}/y/3.csv"]
    assert await found(f"{base}/**/*.csv") == [
        f"{base}/a.csv",
        f"{base}/b.csv",
        f"{base}/x/1.csv",
        f"{base}/x/y/2.csv",
        f"{base}/y/3.csv",
    ]
    assert await found(f"{base}/z*/k") == [f"{base}/z1/k", f"{base}/z2/k"]
    assert await found(f"{base}/*", dironly=True) == [
        f"{base}/x",
        f"{base}/y",
        f"{base}/z1",
        f"{base}/z2",
    ]
    assert await found(f"{base}/z*/") == [f"{base}/z1/", f"{base}/z2/"]
    assert await found(f"{base}/nothing*") == []
    # no pattern: the URI itself, unchecked, as the SDK does
    assert await found(f"{base}/not-there") == [f"{base}/not-there"]


async def test_glob_with_a_trailing_slash_matches_folders_only(
    client: Client, platform: Platform
) -> None:
    # As a shell does, and apolo_sdk: "data/*/" names the folders in data, so a
    # file there must not come back as "file/" (a path that does not exist).
    folder = _folder()
    host = _host(platform, folder)
    (host / "sub" / "inner").mkdir(parents=True)
    (host / "other").mkdir()
    (host / "file.txt").write_text("a file")
    (host / "sub" / "note.txt").write_text("a file")

    def found(pattern: str) -> Awaitable[list[str]]:
        return _globbed(client, pattern)

    base = f"storage:{folder}"
    assert await found(f"{base}/*/") == [f"{base}/other/", f"{base}/sub/"]
    assert await found(f"{base}/**/") == [
        f"{base}/",
        f"{base}/other/",
        f"{base}/sub/",
        f"{base}/sub/inner/",
    ]
    # without the slash, files match too
    assert await found(f"{base}/*") == [
        f"{base}/file.txt",
        f"{base}/other",
        f"{base}/sub",
    ]
