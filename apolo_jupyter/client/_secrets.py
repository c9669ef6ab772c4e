"""``client.secrets``: named secret values of a project, as ``apolo_sdk`` has them.

A job gets a secret as a file (``-v secret:key:/path``) or an environment variable
(``-e NAME=secret:key``); the value itself is only ever sent by ``add`` and
returned by ``get``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from yarl import URL

from ._project_service import ProjectService
from ._utils import AsyncIteratorAndContextManager, asyncgeneratorcontextmanager


@dataclass(frozen=True)
class Secret:
    key: str
    owner: str
    cluster_name: str
    org_name: str
    project_name: str

    @property
    def uri(self) -> URL:
        org = f"/{self.org_name}" if self.org_name else ""
        return URL(f"secret://{self.cluster_name}{org}/{self.project_name}/{self.key}")


class Secrets(ProjectService):
    _service = "secrets"
    _no_service_hint = "; secrets need a platform that offers them"

    def list(
        self,
        cluster_name: str | None = None,
        org_name: str | None = None,
        project_name: str | None = None,
    ) -> AsyncIteratorAndContextManager[Secret]:
        """The secrets' keys (never their values); every project's without one."""
        return self._list(cluster_name, org_name, project_name)

    @asyncgeneratorcontextmanager
    async def _list(
        self, cluster_name: str | None, org_name: str | None, project_name: str | None
    ) -> AsyncGenerator[Secret, None]:
        url = self._url(cluster_name)
        params = self._list_params(org_name, project_name)
        async with self._core.request("GET", url, params=params) as resp:
            items = await resp.json()
        for item in items:
            yield Secret(
                key=item["key"],
                owner=item["owner"],
                cluster_name=cluster_name or self._config.cluster_name,
                org_name=item.get("org_name") or self._config.org_name or "",
                project_name=item["project_name"],
            )

    async def add(
        self,
        key: str,
        value: bytes,
        cluster_name: str | None = None,
        org_name: str | None = None,
        project_name: str | None = None,
    ) -> None:
        """Create or replace the secret ``key``."""
        if not isinstance(value, bytes):
            raise TypeError(
                f"a secret's value is bytes, got {type(value).__name__}: "
                'pass e.g. "text".encode()'
            )
        payload = {
            "key": key,
            "value": base64.b64encode(value).decode("ascii"),
            "org_name": org_name or self._config.org_name,
            "project_name": project_name or self._config.project_name_or_raise,
        }
        async with self._core.request("POST", self._url(cluster_name), json=payload):
            return None

    async def get(
        self,
        key: str,
        cluster_name: str | None = None,
        org_name: str | None = None,
        project_name: str | None = None,
    ) -> bytes:
        data = await self._get_one(key, cluster_name, org_name, project_name)
        return base64.b64decode(data["value"])

    async def rm(
        self,
        key: str,
        cluster_name: str | None = None,
        org_name: str | None = None,
        project_name: str | None = None,
    ) -> None:
        await self._rm(key, cluster_name, org_name, project_name)
