"""NVIDIA GPUs on the local platform, on a machine without one.

The platform's two inputs are real settings (``config.json``'s ``"nvidia"``): the
``nvidia-smi`` to ask, here a script printing two GPUs, and the folder of the
device nodes, here real character devices made with ``mknod`` (the numbers of
``/dev/null``) standing in for ``/dev/nvidia0``, ``/dev/nvidia1`` and
``/dev/nvidiactl``. Everything else is the platform as it runs: presets,
scheduling, the sandbox's ``--dev-bind`` and the jobs' environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from apolo_jupyter import (
    Client,
    Container,
    IllegalArgumentError,
    JobStatus,
    Resources,
    get,
)
from apolo_jupyter.client import NvidiaGPUPreset

from .compat.test_official_sdk import passed_config
from .conftest import Platform, wait_finished, wait_running
from .test_exec import run

apolo_sdk: Any = pytest.importorskip("apolo_sdk")
BIN = Path(sys.executable).parent
GiB = 2**30
MODEL = "NVIDIA Test GPU"
UUIDS = (
    "GPU-0a0a0a0a-1111-2222-3333-444444444444",
    "GPU-1b1b1b1b-5555-6666-7777-888888888888",
)
SMI = f"""#!/bin/sh
case "$1" in
--query-gpu=index,uuid,name,memory.total*)
    echo "0, {UUIDS[0]}, {MODEL}, 16384, 00000000:01:00.0"
    echo "1, {UUIDS[1]}, {MODEL}, 16384, 00000000:02:00.0" ;;
