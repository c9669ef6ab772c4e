"""What the client knows about the platform it talks to."""

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
    presets: Mapping[str, Preset] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """A resolved connection: where the API is, who we are, what we target."""

    api_url: URL
    token: str = field(repr=False)
    cluster_name: str
    org_name: str | None
    project_name: str | None
    clusters: Mapping[str, Cluster]
    username: str
    source: str
    status_ws_url: URL | None = None

    @property
    def cluster(self) -> Cluster:
        return self.get_cluster(self.cluster_name)

    def get_cluster(self, name: str) -> Cluster:
        try:
            return self.clusters[name]
        except KeyError:
            known = ", ".join(sorted(self.clusters)) or "none"
            raise RuntimeError(
                f"Cluster {name} doesn't exist in the list of available clusters "
                f"({known})"
            ) from None

    @property
    def presets(self) -> Mapping[str, Preset]:
        return self.cluster.presets

    @property
    def project_name_or_raise(self) -> str:
        if not self.project_name:
            raise ConfigError(
                "The current project is not selected. Create a project on the "
                "platform or pass project_name=..."
            )
        return self.project_name

    def describe(self) -> str:
        """One line saying which platform this is."""
        where = f"{self.cluster_name}/{self.org_name or '-'}/{self.project_name or '-'}"
        return f"apolo_jupyter: {self.source} at {self.api_url} ({where})"
