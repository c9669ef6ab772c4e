"""The NVIDIA GPUs of this machine: found once at start, handed out one job at a time.

``detect`` asks ``nvidia-smi`` (shipped with the driver, on ``PATH`` or named in
``config.json`` as ``"nvidia": {"smi": ...}``) for each GPU's index, UUID, model,
memory and PCI address. A GPU is offered only when its device node
``/dev/nvidiaN`` and the control node ``/dev/nvidiactl`` exist (another folder
than ``/dev`` for hosts with an unusual layout: ``"nvidia": {"devices": ...}``);
``N`` is the driver's minor number from ``/proc/driver/nvidia/gpus``, else the
index. Without ``nvidia-smi`` or without a driver there are no GPUs and nothing
of the platform changes; ``Gpus.sentence`` says which (``local status``).

A job with GPUs gets its own device nodes and the shared control nodes bound
into its sandbox (``nodes``), and ``CUDA_VISIBLE_DEVICES`` /
``NVIDIA_VISIBLE_DEVICES`` naming its GPUs by UUID (``env``): inside the sandbox
CUDA numbers only the GPUs it can open, from 0, so an index of the host could
name the wrong one or none, a UUID cannot.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_QUERY = "--query-gpu=index,uuid,name,memory.total,pci.bus_id"
_FORMAT = "--format=csv,noheader,nounits"
_PROC = Path("/proc/driver/nvidia/gpus")
CONTROL = "nvidiactl"
# Shared by every GPU job when present: unified memory, its tools, display.
_OPTIONAL_CONTROL = ("nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
_GiB = 2**30


@dataclass(frozen=True)
class NvidiaSettings:
    """Where the platform looks for GPUs (``config.json``'s ``"nvidia"``)."""

    smi: str | None = None  # the nvidia-smi to run; None: the one on PATH
    devices: Path = Path("/dev")  # the folder holding nvidiactl and nvidiaN


@dataclass(frozen=True)
class Gpu:
    index: int  # nvidia-smi's
    uuid: str
    model: str
    memory: int  # bytes
    minor: int  # of /dev/nvidiaN


@dataclass(frozen=True)
class Gpus:
    """The GPUs jobs may use; a slot is a position in ``found``."""

    found: tuple[Gpu, ...] = ()
    devices: Path = Path("/dev")
    sentence: str = "none"
    models: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(g.model for g in self.found))

    @property
    def count(self) -> int:
        return len(self.found)

    def common(self) -> Gpu | None:
        """A GPU standing for all of them when they are all one model."""
        if self.found and len(set(self.models)) == 1:
            return self.found[0]
        return None

    def matching(self, model: str | None) -> int:
        """How many GPUs of ``model`` (None: of any model) there are."""
        return sum(1 for m in self.models if model in (None, m))

    def refusal(self, count: int, model: str | None) -> str:
        """Why a job asking for ``count`` GPUs (of ``model``) can never run
        here, or "" if it can."""
        if count <= 0 or self.matching(model) >= count:
            return ""
        asked = _gpus(count) + (f" of model {model!r}" if model else "")
        if not self.found:
            return (
                f"the job asks for {asked}, but the local platform has none "
                f"({self.sentence}): choose a CPU preset, or run it on a cluster "
                "with GPUs"
            )
        return (
            f"the job asks for {asked}, more than the local platform has "
            f"({self.sentence}): ask for fewer"
            + (" or drop the model" if model else "")
        )

    def nodes(self, slots: Sequence[int]) -> list[Path]:
        """The device nodes of the GPUs in ``slots`` and the control nodes
        present now (the unified-memory one may appear after the first CUDA
        program on the host)."""
        if not slots:
            return []
        own = [self.devices / f"nvidia{self.found[s].minor}" for s in slots]
        shared = [self.devices / CONTROL] + [
            self.devices / name
            for name in _OPTIONAL_CONTROL
            if _is_device(self.devices / name)
        ]
        return own + shared

    def env(self, slots: Sequence[int]) -> dict[str, str]:
        if not slots:
            return {}
        uuids = ",".join(self.found[s].uuid for s in slots)
        return {"CUDA_VISIBLE_DEVICES": uuids, "NVIDIA_VISIBLE_DEVICES": uuids}


