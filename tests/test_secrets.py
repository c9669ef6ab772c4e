"""Secrets: client.secrets as the SDK has it, the official `apolo secret`, jobs that
get them as files and env, and a value that never leaks anywhere else."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from yarl import URL

from apolo_jupyter import Client, ResourceNotFound, Secret

from .compat.test_official_sdk import passed_config
from .conftest import Platform, start_job, wait_finished

BIN = Path(sys.executable).parent


async def test_add_list_get_rm(client: Client, platform: Platform) -> None:
    key = f"k{uuid.uuid4().hex[:8]}"
    await client.secrets.add(key, b"\x00binary\xffvalue")
    async with client.secrets.list() as it:
        found = [s async for s in it if s.key == key]
    assert found == [Secret(key, found[0].owner, "local", "local", "default")]
    assert found[0].uri == URL(f"secret://local/local/default/{key}")
    assert await client.secrets.get(key) == b"\x00binary\xffvalue"
    path = platform.paths.home / "secrets" / key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    await client.secrets.add(key, b"replaced")
    assert await client.secrets.get(key) == b"replaced"
    await client.secrets.rm(key)
    with pytest.raises(ResourceNotFound):
        await client.secrets.get(key)
    with pytest.raises(ResourceNotFound):
        await client.secrets.rm(key)
    with pytest.raises(Exception, match="invalid"):
        await client.secrets.add("../escape", b"x")


def test_official_cli_secret_add_and_ls(platform: Platform, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "APOLO_PASSED_CONFIG": passed_config(platform),
        "COLUMNS": "200",
    }
    key = f"cli{uuid.uuid4().hex[:8]}"
    run = [str(BIN / "apolo"), "secret"]
    added = subprocess.run([*run, "add", key, "from-official"], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([*run, "ls"], env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert listed.returncode == 0 and key in listed.stdout, listed.stderr
    assert "from-official" not in listed.stdout
    ours = subprocess.run(
        [str(BIN / "apolo-jupyter"), "secret", "ls"],
        env={**env, "APOLO_JUPYTER_QUIET": "1"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert key in ours.stdout and "from-official" not in ours.stdout


async def test_job_gets_file_and_env_and_refuses_missing(client: Client) -> None:
    key = f"job{uuid.uuid4().hex[:8]}"
    await client.secrets.add(key, b"file-and-env")
    mounts = client.parse.volumes([f"secret:{key}:/var/secrets/s"])
    envs = client.parse.envs([f"S=secret:{key}"])
    assert envs.secret_env == {"S": URL(f"secret://local/local/default/{key}")}
    job = await start_job(
        client,
        command="sh -c 'cat /var/secrets/s; echo; echo $S; "
        "echo x > /var/secrets/s || echo read-only'",
        secret_files=mounts.secret_files,
        secret_env=envs.secret_env,
    )
    assert (await wait_finished(client, job.id)).exit_code == 0
    async with client.jobs.monitor(job.id) as it:
        out = b"".join([chunk async for chunk in it]).decode()
    assert out.splitlines()[:2] == ["file-and-env", "file-and-env"]
    assert "read-only" in out
    with pytest.raises(Exception, match="does not exist"):
        await start_job(
            client,
            command="true",
            secret_env={"S": URL("secret://local/local/default/missing-key")},
        )


SECRET_VALUE = "never-leak-" + uuid.uuid4().hex


def _scan_argv(done: threading.Event, hits: list[str]) -> None:
    """Every process's argv, again and again until ``done``."""
    needle = SECRET_VALUE.encode()
    while not done.is_set():
        for pid in os.listdir("/proc"):
            try:
                if (
                    pid.isdigit()
                    and needle in Path(f"/proc/{pid}/cmdline").read_bytes()
                ):
                    hits.append(pid)
            except OSError:
                continue
        done.wait(0.02)


def _job_id(text: str) -> str:
    found = re.search(r"job-[0-9a-f]{8}-[0-9a-f-]{27}", text)
    assert found, text[-2000:]
    return found.group(0)


def test_secret_value_never_leaks(platform: Platform, tmp_path: Path) -> None:
    """A job started by %apolo_run in a saved, executed notebook, with the secret
    as env and file: the value is in none of the job's description, our daemon's
    log, the widget state and outputs of the saved notebook, or any argv."""
    env = {**os.environ, "APOLO_PASSED_CONFIG": passed_config(platform),
           "APOLO_JUPYTER_QUIET": "1", "APOLO_JUPYTER_DISPLAY": "widget"}  # fmt: skip
    subprocess.run(
        [str(BIN / "apolo-jupyter"), "secret", "add", "leak-test", SECRET_VALUE],
        env=env, check=True, timeout=120,
    )  # fmt: skip
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext apolo_jupyter"),
        nbformat.v4.new_code_cell(
            "job = %apolo_run -e TOK=secret:leak-test -v secret:leak-test:/run/s/t "
            'ubuntu -- sh -c \'test "$TOK" = "$(cat /run/s/t)" && '
            "cat /proc/self/cmdline /proc/1/cmdline; sleep 1; echo checked'"
        ),
        nbformat.v4.new_code_cell("print(job.status, job.container.secret_env)"),
        nbformat.v4.new_code_cell("%apolo_status --detach {job.id}"),
        nbformat.v4.new_code_cell("%apolo_generate_run_command {job.id}"),
    ]
    old = dict(os.environ)
    os.environ.update(env)
    hits: list[str] = []
    done = threading.Event()
    scanner = threading.Thread(target=_scan_argv, args=(done, hits), daemon=True)
    scanner.start()
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    finally:
        done.set()
        scanner.join(30)
        os.environ.clear()
        os.environ.update(old)
    assert hits == [], "the value was in a process's argv while the job ran"
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text()
    assert "checked" in text and "succeeded" in text, text[-3000:]
    assert "secret://local/local/default/leak-test" in text
    described = subprocess.run(
        [str(BIN / "apolo-jupyter"), "status", "--full-uri", _job_id(text)],
        env=env, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "leak-test" in described
    log = platform.paths.log_file.read_text()
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    assert states["state"], "the notebook saved no widget state to look into"
    widget = json.dumps(states)
    # In WAL mode new rows sit in state.db-wal until a checkpoint: every file of
    # the database, raw (freed pages too), and every table as SQLite reads it.
    db = platform.paths.db_file
    files = [db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm")]
    raw = b"".join(path.read_bytes() for path in files if path.exists())
    with contextlib.closing(sqlite3.connect(db)) as conn:
        dump = "\n".join(conn.iterdump())
    assert _job_id(text) in dump, "the dump holds the job's record"
    for where, content in (
        ("saved notebook", text),
        ("apolo-jupyter status", described),
        ("widget state", widget),
        ("state database files", raw.decode(errors="replace")),
        ("state database tables", dump),
        ("daemon log", log),
    ):
        assert SECRET_VALUE not in content, where
    leftovers = list((platform.paths.jobs_dir).glob("*/secrets/*"))
    assert leftovers == [], "a finished job's secret files are removed"
