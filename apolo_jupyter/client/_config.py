"""What the client knows about the platform it talks to.

``Config`` mirrors ``apolo_sdk.Config``: ``await config.token()`` and
``await config.switch_project/switch_cluster/switch_org(name)``. It is a service
that a client's parts share, so a switch is seen by all of them; unlike the SDK it
never writes the switch into an apolo-cli login (we only ever read that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from yarl import URL

from ._errors import ConfigError
from ._models import Preset


@dataclass(frozen=True)
class Cluster:
    name: str
    orgs: Sequence[str]
    registry_url: URL
    storage_url: URL
    monitoring_url: URL
    secrets_url: URL = URL()
    disks_url: URL = URL()
    users_url: URL = URL()
    presets: Mapping[str, Preset] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectKey:
    cluster_name: str
    org_name: str | None
    project_name: str


@dataclass(eq=False)
class Config:
    """A resolved connection: where the API is, who we are, what we target."""

    api_url: URL
    auth_token: str = field(repr=False)
    cluster_name: str
    org_name: str | None
    project_name: str | None
    clusters: Mapping[str, Cluster]
    username: str
    source: str
    status_ws_url: URL | None = None
    projects: Sequence[ProjectKey] = ()
    # The embedded local platform says so in /config: some `apolo run` options
    # (privileged, energy schedules, sharing) are refused there before a request.
    local: bool = False

    async def token(self) -> str:
        """The bearer token (as ``await client.config.token()`` in the SDK)."""
        return self.auth_token

    @property
    def cluster(self) -> Cluster:
        return self.get_cluster(self.cluster_name)

    def get_cluster(self, cluster_name: str) -> Cluster:
        try:
            return self.clusters[cluster_name]
        except KeyError:
            # The opening words are apolo_sdk's, which callers match on.
            raise RuntimeError(
                f"Cluster {cluster_name} doesn't exist in a list of available "
                f"clusters {sorted(self.clusters)}: name one of them (e.g. "
                f"storage://<cluster>/...) or leave the cluster out for the "
                f"current one ({self.cluster_name})"
            ) from None

    @property
    def presets(self) -> Mapping[str, Preset]:
        return self.cluster.presets

    @property
    def secrets_url(self) -> URL:
        return self.cluster.secrets_url

    @property
    def disk_api_url(self) -> URL:
        return self.cluster.disks_url

    @property
    def storage_url(self) -> URL:
        return self.cluster.storage_url

    @property
    def monitoring_url(self) -> URL:
        return self.cluster.monitoring_url

    @property
    def registry_url(self) -> URL:
        return self.cluster.registry_url

    @property
    def project_name_or_raise(self) -> str:
        if not self.project_name:
            raise ConfigError(
                "The current project is not selected. Create a project on the "
                "platform or pass project_name=..."
            )
        return self.project_name

    def _projects_of(self, cluster: str, org: str | None) -> list[str]:
        return sorted(
            p.project_name
            for p in self.projects
            if p.cluster_name == cluster and p.org_name == org
        )

    async def switch_project(self, name: str) -> None:
        known = self._projects_of(self.cluster_name, self.org_name)
        if self.projects and name not in known:
            raise RuntimeError(
                f"Project {name} doesn't exist in a list of available tenant "
                f"projects {known}: pick one of them"
            )
        self.project_name = name

    async def switch_cluster(self, name: str) -> None:
        if name not in self.clusters:
            raise RuntimeError(
                f"Cluster {name} doesn't exist in a list of available clusters "
                f"{list(self.clusters)}: pick one of them"
            )
        orgs = sorted(self.clusters[name].orgs)
        org = self.org_name if self.org_name in orgs else next(iter(orgs), None)
        self.cluster_name, self.org_name = name, org
        self._keep_or_pick_project()

    async def switch_org(self, name: str) -> None:
        if name not in self.cluster.orgs:
            for cluster in self.clusters.values():
                if name in cluster.orgs:
                    await self.switch_cluster(cluster.name)
                    break
            else:
                raise RuntimeError(
                    f"Cannot find available cluster for org {name}: the orgs are "
                    f"{sorted({o for c in self.clusters.values() for o in c.orgs})}"
                )
        self.org_name = name
        self._keep_or_pick_project()

    def _keep_or_pick_project(self) -> None:
        known = self._projects_of(self.cluster_name, self.org_name)
        if self.project_name not in known:
            self.project_name = known[0] if known else None

    def describe(self) -> str:
        """One line saying which platform this is."""
        where = f"{self.cluster_name}/{self.org_name or '-'}/{self.project_name or '-'}"
        return f"apolo_jupyter: {self.source} at {self.api_url} ({where})"
