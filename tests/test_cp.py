"""``%apolo_cp`` and ``apolo-jupyter cp`` on the real local platform: both ways,
patterns, bad input, a copy killed half way and continued, the notebook's bar."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from nbclient import NotebookClient
from yarl import URL

from apolo_jupyter.client._local_home import LocalPaths
from apolo_jupyter.kernel._runtime import runtime

from .conftest import cli, until

MiB = 1 << 20


def _storage_host(*parts: str) -> Path:
    """Where the platform the magics use keeps ``storage:<parts>``."""
    home = LocalPaths(Path(os.environ["APOLO_JUPYTER_HOME"]))
    return home.storage_dir.joinpath("local", "default", *parts)


def _folder() -> str:
    return f"cp-{uuid.uuid4().hex[:8]}"


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _mkdir(folder: str) -> None:
    rt = runtime()
    client = rt.client()
    rt.run(client.storage.mkdir(URL(f"storage:{folder}"), parents=True), timeout=30)


def test_cp_both_ways_with_folders_and_patterns(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    (src / "a.csv").write_text("a")
    (src / "b.csv").write_text("b")
    (src / "sub" / "big.bin").write_bytes(os.urandom(3 * MiB))
    folder = _folder()
    _mkdir(folder)

    # into an existing folder: it goes inside, under its own name
    shell.run_line_magic("apolo_cp", f"-r {src} storage:{folder}")
    assert _files(_storage_host(folder, "data")) == _files(src)
    out = capsys.readouterr().out
    assert "upload data: 100%" in out and "3/3 files" in out

    # to a new name
    shell.run_line_magic("apolo_cp", f"-r {src} storage:{folder}/copy")
    assert _files(_storage_host(folder, "copy")) == _files(src)

    # a single file, and back
    shell.run_line_magic("apolo_cp", f"{src}/a.csv storage:{folder}/one.csv")
    assert _storage_host(folder, "one.csv").read_text() == "a"
    shell.run_line_magic("apolo_cp", f"storage:{folder}/one.csv {tmp_path}/one.csv")
    assert (tmp_path / "one.csv").read_text() == "a"

    # a folder back, and a pattern into a folder
    shell.run_line_magic("apolo_cp", f"-r storage:{folder}/data {tmp_path}/back")
    assert _files(tmp_path / "back") == _files(src)
    (tmp_path / "csv").mkdir()
    shell.run_line_magic("apolo_cp", f"storage:{folder}/data/*.csv {tmp_path}/csv")
    assert _files(tmp_path / "csv") == {"a.csv": b"a", "b.csv": b"b"}
    shell.run_line_magic("apolo_cp", f"'{src}/*.csv' storage:{folder}/copy/sub")
    assert set(_files(_storage_host(folder, "copy", "sub"))) == {
        "a.csv",
        "b.csv",
        "big.bin",
    }
    # missing folders on the way to a new name are made
    shell.run_line_magic("apolo_cp", f"-r {src} storage:{folder}/new/deep/data")
    assert _files(_storage_host(folder, "new", "deep", "data")) == _files(src)
    shell.run_line_magic(
        "apolo_cp", f"storage:{folder}/one.csv {tmp_path}/made/here/one.csv"
    )
    assert (tmp_path / "made" / "here" / "one.csv").read_text() == "a"
    # file: URLs are local paths too
    shell.run_line_magic(
        "apolo_cp", f"storage:{folder}/one.csv {(tmp_path / 'u.csv').as_uri()}"
    )
    assert (tmp_path / "u.csv").read_text() == "a"


def test_cp_update_copies_only_newer_files(
    shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = time.time() - 3600
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.txt", "b.txt"):
        (src / name).write_text(name)
        os.utime(src / name, (old, old))
    folder = _folder()
    _mkdir(folder)
    # into the existing folder both times: storage:<folder>/src
    shell.run_line_magic("apolo_cp", f"-r {src} storage:{folder}")
    capsys.readouterr()
    (src / "b.txt").write_text("b, new")
    shell.run_line_magic("apolo_cp", f"-r -u {src} storage:{folder}")
    assert "1/1 files (1 up to date)" in capsys.readouterr().out
    assert _storage_host(folder, "src", "b.txt").read_text() == "b, new"
    assert _storage_host(folder, "src", "a.txt").read_text() == "a.txt"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a b", "both sides are local paths"),
        ("storage:a storage:b", "both sides are storage"),
        ("/no/such/file storage:x", "no such local file or folder"),
        ("{tmp} storage:", "is a folder: add -r"),
        ("'{tmp}/*.nothing' storage:", "no local file matches"),
        ("storage:{missing} {tmp}/x", "no such file or folder in storage"),
        ("'storage:{missing}/*' {tmp}", "nothing in storage matches"),
        ("{tmp}/f.txt storage:{missing}/", "is not a storage folder"),
        ("--bogus a b", "unrecognized arguments"),
    ],
)
def test_cp_bad_input_says_how_to_fix_it(
    shell: InteractiveShell, tmp_path: Path, line: str, message: str
) -> None:
    (tmp_path / "f.txt").write_text("x")
    missing = _folder()
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("apolo_cp", line.format(tmp=tmp_path, missing=missing))


def _big_and_old(path: Path) -> None:
    """384 MiB last changed an hour ago: storage's copy is surely newer."""
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for i in range(384):
            out.write(i.to_bytes(8, "little") + block[8:])
    old = time.time() - 3600
    os.utime(path, (old, old))


