"""Capacity-aware scheduling: which waiting jobs start, which preemptible jobs yield.

A pure function over the waiting queue and the jobs holding resources, so the
policy is testable without processes:

- regular jobs never wait behind preemptible ones; within each class, higher
  priority first, then FIFO by creation (a job that does not fit blocks the later
  ones of its class);
- a regular job that does not fit preempts running preemptible jobs, newest first,
  when that frees enough room; a preemptible job never preempts anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_GiB = 2**30


@dataclass(frozen=True)
class Capacity:
    cpu: float
    memory: int

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


@dataclass
class Plan:
    start: list[str] = field(default_factory=list)
    preempt: list[tuple[str, str]] = field(default_factory=list)  # (victim, for job)
    waiting: dict[str, str] = field(default_factory=dict)  # job id -> why


def describe_wait(job: Demand, free_cpu: float, free_memory: int, cap: Capacity) -> str:
    used_cpu, used_memory = cap.cpu - free_cpu, cap.memory - free_memory
    return (
        f"waiting for room: needs {job.cpu:g} CPU and {job.memory / _GiB:.1f} GiB; "
        f"in use {used_cpu:g} of {cap.cpu:g} CPU and {used_memory / _GiB:.1f} of "
        f"{cap.memory / _GiB:.1f} GiB"
    )


def plan(
    queue: list[Demand], holding: list[Demand], stopping: set[str], cap: Capacity
) -> Plan:
    """Decide starts and preemptions; ``stopping`` jobs still hold their room."""
    result = Plan()
    free_cpu = cap.cpu - sum(j.cpu for j in holding)
    free_memory = cap.memory - sum(j.memory for j in holding)
    victims = sorted(
        (j for j in holding if j.preemptible and j.id not in stopping),
        key=lambda j: j.created,
        reverse=True,
    )
    blocked = {False: False, True: False}
    for job in sorted(queue, key=lambda j: (j.preemptible, -j.priority, j.created)):
        if blocked[job.preemptible]:
            result.waiting[job.id] = "waiting for earlier jobs to start"
            continue
        if job.cpu <= free_cpu + 1e-9 and job.memory <= free_memory:
            result.start.append(job.id)
            free_cpu -= job.cpu
            free_memory -= job.memory
            continue
        if not job.preemptible:
            chosen, cpu, memory = [], free_cpu, free_memory
            for victim in victims:
                if job.cpu <= cpu + 1e-9 and job.memory <= memory:
                    break
                chosen.append(victim)
                cpu += victim.cpu
                memory += victim.memory
            if chosen and job.cpu <= cpu + 1e-9 and job.memory <= memory:
                result.preempt += [(v.id, job.id) for v in chosen]
                victims = [v for v in victims if v not in chosen]
                # The room is reserved for this job; it starts once they have stopped.
                free_cpu, free_memory = cpu - job.cpu, memory - job.memory
                result.waiting[job.id] = (
                    f"preempting {len(chosen)} preemptible job(s) to make room"
                )
                continue
        result.waiting[job.id] = describe_wait(job, free_cpu, free_memory, cap)
        blocked[job.preemptible] = True
    return result
