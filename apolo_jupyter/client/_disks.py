"""``client.disks``: persistent disks of a project, as ``apolo_sdk`` has them.

A job mounts one with ``-v disk:<name or id>:/path[:ro|rw]``; what it writes there
outlives the job.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from yarl import URL

from ._project_service import ProjectService
from ._utils import AsyncIteratorAndContextManager, asyncgeneratorcontextmanager


@dataclass(frozen=True)
class Disk:
    id: str
    storage: int  # bytes
    owner: str
    status: Disk.Status
    cluster_name: str
    project_name: str
    org_name: str
    created_at: datetime
    last_usage: datetime | None = None
    name: str | None = None
    timeout_unused: timedelta | None = None
    used_bytes: int | None = None

    @property
    def uri(self) -> URL:
        org = f"/{self.org_name}" if self.org_name else ""
        return URL(f"disk://{self.cluster_name}{org}/{self.project_name}/{self.id}")

    class Status(enum.Enum):
        PENDING = "Pending"
        READY = "Ready"
        BROKEN = "Broken"


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


class Disks(ProjectService):
    _service = "disks"

    def _disk(self, data: Mapping[str, Any]) -> Disk:
        if not data.get("org_name"):
            raise ValueError("org_name is required for disks")
        created = _when(data["created_at"])
        assert created is not None
        life = data.get("life_span")
        return Disk(
            id=data["id"],
            storage=int(data["storage"]),
            used_bytes=data.get("used_bytes"),
            owner=data["owner"],
            project_name=data["project_name"],
            name=data.get("name"),
            status=Disk.Status(data["status"]),
            cluster_name=self._config.cluster_name,
            org_name=data["org_name"],
            created_at=created,
            last_usage=_when(data.get("last_usage")),
            timeout_unused=timedelta(seconds=life) if life is not None else None,
        )

    def list(
        self,
        cluster_name: str | None = None,
        org_name: str | None = None,
        project_name: str | None = None,
    ) -> AsyncIteratorAndContextManager[Disk]:
        return self._list(cluster_name, org_name, project_name)

    @asyncgeneratorcontextmanager
    async def _list(
        self, cluster_name: str | None, org_name: str | None, project_name: str | None
    ) -> AsyncGenerator[Disk, None]:
        params = self._list_params(org_name, project_name)
        async with self._core.request(
            "GET", self._url(cluster_name), params=params
        ) as resp:
            items = await resp.json()
        for item in items:
            yield self._disk(item)

    async def create(
        self,
        storage: int,
        timeout_unused: timedelta | None = None,
        name: str | None = None,
        cluster_name: str | None = None,
        project_name: str | None = None,
        org_name: str | None = None,
    ) -> Disk:
        payload = {
            "storage": storage,
            "life_span": timeout_unused.total_seconds() if timeout_unused else None,
            "name": name,
            "project_name": project_name or self._config.project_name_or_raise,
            "org_name": org_name or self._config.org_name,
        }
        async with self._core.request(
            "POST", self._url(cluster_name), json=payload
        ) as resp:
            return self._disk(await resp.json())

    async def get(
        self,
        disk_id_or_name: str,
        cluster_name: str | None = None,
        org_name: str | None = None,
        project_name: str | None = None,
    ) -> Disk:
        data = await self._get_one(
            disk_id_or_name, cluster_name, org_name, project_name
        )
        return self._disk(data)

    async def rm(
        self,
        disk_id_or_name: str,
        cluster_name: str | None = None,
        org_name: str | None = None,
        project_name: str | None = None,
    ) -> None:
        await self._rm(disk_id_or_name, cluster_name, org_name, project_name)
