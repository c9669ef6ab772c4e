"""Data of the streams inside a running job: exec/attach output and telemetry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One chunk of a job's output: ``fileno`` 1 is stdout (and a tty), 2 stderr."""

    fileno: int
    data: bytes


@dataclass(frozen=True)
class JobTelemetry:
    """One sample of a running job's resource use (``client.jobs.top``).

    ``cpu`` is in cores (1.0 = one core busy); GPU fields are None when the job
    has no GPU (or the platform cannot see one).
    """

    cpu: float
    memory_bytes: int
    timestamp: float
    gpu_duty_cycle: int | None = None
    gpu_memory_bytes: int | None = None

    @property
    def memory(self) -> float:
        """Resident memory in MiB."""
        return self.memory_bytes / 2**20

    @property
    def gpu_memory(self) -> float | None:
        """GPU memory in MiB, or None."""
        if self.gpu_memory_bytes is None:
            return None
        return self.gpu_memory_bytes / 2**20