esac
"""
# Prints what each job was given, then shows that its nodes open (a plain
# --bind would mount them nodev: "Permission denied").
SHOW = (
    "sh -c 'echo cuda=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES; "
    'ls /dev | grep nvidia | tr "\\n" " "; echo; '
    "for n in /dev/nvidia[0-9]*; do cat $n && echo opened $n; done'"
)


def fake_gpus(folder: Path, smi: str = SMI) -> dict[str, str]:
    """A fake nvidia-smi and a folder of device nodes; the "nvidia" setting."""
    devices = folder / "dev"
    devices.mkdir(parents=True)
    for name in ("nvidia0", "nvidia1", "nvidiactl"):
        os.mknod(devices / name, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.chmod(devices / name, 0o666)
    script = folder / "nvidia-smi"
    script.write_text(smi)
    script.chmod(0o755)
    return {"smi": str(script), "devices": str(devices)}


@pytest.fixture(scope="module")
def gpu_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    folder = tmp_path_factory.mktemp("gpus")
    plat = Platform(folder / "home", nvidia=fake_gpus(folder))
    yield plat
    plat.stop()


@pytest.fixture
async def gpu(gpu_platform: Platform) -> AsyncIterator[Client]:
    async with get(gpu_platform.url, gpu_platform.token, quiet=True) as client:
        yield client


async def _start(client: Client, command: str, preset: str = "gpu-small") -> str:
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"), preset_name=preset, command=command
    )
    return job.id


async def _shown(client: Client, job_id: str) -> str:
    out, err, code = await run(client, job_id, SHOW)
    assert code == 0, (out, err)
    return out.decode()


def _config(platform: Platform) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(
        f"{platform.url}/config", headers={"Authorization": f"Bearer {platform.token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        data: dict[str, Any] = json.load(response)
    return data


def _official_env(platform: Platform, home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "APOLO_PASSED_CONFIG": passed_config(platform),
        "NEURO_CLI_DISABLE_PYPI_VERSION_CHECK": "1",
    }


async def test_gpu_presets_in_config_client_and_official_sdk(
    gpu_platform: Platform,
    gpu: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = _config(gpu_platform)["clusters"][0]
    presets = {p["name"]: p for p in cluster["resource_presets"]}
    one = {"count": 1, "model": MODEL, "memory": 16 * GiB}
    assert presets["gpu-small"]["nvidia_gpu"] == one
    assert presets["gpu-large"]["nvidia_gpu"] == {**one, "count": 2}
    assert "nvidia_gpu" not in presets["cpu-small"]
    pools = {p["name"]: p for p in cluster["resource_pool_types"]}
    assert pools["local-gpu"]["nvidia_gpu"] == {**one, "count": 2}
    assert presets["gpu-small"]["resource_pool_names"] == ["local-gpu"]

    assert gpu.presets["gpu-small"].nvidia_gpu == NvidiaGPUPreset(1, MODEL, 16 * GiB)
    assert gpu.presets["gpu-large"].nvidia_gpu == NvidiaGPUPreset(2, MODEL, 16 * GiB)
    assert gpu.presets["cpu-small"].nvidia_gpu is None

    monkeypatch.setenv("APOLO_PASSED_CONFIG", passed_config(gpu_platform))
    async with apolo_sdk.get(path=tmp_path / "sdk") as official:
        sdk_preset = official.config.presets["gpu-large"]
        assert (sdk_preset.nvidia_gpu.count, sdk_preset.nvidia_gpu.model) == (2, MODEL)

    shown = subprocess.run(
        [str(BIN / "apolo"), "config", "show"],
        capture_output=True,
        text=True,
        env={**_official_env(gpu_platform, tmp_path), "COLUMNS": "200"},
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if "gpu-small" in line)
    assert f"1 x {MODEL}" in row, shown.stdout


def test_status_names_the_gpus(gpu_platform: Platform) -> None:
    done = subprocess.run(
        [str(BIN / "apolo-jupyter"), "local", "status", "--home", str(gpu_platform.paths.home)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"gpus:    2 x {MODEL} (16.0 GiB each), index 0, 1" in done.stdout


async def test_each_job_has_its_own_gpu_and_a_third_waits(gpu: Client) -> None:
    first = await _start(gpu, "sleep 600")
    second = await _start(gpu, "sleep 600")
    third = ""
    try:
        for job_id in (first, second):
            assert (await wait_running(gpu, job_id)).status == JobStatus.RUNNING
        seen = {job_id: await _shown(gpu, job_id) for job_id in (first, second)}
        given = {}
        for job_id, out in seen.items():
            lines = out.splitlines()
            uuid = lines[0].split()[0].removeprefix("cuda=")
            assert lines[0] == f"cuda={uuid} nvidia={uuid}"
            node = f"nvidia{UUIDS.index(uuid)}"
            # Its own node and the control node, nothing of the other GPU.
            assert lines[1].split() == sorted([node, "nvidiactl"]), out
            assert f"opened /dev/{node}" in out
            given[job_id] = uuid
        assert sorted(given.values()) == sorted(UUIDS)

        third = await _start(gpu, "sleep 600")
        status = await gpu.jobs.status(third)
        assert status.status == JobStatus.PENDING
        assert status.history.reason == "WaitingForCapacity"
        assert "(NVIDIA GPUs)" in status.history.description
        assert "2 of 2 NVIDIA GPUs" in status.history.description

        await gpu.jobs.kill(first)
        assert (await wait_running(gpu, third)).status == JobStatus.RUNNING
        out = await _shown(gpu, third)
        assert out.startswith(f"cuda={given[first]} ")  # the GPU the first one freed
    finally:
        for job_id in (first, second, third):
            if job_id:
                await gpu.jobs.kill(job_id)


async def test_a_job_that_can_never_fit_is_refused(gpu: Client, client: Client) -> None:
    image = gpu.parse.remote_image("ubuntu")

    def asking(**gpus: Any) -> Container:
        return Container(image, Resources(memory=GiB, cpu=1.0, **gpus), command="true")

    with pytest.raises(IllegalArgumentError, match="asks for 3 NVIDIA GPUs, more than"):
        await gpu.jobs.run(asking(nvidia_gpu=3))
    with pytest.raises(IllegalArgumentError, match="of model 'H100'"):
        await gpu.jobs.run(asking(nvidia_gpu=1, nvidia_gpu_model="H100"))
    for other in ({"amd_gpu": 1}, {"intel_gpu": 1}, {"tpu_type": "v2-8"}):
        with pytest.raises(IllegalArgumentError, match="refused by the local platform"):
            await gpu.jobs.run(asking(**other))
    # The platform without GPUs (the session's) says it has none.
    with pytest.raises(IllegalArgumentError, match="the local platform has none"):
        await client.jobs.run(asking(nvidia_gpu=1))


@pytest.mark.parametrize("value", [-1, 1.5, "2", True])
async def test_a_gpu_count_must_be_a_whole_number(
    gpu_platform: Platform, gpu: Client, value: Any
) -> None:
    import aiohttp

    body = {
        "container": {
            "image": "ubuntu",
            "command": "true",
            "resources": {"cpu": 1, "memory": GiB, "nvidia_gpu": value},
        }
    }
    headers = {"Authorization": f"Bearer {gpu_platform.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{gpu_platform.url}/jobs", json=body, headers=headers) as resp,
    ):
        assert resp.status == 400
        assert "resources.nvidia_gpu" in (await resp.json())["error"]


async def test_preemptible_keeps_the_gpu_of_the_preset(
    gpu_platform: Platform, gpu: Client, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(BIN / "apolo-jupyter"), "run", "--preemptible", "-s", "gpu-small",
         "--detach", "ubuntu", "--", "sleep", "600"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, **_official_env(gpu_platform, tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = next(w for w in done.stdout.split() if w.startswith("job-"))
    try:
        job = await wait_running(gpu, job_id)
        assert job.preemptible_node
        assert job.container.resources.nvidia_gpu == 1
        assert job.container.resources.nvidia_gpu_model == MODEL
        assert (await _shown(gpu, job_id)).startswith("cuda=GPU-")
    finally:
        await gpu.jobs.kill(job_id)


async def test_the_official_apolo_run_gets_a_gpu(
    gpu_platform: Platform, gpu: Client, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(BIN / "apolo"), "run", "--detach", "-s", "gpu-small", "ubuntu", "--",
         "sleep", "600"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env=_official_env(gpu_platform, tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = next(w for w in done.stdout.split() if w.startswith("job-"))
    try:
        job = await wait_running(gpu, job_id)
        assert job.container.resources.nvidia_gpu == 1
        assert (await _shown(gpu, job_id)).startswith("cuda=GPU-")
    finally:
        await gpu.jobs.kill(job_id)


async def test_a_regular_gpu_job_preempts_a_preemptible_one(gpu: Client) -> None:
    image = gpu.parse.remote_image("ubuntu")
    both = gpu.presets["gpu-large"].resources()
    victim = await gpu.jobs.run(
        Container(image, both, command="sleep 600"), preemptible_node=True
    )
    regular = ""
    try:
        await wait_running(gpu, victim.id)
        regular = await _start(gpu, "sleep 600")
        assert (await wait_running(gpu, regular)).status == JobStatus.RUNNING
        status = await gpu.jobs.status(victim.id)
        assert status.status in (JobStatus.SUSPENDED, JobStatus.PENDING)
        assert any(t.reason == "Preempted" for t in status.history.transitions)
    finally:
        for job_id in (regular, victim.id):
            if job_id:
                await gpu.jobs.kill(job_id)


async def test_capacity_counts_gpus(gpu: Client) -> None:
    assert await _capacity(gpu, {"gpu-small": 2, "gpu-large": 1})
    job_id = await _start(gpu, "sleep 600")
    try:
        await wait_running(gpu, job_id)
        assert await _capacity(gpu, {"gpu-small": 1, "gpu-large": 0})
    finally:
        await gpu.jobs.kill(job_id)
    assert (await wait_finished(gpu, job_id)).status == JobStatus.CANCELLED
    assert await _capacity(gpu, {"gpu-small": 2, "gpu-large": 1})


async def _capacity(client: Client, want: dict[str, int]) -> bool:
    """Whether the counts reach ``want`` (a killed job's GPUs return once its
    process is gone, a moment after its status)."""
    for _ in range(600):
        counts = await client.jobs.get_capacity()
        if {k: counts[k] for k in want} == want:
            assert counts["cpu-small"] > 0  # CPU presets are counted as before
            return True
        await asyncio.sleep(0.05)
    return False
