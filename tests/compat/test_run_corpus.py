"""Real `apolo run` lines, run three ways against the local platform: the official
``apolo run`` (apolo-cli 26.9.0), ``%apolo_run`` in an IPython shell, and
``apolo-jupyter run``. The jobs the platform records must be equal field by field
(ids, names made unique per way, and times aside). Lines with options the local
platform cannot honour must be refused by all three, with a message saying so.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from apolo_jupyter.kernel._run_options import RUN_OPTIONS, apolo_run_flags

from ..conftest import Platform, free_port
from .test_official_sdk import passed_config

BIN = Path(sys.executable).parent

# {n} is a job name of its own for each way; every line is detached, so a run
# returns once the job has started (or at once with --no-wait-start).
CORPUS = [
    "--detach ubuntu -- true",
    "--detach -n {n} ubuntu:latest -- sh -c 'echo hello; exit 0'",
    "--detach -s cpu-medium -d 'my first run' ubuntu -- echo hi",
    "--detach --preset=cpu-small --description=described python:3.11 -- python3 -c 'print(1)'",
    "--detach --tag a --tag b -n {n} ubuntu -- true",
    "--detach --env A=1 -e 'B=two words' ubuntu -- sh -c 'echo $A $B'",
    "--detach -e CORPUS_FROM_ENV ubuntu -- true",
    "--detach --env-file {env_file} ubuntu -- true",
    "--detach -e TOKEN=secret:corpus-token ubuntu -- true",
    "--detach -v storage:corpus/rw:/mnt/rw ubuntu -- true",
    "--detach --volume=storage:corpus-ro:/mnt/ro:ro -v storage:corpus/rw:/mnt/rw:rw ubuntu -- true",
    "--detach -v secret:corpus-token:/var/secrets/token ubuntu -- cat /var/secrets/token",
    "--detach -v disk:corpus-disk:/mnt/disk ubuntu -- true",
    "--detach -v disk:corpus-disk:/mnt/disk:ro ubuntu -- true",
    "--detach --entrypoint 'sh -c' ubuntu -- 'echo from entrypoint'",
    "--detach -w /tmp ubuntu -- pwd",
    "--detach --workdir=/var/tmp-work ubuntu -- true",
    "--detach -x ubuntu -- true",
    "--detach --extshm --name {n} ubuntu -- true",
    "--detach -X ubuntu -- true",
    "--detach --no-extshm --http-port 8080 ubuntu -- true",
    "--detach --http-port 8080 --no-http-auth ubuntu -- true",
    "--detach --http-port 9000 --http-auth ubuntu -- true",
    "--detach --http-port 0 ubuntu -- true",
    "--detach --life-span 2h ubuntu -- true",
    "--detach --life-span 1d2h3m ubuntu -- true",
    "--detach --life-span 0 ubuntu -- true",
    "--detach --restart never ubuntu -- true",
    "--detach --restart on-failure ubuntu -- true",
    "--detach --schedule-timeout 5m ubuntu -- true",
    "--detach --priority high ubuntu -- true",
    "--detach --priority low ubuntu -- true",
    "--detach -t ubuntu -- true",
    "--detach --tty ubuntu -- true",
    "--detach -T ubuntu -- true",
    "--detach --no-tty --no-pass-config ubuntu -- true",
    "--detach --pass-config ubuntu -- true",
    "--detach --wait-for-seat ubuntu -- true",
    "--detach --no-wait-for-seat --wait-start ubuntu -- true",
    "--no-wait-start ubuntu -- true",
    "--detach --port-forward {port}:80 ubuntu -- true",
    "--detach -p default --org local --cluster local ubuntu -- true",
    "--detach --project=default image:corpus-image:v1 -- true",
    "--detach -s cpu-small -n {n} --tag x -d 'all at once' -e K=v -v storage:corpus/rw:/data -w /data --life-span 30m --priority normal -X --http-port 8888 ubuntu -- sh -c 'ls /data'",
]  # fmt: skip

REFUSED = {
    "--detach --privileged ubuntu -- true": "privileged",
    "--detach --energy-schedule green -s cpu-small ubuntu -- true": "energy",
    "--detach --share bob ubuntu -- true": "shar",
    "--browse --http-port 80 ubuntu -- true": "browse",
}

# Differ by design between the three runs of one line.
_VOLATILE = {"id", "uri", "status", "statuses", "history", "name", "being_dropped"}


@pytest.fixture(scope="module")
def setup(
    platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("corpus-home")
    env_file = home / "corpus.env"
    env_file.write_text("# a comment\nFROM_FILE=1\n\nSECOND=two words\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "APOLO_PASSED_CONFIG": passed_config(platform),
        "APOLO_JUPYTER_QUIET": "1",
        "CORPUS_FROM_ENV": "from-the-environment",
        "COLUMNS": "200",
    }
    _api(platform, "POST", "secrets", {"key": "corpus-token", "value": "c2VjcmV0",
                                       "project_name": "default"})  # fmt: skip
    if not any(d.get("name") == "corpus-disk" for d in _api(platform, "GET", "disk")):
        _api(platform, "POST", "disk", {"storage": 2**30, "name": "corpus-disk",
                                        "project_name": "default"})  # fmt: skip
    ro = platform.paths.storage_dir / "local" / "default" / "corpus-ro"
    ro.mkdir(parents=True, exist_ok=True)
    # The official CLI makes its login db from APOLO_PASSED_CONFIG on first use;
    # parallel first runs would race to create it.
    first = subprocess.run([str(BIN / "apolo"), "ps"], env=env, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    assert first.returncode == 0, first.stderr
    return {"env": env, "env_file": str(env_file)}


def _api(platform: Platform, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{platform.url}/{path}",
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {platform.token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def _line(template: str, way: str, index: int, setup: dict[str, Any]) -> str:
    return template.format(
        n=f"corpus{index}-{way}", env_file=setup["env_file"], port=free_port()
    )


def _job_id(output: str) -> str:
    found = re.search(r"Job ID: (job-[0-9a-f-]+)", output)
    assert found, output
    return found.group(1)


def _official(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "apolo"), "run", *shlex.split(line)],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _ours_cli(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "apolo-jupyter"), "run", *shlex.split(line)],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def shell(platform: Platform, setup: dict[str, Any]) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "apolo_jupyter")
    ip.run_line_magic("apolo_use", f"{platform.url} --token {platform.token}")
    saved = os.environ.get("CORPUS_FROM_ENV")
    os.environ["CORPUS_FROM_ENV"] = setup["env"]["CORPUS_FROM_ENV"]
    yield ip
    if saved is None:
        os.environ.pop("CORPUS_FROM_ENV", None)
    ip.run_line_magic("apolo_use", "auto")  # as the other tests expect it
    ip.run_line_magic("unload_ext", "apolo_jupyter")


def _normal(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in _VOLATILE}
    name = record.get("name") or ""
    out["name"] = re.sub(r"-(official|magic|cli)$", "", name)
    return out


def test_corpus_covers_every_option_of_apolo_run(setup: dict[str, Any]) -> None:
    words = {w.split("=")[0] for line in (*CORPUS, *REFUSED) for w in shlex.split(line)}
    assert apolo_run_flags() - words == set()
    assert len(CORPUS) >= 25
    assert len([o for o in RUN_OPTIONS if not o.ours]) == 29  # + --help: 30


def test_three_ways_record_the_same_job(
    platform: Platform, setup: dict[str, Any], shell: InteractiveShell
) -> None:
    env = setup["env"]
    lines = {i: {w: _line(t, w, i, setup) for w in ("official", "magic", "cli")}
             for i, t in enumerate(CORPUS)}  # fmt: skip
    with ThreadPoolExecutor(4) as pool:
        official = pool.map(lambda i: _official(lines[i]["official"], env), lines)
        cli = pool.map(lambda i: _ours_cli(lines[i]["cli"], env), lines)
        official_ids, cli_ids = [], []
        for i, (a, b) in enumerate(zip(official, cli, strict=True)):
            assert a.returncode == 0, (CORPUS[i], a.stdout, a.stderr)
            assert b.returncode == 0, (CORPUS[i], b.stdout, b.stderr)
            official_ids.append(_job_id(a.stdout))
            cli_ids.append(_job_id(b.stdout))
    magic_ids = [shell.run_line_magic("apolo_run", lines[i]["magic"]).id for i in lines]
    for i, template in enumerate(CORPUS):
        records = [
            _normal(_api(platform, "GET", f"jobs/{ids[i]}"))
            for ids in (official_ids, magic_ids, cli_ids)
        ]
        assert records[0] == records[1], (template, "official vs %apolo_run")
        assert records[0] == records[2], (template, "official vs apolo-jupyter run")


@pytest.mark.parametrize("line", list(REFUSED))
def test_refused_the_same_three_ways(
    line: str, setup: dict[str, Any], shell: InteractiveShell
) -> None:
    word = REFUSED[line]
    official = _official(line, setup["env"])
    assert official.returncode != 0
    assert word in (official.stdout + official.stderr).lower()
    ours = _ours_cli(line, setup["env"])
    assert ours.returncode == 2
    assert "refused by the local platform" in ours.stderr
    with pytest.raises(UsageError, match="refused by the local platform"):
        shell.run_line_magic("apolo_run", line)
