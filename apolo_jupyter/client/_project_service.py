"""What ``client.disks`` and ``client.secrets`` share: a per-cluster service URL
from ``/config`` and a project's resources addressed by name under it."""

from __future__ import annotations

from typing import Any

from yarl import URL

from ._config import Config
from ._core import Core


class ProjectService:
    """A service that keeps one kind of a project's named resources.

    ``_service`` names the cluster's ``<service>_url`` in ``/config``;
    ``_no_service_hint`` ends the error raised when a cluster offers none.
    """

    _service: str
    _no_service_hint = ""

    def __init__(self, core: Core, config: Config) -> None:
        self._core = core
        self._config = config

    def _url(self, cluster_name: str | None) -> URL:
        cluster = cluster_name or self._config.cluster_name
        url: URL = getattr(self._config.get_cluster(cluster), f"{self._service}_url")
        if not url.scheme:
            raise ValueError(
                f"cluster {cluster} has no {self._service} service in its /config "
                f"({self._service}_url){self._no_service_hint}"
            )
        return url

    def _params(self, org_name: str | None, project_name: str | None) -> dict[str, str]:
        """A single resource's project: the given one, else the current one."""
        params = {"project_name": project_name or self._config.project_name_or_raise}
        org = org_name or self._config.org_name
        if org:
            params["org_name"] = org
        return params

    def _list_params(
        self, org_name: str | None, project_name: str | None
    ) -> dict[str, str]:
        """A listing's filter: every project of the org unless one is named."""
        params = {"org_name": org_name or self._config.org_name or ""}
        if project_name:
            params["project_name"] = project_name
        return params

    async def _get_one(
        self,
        name: str,
        cluster_name: str | None,
        org_name: str | None,
        project_name: str | None,
    ) -> Any:
        url = self._url(cluster_name) / name
        params = self._params(org_name, project_name)
        async with self._core.request("GET", url, params=params) as resp:
            return await resp.json()

    async def _rm(
        self,
        name: str,
        cluster_name: str | None,
        org_name: str | None,
        project_name: str | None,
    ) -> None:
        url = self._url(cluster_name) / name
        params = self._params(org_name, project_name)
        async with self._core.request("DELETE", url, params=params):
            return None
