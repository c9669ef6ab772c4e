"""Capacity-aware scheduling: which waiting jobs start, which preemptible jobs yield.

A pure function over the waiting queue and the jobs holding resources, so the
policy is testable without processes:

- regular jobs never wait behind preemptible ones; within each class, higher
  priority first, then FIFO by creation (a job that does not fit blocks the later
  ones of its class);
- a regular job that does not fit preempts running preemptible jobs, newest first,
  when that frees enough room; a preemptible job never preempts anything.

GPUs are a dimension of room like CPU and memory, but not interchangeable: each
started job gets specific GPUs (slots, the lowest free ones of the model it asks
for), and no two jobs hold the same one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

_GiB = 2**30


@dataclass(frozen=True)
class Capacity:
    cpu: float
    memory: int
    gpus: tuple[str, ...] = ()  # the model of each NVIDIA GPU (slot)

    @classmethod
    def of_machine(cls) -> Capacity:
        memory = 0
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
        except OSError:
            memory = 4 * _GiB
        return cls(cpu=float(os.cpu_count() or 1), memory=memory)


@dataclass(frozen=True)
class Demand:
    """What one job asks for (or holds)."""

    id: str
    cpu: float
    memory: int
    preemptible: bool
    created: str
    priority: int = 0  # higher starts first among waiting jobs of its class
    nvidia_gpu: int = 0
    gpu_model: str | None = None  # None: any model
    gpus: tuple[int, ...] = ()  # the slots a started job holds
    name: str | None = None  # the job's name, to say who holds the room


@dataclass
class Plan:
    start: list[str] = field(default_factory=list)
    preempt: list[tuple[str, str]] = field(default_factory=list)  # (victim, for job)
    waiting: dict[str, str] = field(default_factory=dict)  # job id -> why
    gpus: dict[str, tuple[int, ...]] = field(default_factory=dict)  # of started jobs


@dataclass(frozen=True)
class Room:
    """What is free: CPU, memory and the free GPU slots."""

    cpu: float
    memory: int
    gpus: frozenset[int] = frozenset()

    def pick(self, job: Demand, cap: Capacity) -> tuple[int, ...] | None:
        """The GPU slots ``job`` would get, or None if it does not fit."""
        if job.cpu > self.cpu + 1e-9 or job.memory > self.memory:
            return None
        if job.nvidia_gpu <= 0:
            return ()
        matching = sorted(s for s in self.gpus if job.gpu_model in (None, cap.gpus[s]))
        if len(matching) < job.nvidia_gpu:
            return None
        return tuple(matching[: job.nvidia_gpu])

    def free_of(self, job: Demand, cap: Capacity) -> int:
        return sum(1 for s in self.gpus if job.gpu_model in (None, cap.gpus[s]))

    def short_of_gpus_only(self, job: Demand, cap: Capacity) -> bool:
        """CPU and memory are there for ``job``; only GPUs are missing."""
        return (
            job.cpu <= self.cpu + 1e-9
            and job.memory <= self.memory
            and self.free_of(job, cap) < job.nvidia_gpu
        )

    def helped_by(self, victim: Demand, job: Demand, cap: Capacity) -> bool:
        """Whether stopping ``victim`` gives ``job`` some of what it lacks."""
        return bool(
            (job.cpu > self.cpu + 1e-9 and victim.cpu > 0)
            or (job.memory > self.memory and victim.memory > 0)
            or (
                self.free_of(job, cap) < job.nvidia_gpu
                and any(job.gpu_model in (None, cap.gpus[s]) for s in victim.gpus)
            )
        )

    def take(self, job: Demand, gpus: tuple[int, ...]) -> Room:
        return Room(self.cpu - job.cpu, self.memory - job.memory, self.gpus - set(gpus))

    def give(self, job: Demand) -> Room:
        return Room(
            self.cpu + job.cpu, self.memory + job.memory, self.gpus | set(job.gpus)
        )


def _gpu_words(count: int) -> str:
    return f"{count} NVIDIA GPU" + ("" if count == 1 else "s")


MAX_NAMED = 3  # holders named in a wait reason; the rest are counted


def _holder(job: Demand) -> str:
    return f"{job.id} ({job.name})" if job.name else job.id


def _holders_text(holders: list[Demand]) -> str:
    """Who holds the room and how to free it, in bounded length: at most
    MAX_NAMED jobs (ids of ~40 characters, names of at most 40), then a count."""
    if not holders:
        return " by jobs that are stopping"
    named = ", ".join(_holder(j) for j in holders[:MAX_NAMED])
    more = f" +{len(holders) - MAX_NAMED} more" if len(holders) > MAX_NAMED else ""
    first = holders[0].id
    return (
        f" by {named}{more}; kill one with apolo-jupyter kill {first} "
        f"(%apolo_kill {first} in a notebook)"
    )


def describe_wait(job: Demand, room: Room, cap: Capacity, holders: list[Demand]) -> str:
    """What ``job`` waits for, how much of each is in use, and, given the jobs
    holding room (``holders``), which of them hold what it lacks and how to free it."""
    used_cpu, used_memory = cap.cpu - room.cpu, cap.memory - room.memory
    needs = [f"{job.cpu:g} CPU", f"{job.memory / _GiB:.1f} GiB"]
    in_use = [
        f"{used_cpu:g} of {cap.cpu:g} CPU",
        f"{used_memory / _GiB:.1f} of {cap.memory / _GiB:.1f} GiB",
    ]
    short = []
    if job.cpu > room.cpu + 1e-9:
        short.append("CPU")
    if job.memory > room.memory:
        short.append("memory")
    if job.nvidia_gpu:
        model = f" {job.gpu_model}" if job.gpu_model else ""
        needs.append(_gpu_words(job.nvidia_gpu) + model)
        total = sum(1 for m in cap.gpus if job.gpu_model in (None, m))
        free = room.free_of(job, cap)
        in_use.append(f"{total - free} of {_gpu_words(total)}{model}")
        if free < job.nvidia_gpu:
            short.append("NVIDIA GPUs")
    what = f" ({' and '.join(short)})" if short else ""
    lacking = [h for h in holders if room.helped_by(h, job, cap)]
    return (
        f"waiting for room{what}: needs {', '.join(needs[:-1])} and {needs[-1]}; "
        f"in use {', '.join(in_use[:-1])} and {in_use[-1]}{_holders_text(lacking)}"
    )


def plan(
    queue: list[Demand], holding: list[Demand], stopping: set[str], cap: Capacity
) -> Plan:
    """Decide starts, GPU slots and preemptions; ``stopping`` jobs still hold
    their room. A job waiting only for GPUs holds up later GPU jobs of its class,
    not the CPU-only ones (they cannot take what it waits for)."""
    result = Plan()
    room = Room(
        cap.cpu - sum(j.cpu for j in holding),
        cap.memory - sum(j.memory for j in holding),
        frozenset(range(len(cap.gpus))) - {s for j in holding for s in j.gpus},
    )
    victims = sorted(
        (j for j in holding if j.preemptible and j.id not in stopping),
        key=lambda j: j.created,
        reverse=True,
    )
    # Who holds room, oldest first, to name in wait reasons: not the jobs that are
    # stopping anyway (killing them again frees nothing sooner).
    holders = sorted(
        (j for j in holding if j.id not in stopping), key=lambda j: j.created
    )
    blocked: set[tuple[bool, bool]] = set()  # (preemptible, GPU jobs only)
    for job in sorted(queue, key=lambda j: (j.preemptible, -j.priority, j.created)):
        if (job.preemptible, False) in blocked or (
            job.nvidia_gpu and (job.preemptible, True) in blocked
        ):
            result.waiting[job.id] = "waiting for earlier jobs to start"
            continue
        gpus = room.pick(job, cap)
        if gpus is not None:
            result.start.append(job.id)
            result.gpus[job.id] = gpus
            room = room.take(job, gpus)
            holders.append(replace(job, gpus=gpus))
            continue
        if not job.preemptible:
            chosen, freed = [], room
            for victim in victims:
                if freed.pick(job, cap) is not None:
                    break
                if freed.helped_by(victim, job, cap):
                    chosen.append(victim)
                    freed = freed.give(victim)
            reserved = freed.pick(job, cap)
            if chosen and reserved is not None:
                result.preempt += [(v.id, job.id) for v in chosen]
                victims = [v for v in victims if v not in chosen]
                holders = [h for h in holders if h not in chosen]
                # The room is reserved for this job; it starts once they have stopped.
                room = freed.take(job, reserved)
                holders.append(replace(job, gpus=reserved))
                result.waiting[job.id] = (
                    f"preempting {len(chosen)} preemptible job(s) to make room"
                )
                continue
        result.waiting[job.id] = describe_wait(job, room, cap, holders)
        blocked.add((job.preemptible, room.short_of_gpus_only(job, cap)))
    return result
