"""A job as the local platform stores it and renders it on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..client._models import JobStatus

TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class TransitionRefused(RuntimeError):
    """Terminal statuses are final."""


@dataclass
class StatusItem:
    status: JobStatus
    transition_time: str
    reason: str = ""
    description: str = ""
    exit_code: int | None = None

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "status": self.status.value,
            "transition_time": self.transition_time,
            "reason": self.reason,
            "description": self.description,
        }
        if self.exit_code is not None:
            item["exit_code"] = self.exit_code
        return item

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> StatusItem:
        return cls(
            status=JobStatus(data["status"]),
            transition_time=data["transition_time"],
            reason=data.get("reason") or "",
            description=data.get("description") or "",
            exit_code=data.get("exit_code"),
        )


@dataclass
class JobRecord:
    id: str
    owner: str
    cluster_name: str
    org_name: str
    project_name: str
    container: dict[str, Any]
    statuses: list[StatusItem]
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    preset_name: str | None = None
    scheduler_enabled: bool = False
    preemptible_node: bool = False
    pass_config: bool = False
    restart_policy: str = "never"
    priority: str = "normal"
    max_run_time_minutes: int | None = None
    schedule_timeout: float | None = None
    restarts: int = 0

    @property
    def status(self) -> JobStatus:
        return self.statuses[-1].status

    @property
    def created_at(self) -> str:
        return self.statuses[0].transition_time

    @property
    def first_started(self) -> float | None:
        """When the job first ran (seconds since the epoch), for its life span."""
        for item in self.statuses:
            if item.status is JobStatus.RUNNING:
                return datetime.fromisoformat(item.transition_time).timestamp()
        return None

    def transition(
        self,
        status: JobStatus,
        reason: str = "",
        description: str = "",
        exit_code: int | None = None,
    ) -> StatusItem:
        if self.status in TERMINAL:
            raise TransitionRefused(f"job {self.id} is already {self.status.value}")
        item = StatusItem(status, now_iso(), reason, description, exit_code)
        self.statuses.append(item)
        return item

    def _history(self) -> dict[str, Any]:
        last = self.statuses[-1]
        started = next(
            (s.transition_time for s in self.statuses if s.status is JobStatus.RUNNING),
            None,
        )
        finished = last.transition_time if last.status in TERMINAL else None
        history: dict[str, Any] = {
            "status": last.status.value,
            "reason": last.reason,
            "description": last.description,
            "restarts": self.restarts,
            "created_at": self.created_at,
        }
        if started:
            history["started_at"] = started
            end = datetime.fromisoformat(finished) if finished else datetime.now(UTC)
            history["run_time_seconds"] = round(
                (end - datetime.fromisoformat(started)).total_seconds(), 3
            )
        if finished:
            history["finished_at"] = finished
        if last.exit_code is not None:
            history["exit_code"] = last.exit_code
        return history

    def to_api(self) -> dict[str, Any]:
        """The JobDescription JSON, with every key apolo_sdk requires."""
        data: dict[str, Any] = {
            "id": self.id,
            "owner": self.owner,
            "cluster_name": self.cluster_name,
            "org_name": self.org_name,
            "project_name": self.project_name,
            "namespace": "",
            "status": self.status.value,
            "statuses": [s.to_api() for s in self.statuses],
            "history": self._history(),
            "container": self.container,
            "scheduler_enabled": self.scheduler_enabled,
            "preemptible_node": self.preemptible_node,
            "pass_config": self.pass_config,
            "uri": f"job://{self.cluster_name}/{self.org_name}/{self.project_name}/{self.id}",
            "restart_policy": self.restart_policy,
            "privileged": False,
            "priority": self.priority,
            "materialized": False,
            "being_dropped": False,
            "logs_removed": False,
            "total_price_credits": "0",
            "price_credits_per_hour": "0",
            "tags": list(self.tags),
        }
        for key in (
            "name",
            "description",
            "preset_name",
            "max_run_time_minutes",
            "schedule_timeout",
        ):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> JobRecord:
        return cls(
            id=data["id"],
            owner=data["owner"],
            cluster_name=data["cluster_name"],
            org_name=data["org_name"],
            project_name=data["project_name"],
            container=data["container"],
            statuses=[StatusItem.from_api(s) for s in data["statuses"]],
            name=data.get("name"),
            tags=list(data.get("tags") or ()),
            description=data.get("description"),
            preset_name=data.get("preset_name"),
            scheduler_enabled=bool(data.get("scheduler_enabled")),
            preemptible_node=bool(data.get("preemptible_node")),
            pass_config=bool(data.get("pass_config")),
            restart_policy=data.get("restart_policy", "never"),
            priority=data.get("priority", "normal"),
            max_run_time_minutes=data.get("max_run_time_minutes"),
            schedule_timeout=data.get("schedule_timeout"),
            restarts=int(data["history"].get("restarts", 0)),
        )
