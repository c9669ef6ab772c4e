"""Finding GPUs, the settings they change, and scheduling them: the pure parts.

``detect`` runs real (fake) ``nvidia-smi`` scripts over real device nodes; the
policy is ``plan`` over demands, as in ``test_scheduler``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apolo_jupyter.client._local_home import LocalPaths
from apolo_jupyter.local._gpu import Gpus, NvidiaSettings, detect, parse_smi
from apolo_jupyter.local._sandbox import PreflightError, build_view
from apolo_jupyter.local._scheduler import Capacity, Demand, plan
from apolo_jupyter.local._settings import ConfigError, Settings

from .test_gpu import MODEL, UUIDS, fake_gpus

GiB = 2**30


def test_parse_takes_the_minor_number_from_the_driver(tmp_path: Path) -> None:
    info = tmp_path / "0000:02:00.0" / "information"
    info.parent.mkdir()
    info.write_text("Model: NVIDIA Test GPU\nDevice Minor:    5\n")
    gpus = parse_smi(
        "0, GPU-a, A, 1024, 00000000:01:00.0\n"
        "1, GPU-b, B, 2048, 00000000:02:00.0\n"
        "No devices were found\n",
        tmp_path,
    )
    assert [(g.index, g.uuid, g.model, g.memory, g.minor) for g in gpus] == [
        (0, "GPU-a", "A", 1024 * 2**20, 0),  # no driver folder: the index
        (1, "GPU-b", "B", 2048 * 2**20, 5),
    ]


def test_detect_finds_the_gpus_with_device_nodes(tmp_path: Path) -> None:
    setting = fake_gpus(tmp_path)
    found = detect(NvidiaSettings(setting["smi"], Path(setting["devices"])))
    assert [g.uuid for g in found.found] == list(UUIDS)
    assert found.models == (MODEL, MODEL)
    assert found.sentence == f"2 x {MODEL} (16.0 GiB each), index 0, 1"
    devices = Path(setting["devices"])
    assert found.nodes([1]) == [devices / "nvidia1", devices / "nvidiactl"]
    assert found.env([1, 0]) == {
        "CUDA_VISIBLE_DEVICES": f"{UUIDS[1]},{UUIDS[0]}",
        "NVIDIA_VISIBLE_DEVICES": f"{UUIDS[1]},{UUIDS[0]}",
    }
    assert found.nodes([]) == [] and found.env([]) == {}


def test_a_gpu_without_its_device_node_is_left_out(tmp_path: Path) -> None:
    setting = fake_gpus(tmp_path)
    (Path(setting["devices"]) / "nvidia1").unlink()
    found = detect(NvidiaSettings(setting["smi"], Path(setting["devices"])))
    assert [g.index for g in found.found] == [0]
    assert "left out (no device node)" in found.sentence
    assert str(Path(setting["devices"]) / "nvidia1") in found.sentence


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("no-smi", "does not exist"),
        ("fails", "failed: NVIDIA-SMI has failed because it couldn't communicate"),
        ("no-control", "nvidiactl is missing"),
        ("lists-none", "lists no GPU"),
    ],
)
def test_no_gpus_and_the_reason(tmp_path: Path, change: str, why: str) -> None:
    setting = fake_gpus(tmp_path)
    smi = Path(setting["smi"])
    if change == "no-smi":
        smi.unlink()
    elif change == "fails":
        smi.write_text(
            "#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't "
            'communicate with the NVIDIA driver." >&2\nexit 9\n'
        )
    elif change == "no-control":
        (Path(setting["devices"]) / "nvidiactl").unlink()
    else:
        smi.write_text("#!/bin/sh\necho 'No devices were found'\n")
    found = detect(NvidiaSettings(str(smi), Path(setting["devices"])))
    assert found.count == 0
    assert found.sentence.startswith("none: ") and why in found.sentence
    assert "none" in found.refusal(1, None)


def test_without_nvidia_smi_nothing_changes(tmp_path: Path) -> None:
    paths = LocalPaths(tmp_path / "home")
    settings = Settings(paths, capacity=Capacity(8, 16 * GiB))
    plain = settings.with_gpus(Gpus())
    assert plain.presets == settings.presets and plain.capacity == settings.capacity
    assert all(
        not p.nvidia_gpu and "nvidia_gpu" not in p.to_api() for p in plain.presets
    )


def test_config_presets_may_ask_for_gpus(tmp_path: Path) -> None:
    setting = fake_gpus(tmp_path)
    paths = LocalPaths(tmp_path / "home")
    paths.ensure()
    paths.settings_file.write_text(
        json.dumps(
            {
                "nvidia": setting,
                "presets": [
                    {"name": "cpu", "cpu": 1, "memory": GiB},
                    {"name": "one", "cpu": 2, "memory": GiB, "nvidia_gpu": 1},
                    {
                        "name": "h",
                        "cpu": 2,
                        "memory": GiB,
                        "nvidia_gpu": {"count": 2, "model": "H100"},
                    },
                ],
            }
        )
    )
    settings = Settings.load(paths)
    assert settings.nvidia == NvidiaSettings(setting["smi"], Path(setting["devices"]))
    settings = settings.with_gpus(detect(settings.nvidia))
    # The listed presets, no gpu-* added; a model is filled in where none is named.
    assert [p.name for p in settings.presets] == ["cpu", "one", "h"]
    assert settings.presets[1].to_api()["nvidia_gpu"] == {
        "count": 1,
        "model": MODEL,
        "memory": 16 * GiB,
    }
    assert settings.presets[2].to_api()["nvidia_gpu"] == {"count": 2, "model": "H100"}
    assert settings.capacity.gpus == (MODEL, MODEL)


def test_default_gpu_presets_share_the_machine(tmp_path: Path) -> None:
    settings = Settings(LocalPaths(tmp_path), capacity=Capacity(6, 24 * GiB))
    setting = fake_gpus(tmp_path)
    settings = settings.with_gpus(
        detect(NvidiaSettings(setting["smi"], Path(setting["devices"])))
    )
    by_name = {p.name: p for p in settings.presets}
    assert (by_name["gpu-small"].cpu, by_name["gpu-small"].memory) == (3.0, 12 * GiB)
    assert (by_name["gpu-large"].cpu, by_name["gpu-large"].nvidia_gpu) == (6.0, 2)
    assert by_name["gpu-large"].memory == 24 * GiB


@pytest.mark.parametrize(
    ("nvidia", "presets", "message"),
    [
        ({"devices": "dev"}, [], "must be an absolute path"),
        ({"devices": "HOME/dev"}, [], "inside the platform's data directory"),
        ({"smi": 5}, [], "nvidia.smi must be a string"),
        ({}, [{"name": "g", "cpu": 1, "memory": GiB, "nvidia_gpu": 1.5}],
         "presets[0].nvidia_gpu must be a whole number"),
    ],
)  # fmt: skip
def test_bad_nvidia_settings_stop_the_start(
    tmp_path: Path, nvidia: dict[str, object], presets: list[object], message: str
) -> None:
    paths = LocalPaths(tmp_path / "home")
    paths.ensure()
    nvidia = {
        k: str(v).replace("HOME", str(paths.home)) if k == "devices" else v
        for k, v in nvidia.items()
    }
    paths.settings_file.write_text(json.dumps({"nvidia": nvidia, "presets": presets}))
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        Settings.load(paths)


def test_a_missing_device_node_stops_the_job_before_it_runs(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match="nvidia7 is missing"):
        build_view([], [], devices=[tmp_path / "nvidia7"])
    setting = fake_gpus(tmp_path)
    node = Path(setting["devices"]) / "nvidia0"
    args = build_view([], [], devices=[node]).args()
    at = args.index("--dev-bind")
    assert args[at : at + 3] == ["--dev-bind", str(node), "/dev/nvidia0"]
    assert args.index("--dev") < at  # onto the sandbox's own /dev


# -- the policy ------------------------------------------------------------------

CAP = Capacity(cpu=8.0, memory=32 * GiB, gpus=("A", "A"))


def _d(name: str, gpus: int = 0, *, held: tuple[int, ...] = (), p: bool = False,
       model: str | None = None, cpu: float = 1.0) -> Demand:  # fmt: skip
    return Demand(name, cpu, GiB, p, created=name, nvidia_gpu=gpus, gpu_model=model,
                  gpus=held)  # fmt: skip


def test_each_started_job_gets_its_own_gpus() -> None:
    decision = plan([_d("a", 1), _d("b", 1), _d("c", 1)], [], set(), CAP)
    assert decision.start == ["a", "b"]
    assert decision.gpus == {"a": (0,), "b": (1,)}
    assert "(NVIDIA GPUs)" in decision.waiting["c"]
    assert "2 of 2 NVIDIA GPUs" in decision.waiting["c"]
    # Once "a" ends, its GPU is the free one.
    decision = plan([_d("c", 1)], [_d("b", 1, held=(1,))], set(), CAP)
    assert decision.gpus == {"c": (0,)}


def test_a_job_waiting_for_gpus_does_not_hold_up_cpu_jobs() -> None:
    holding = [_d("a", 2, held=(0, 1))]
    decision = plan([_d("g", 1), _d("cpu"), _d("g2", 1)], holding, set(), CAP)
    assert decision.start == ["cpu"]
    assert decision.waiting["g2"] == "waiting for earlier jobs to start"


def test_a_model_picks_the_gpus_of_that_model() -> None:
    mixed = Capacity(cpu=8.0, memory=32 * GiB, gpus=("A", "B"))
    decision = plan([_d("b", 1, model="B"), _d("any", 1)], [], set(), mixed)
    assert decision.gpus == {"b": (1,), "any": (0,)}
    decision = plan([_d("b", 1, model="B")], [_d("x", 1, held=(1,))], set(), mixed)
    assert "needs 1 CPU, 1.0 GiB and 1 NVIDIA GPU B" in decision.waiting["b"]


def test_preemption_frees_gpus_and_spares_jobs_without_them() -> None:
    holding = [
        _d("p1-gpu", 2, held=(0, 1), p=True),
        _d("p2-cpu", p=True),  # newer, but frees no GPU
    ]
    decision = plan([_d("r", 1)], holding, set(), CAP)
    assert decision.preempt == [("p1-gpu", "r")]
    assert decision.waiting["r"].startswith("preempting 1")
    # A preemptible job never preempts, also for GPUs.
    decision = plan([_d("p", 1, p=True)], [_d("r", 2, held=(0, 1))], set(), CAP)
    assert decision.preempt == [] and decision.start == []