def _cli_cp_underway(
    src: Path, folder: str, host: Path, **popen: Any
) -> subprocess.Popen[Any]:
    """``apolo-jupyter cp SRC storage:FOLDER`` started afresh, returned once 16
    MiB of it are in storage at ``host`` (or it has ended)."""
    host.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "apolo_jupyter.cli", "cp", str(src), f"storage:{folder}"],
        **popen,
    )  # fmt: skip

    def underway() -> bool:
        return (
            host.exists() and host.stat().st_size >= 16 * MiB
        ) or proc.poll() is not None

    try:
        until(underway, timeout=60)
    except BaseException:
        proc.kill()
        proc.wait(30)
        raise
    return proc


def test_cli_cp_killed_half_way_then_continued(tmp_path: Path) -> None:
    """A real interruption: the CLI is SIGKILLed while the file is on its way;
    ``cp -c`` then sends only the rest."""
    src = tmp_path / "big.bin"
    _big_and_old(src)
    folder = _folder()
    _mkdir(folder)
    host = _storage_host(folder, "big.bin")
    for _attempt in range(3):  # the copy may beat the watcher on a fast machine
        proc = _cli_cp_underway(
            src, folder, host, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if host.stat().st_size < src.stat().st_size:
            break
    partial = host.stat().st_size
    assert 16 * MiB <= partial < src.stat().st_size, "the copy was not cut"

    # a mark in the part already sent: a resumed copy leaves it there
    with host.open("r+b") as partial_file:
        partial_file.write(b"RESUMED!")
    done = cli("cp", "-c", str(src), f"storage:{folder}")
    assert done.returncode == 0, done.stderr
    data = host.read_bytes()
    assert data[:8] == b"RESUMED!", "the first part was sent again"
    assert data[8:] == src.read_bytes()[8:]
    again = cli("cp", "-c", str(src), f"storage:{folder}")
    assert again.returncode == 0
    assert "(1 up to date)" in again.stdout  # complete: nothing more was sent


def test_cli_cp_errors_and_help(tmp_path: Path) -> None:
    out = cli("cp", str(tmp_path), "storage:x")
    assert out.returncode == 2
    assert "add -r" in out.stderr and "apolo-jupyter cp --help" in out.stderr
    assert "-c, --continue" in cli("cp", "--help").stdout


def test_notebook_shows_the_bar_and_saves_its_final_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("APOLO_JUPYTER_DISPLAY", "widget")
    monkeypatch.setenv("APOLO_JUPYTER_PROGRESS_AFTER", "0")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.bin").write_bytes(os.urandom(MiB + i))
    folder = _folder()
    _mkdir(folder)
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext apolo_jupyter"),
            nbformat.v4.new_code_cell(f"%apolo_cp -r {src} storage:{folder}"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    NotebookClient(
        nb, timeout=120, kernel_name="python3", store_widget_state=True
    ).execute()
    [shown] = [o for o in nb.cells[1].outputs if o["output_type"] == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]
    assert "<progress" in shown["data"]["text/html"]
    models = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    [bar] = [
        m["state"]
        for m in models["state"].values()
        if m["state"].get("_anywidget_id", "").endswith("TransferProgress")
    ]
    assert bar["state"] == "done" and bar["fraction"] == 1.0
    assert "5/5 files" in bar["stats"]
    assert "var(--jp-" in bar["_css"] and "export default" in bar["_esm"]
    assert _files(_storage_host(folder, "src")) == _files(src)


def test_cli_cp_interrupted_says_how_to_continue(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) stops the copy and prints the command that continues it."""
    src = tmp_path / "big.bin"
    _big_and_old(src)
    folder = _folder()
    _mkdir(folder)
    host = _storage_host(folder, "big.bin")
    for _attempt in range(3):
        proc = _cli_cp_underway(
            src,
            folder,
            host,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        proc.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        if proc.returncode == 130:
            # it stops when asked, not when the copy would have ended
            assert time.monotonic() - interrupted < 15, out
            break
    assert proc.returncode == 130, out
    assert (
        "interrupted" in out and "Interrupted. Continue where it stopped with:" in out
    )
    assert f"apolo-jupyter cp -c {src} storage:{folder}" in out
    assert host.stat().st_size < src.stat().st_size
    done = cli("cp", "-c", str(src), f"storage:{folder}")
    assert done.returncode == 0, done.stderr
    assert host.read_bytes() == src.read_bytes()


def test_cli_cp_draws_one_line_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal the progress is one line, rewritten in place (\\r)."""
    import pty

    src = tmp_path / "data"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}.bin").write_bytes(os.urandom(2 * MiB))
    folder = _folder()
    _mkdir(folder)
    main, child = pty.openpty()
    env = dict(os.environ, APOLO_JUPYTER_PROGRESS_AFTER="0", APOLO_JUPYTER_QUIET="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "apolo_jupyter.cli", "cp", "-r", str(src), f"storage:{folder}"],
        stdout=child,
        stderr=child,
        env=env,
    )  # fmt: skip
    os.close(child)
    out = b""
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child side closed
            break
        if not data:
            break
        out += data
    os.close(main)
    assert proc.wait(60) == 0, out
    text = out.decode()
    assert text.count("\rupload data:") >= 1
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    assert len(lines) == 1, text  # every update rewrote the same line
    assert lines[0].rsplit("\r", 1)[-1].startswith("upload data: 100%|")
    assert "6/6 files" in lines[0]