def _gpus(count: int) -> str:
    return f"{count} NVIDIA GPU" + ("" if count == 1 else "s")


def _is_device(path: Path) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def _minor(bus_id: str, proc: Path) -> int | None:
    """The driver's minor number for the GPU at ``bus_id`` (nvidia-smi spells
    the PCI domain with 8 digits, the driver's folder with 4)."""
    domain, _, rest = bus_id.strip().lower().partition(":")
    if not rest:
        return None
    folder = proc / f"{domain[-4:]}:{rest}"
    try:
        text = (folder / "information").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Device Minor" and value.strip().isdigit():
            return int(value.strip())
    return None


def parse_smi(output: str, proc: Path = _PROC) -> list[Gpu]:
    """The GPUs in ``nvidia-smi --query-gpu=index,uuid,name,memory.total[,
    pci.bus_id] --format=csv,noheader,nounits`` output; lines that are not
    one GPU each are skipped."""
    gpus = []
    for line in output.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4 or not parts[0].isdigit() or not parts[1]:
            continue
        try:
            memory = int(float(parts[3]) * 2**20)
        except ValueError:
            memory = 0
        index = int(parts[0])
        minor = _minor(parts[4], proc) if len(parts) > 4 else None
        gpus.append(
            Gpu(index, parts[1], parts[2], memory, index if minor is None else minor)
        )
    return gpus


def _describe(gpus: Sequence[Gpu]) -> str:
    models: dict[tuple[str, int], list[int]] = {}
    for gpu in gpus:
        models.setdefault((gpu.model, gpu.memory), []).append(gpu.index)
    return "; ".join(
        f"{len(idx)} x {model} ({memory / _GiB:.1f} GiB"
        + (" each" if len(idx) > 1 else "")
        + f"), index {', '.join(map(str, idx))}"
        for (model, memory), idx in models.items()
    )


def detect(settings: NvidiaSettings, proc: Path = _PROC) -> Gpus:
    """The GPUs jobs may use (blocking, up to 10 s: call it once at start-up,
    off the event loop). Never raises: no GPUs, and the sentence says why."""
    smi = settings.smi or "nvidia-smi"
    origin = "config.json nvidia.smi" if settings.smi else "PATH"
    try:
        done = subprocess.run(
            [smi, _QUERY, _FORMAT],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        if settings.smi:
            why = f"none: {smi} (from {origin}) does not exist"
        else:
            why = "none: no nvidia-smi on PATH (no NVIDIA driver)"
        return Gpus(devices=settings.devices, sentence=why)
    except (OSError, subprocess.SubprocessError) as exc:
        return Gpus(devices=settings.devices, sentence=f"none: {smi} failed ({exc})")
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        why = said[0] if said else f"exit code {done.returncode}"
        return Gpus(devices=settings.devices, sentence=f"none: {smi} failed: {why}")
    listed = parse_smi(done.stdout, proc)
    if not listed:
        return Gpus(devices=settings.devices, sentence=f"none: {smi} lists no GPU")
    control = settings.devices / CONTROL
    if not _is_device(control):
        return Gpus(
            devices=settings.devices,
            sentence=f"none: {control} is missing, so no job could use a GPU "
            "(is the NVIDIA driver loaded?)",
        )
    usable = [g for g in listed if _is_device(settings.devices / f"nvidia{g.minor}")]
    left_out = [g for g in listed if g not in usable]
    if not usable:
        return Gpus(
            devices=settings.devices,
            sentence=f"none: {smi} lists {_gpus(len(listed))} but their device "
            f"nodes are missing in {settings.devices}",
        )
    sentence = _describe(usable)
    if left_out:
        missing = ", ".join(
            str(settings.devices / f"nvidia{g.minor}") for g in left_out
        )
        sentence += f"; left out (no device node): {missing}"
    return Gpus(tuple(usable), settings.devices, sentence)
