"""The forward registry shared by the kernel and the jupyter-server extension."""

from __future__ import annotations

import concurrent.futures
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apolo_jupyter.kernel import _forward_registry as registry

from .conftest import dead_pid


@pytest.fixture
def forwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "forwards"
    monkeypatch.setenv(registry.ENV_DIR, str(directory))
    return directory


def test_register_lookup_unregister(forwards: Path) -> None:
    fwd = registry.register(8123, "job-abc")
    assert fwd.port == 8123 and fwd.job_id == "job-abc" and fwd.pid == os.getpid()
    assert len(fwd.id) >= 16 and registry.lookup(fwd.id) == fwd
    registry.unregister(fwd.id)
    assert registry.lookup(fwd.id) is None
    registry.unregister(fwd.id)  # idempotent


def test_permissions_and_content(forwards: Path) -> None:
    fwd = registry.register(9000, "job-1")
    assert stat.S_IMODE(forwards.stat().st_mode) == 0o700
    path = forwards / f"{fwd.id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert set(data) == {"id", "port", "job_id", "pid", "created", "started"}
    assert [p.name for p in forwards.iterdir()] == [path.name]  # no temp files left


def test_ids_are_unique_and_opaque(forwards: Path) -> None:
    ids = {registry.register(9000, "job").id for _ in range(20)}
    assert len(ids) == 20
    assert all(registry.lookup(i) is not None for i in ids)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "short",
        "../../etc/passwd",
        "a" * 65,
        "abc/def/ghijklmnopq",
        "x" * 15 + ".",
        "é" * 20,
    ],
)
def test_lookup_rejects_malformed_ids_before_touching_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    # The registry "directory" is a regular file: any file system access would fail
    # differently from a clean None.
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv(registry.ENV_DIR, str(not_a_dir))
    assert registry.lookup(bad) is None
    registry.unregister(bad)


def _plant(forwards: Path, forward_id: str) -> None:
    """A record that would be valid for ``forward_id`` in every other respect,
    at the path that id names (relative to the registry directory)."""
    fwd = registry.register(9000, "job")
    data = json.loads((forwards / f"{fwd.id}.json").read_text())
    data["id"] = forward_id
    path = forwards / f"{forward_id}.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)


def test_path_traversal_cannot_reach_outside(forwards: Path, tmp_path: Path) -> None:
    _plant(forwards, "../outside")
    assert (tmp_path / "outside.json").exists()
    assert registry.lookup("../outside") is None


@pytest.mark.parametrize(
    "bad", ["a" * 65, "a" * 15, "abc.def-ghijklmnop", "abc defghijklmnop"]
)
def test_only_the_id_pattern_stops_these(forwards: Path, bad: str) -> None:
    _plant(forwards, bad)
    assert registry.lookup(bad) is None
    good = "b" * 20
    _plant(forwards, good)  # the same planting, with a valid id, is found
    assert registry.lookup(good) is not None


def test_dead_pid_is_stale_and_removed(forwards: Path) -> None:
    pid = dead_pid()
    fwd = registry.register(9000, "job")
    path = forwards / f"{fwd.id}.json"
    data = json.loads(path.read_text())
    data["pid"] = pid
    path.write_text(json.dumps(data))
    assert registry.lookup(fwd.id) is None
    assert not path.exists()


def test_a_reused_pid_does_not_revive_a_record(forwards: Path) -> None:
    fwd = registry.register(9000, "job")
    assert fwd.started is not None and registry.lookup(fwd.id) == fwd
    path = forwards / f"{fwd.id}.json"
    data = json.loads(path.read_text())
    data["pid"] = 1  # alive, but not the process that registered
    path.write_text(json.dumps(data))
    assert registry.lookup(fwd.id) is None
    assert not path.exists()


def test_a_fifo_under_a_record_name_does_not_block(forwards: Path) -> None:
    fwd = registry.register(9000, "job")
    path = forwards / f"{fwd.id}.json"
    path.unlink()
    os.mkfifo(path, 0o600)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(registry.lookup, fwd.id).result(timeout=5) is None


def test_a_directory_others_can_write_is_not_trusted(forwards: Path) -> None:
    fwd = registry.register(9000, "job")
    os.chmod(forwards, 0o777)
    assert registry.lookup(fwd.id) is None
    os.chmod(forwards, 0o700)
    assert registry.lookup(fwd.id) == fwd


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(started="123"),
        lambda d: d.update(port="80"),
        lambda d: d.update(port=0),
        lambda d: d.update(port=70000),
        lambda d: d.update(id="somebody-elses-id-123"),
        lambda d: d.pop("job_id"),
        lambda d: d.update(pid="1"),
    ],
)
def test_malformed_records_are_ignored(
    forwards: Path, mutate: Callable[[dict[str, Any]], object]
) -> None:
    fwd = registry.register(9000, "job")
    path = forwards / f"{fwd.id}.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    assert registry.lookup(fwd.id) is None


def test_garbage_file_is_ignored(forwards: Path) -> None:
    fwd = registry.register(9000, "job")
    (forwards / f"{fwd.id}.json").write_text("{not json")
    assert registry.lookup(fwd.id) is None


def test_register_validates(forwards: Path) -> None:
    for port in (0, 65536, -1, True):
        with pytest.raises(ValueError):
            registry.register(port, "job")
    with pytest.raises(ValueError):
        registry.register(80, "")


def test_unregister_all_of_this_process(forwards: Path) -> None:
    mine = [registry.register(9000 + i, "job") for i in range(3)]
    other = registry.register(9100, "job")
    path = forwards / f"{other.id}.json"
    data = json.loads(path.read_text())
    data["pid"] = os.getppid()  # alive, but not us
    data["started"] = registry._start_ticks(os.getppid())
    path.write_text(json.dumps(data))
    registry.unregister_all_of_this_process()
    assert all(registry.lookup(f.id) is None for f in mine)
    assert registry.lookup(other.id) is not None


def test_atexit_cleanup_in_a_child_process(forwards: Path) -> None:
    code = (
        "from apolo_jupyter.kernel import _forward_registry as r\n"
        "print(r.register(9000, 'job').id)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    forward_id = out.stdout.strip()
    assert len(forward_id) >= 16
    assert not (forwards / f"{forward_id}.json").exists()


def test_default_dir_is_under_jupyter_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(registry.ENV_DIR, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "rt"))
    assert registry.forwards_dir() == tmp_path / "rt" / "apolo-forwards"
