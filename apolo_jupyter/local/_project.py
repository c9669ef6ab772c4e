"""The one cluster/org/project the local platform serves, as the disks and
secrets routes check it: in a request's scope and in a resource's URI."""

from __future__ import annotations

from yarl import URL

from ._settings import CLUSTER, ORG, PROJECT
from ._validate import BadRequest


def check_project(org: object, project: object) -> None:
    """Refuse a request for another org/project (empty means the local one)."""
    if (org or ORG, project or PROJECT) != (ORG, PROJECT):
        raise BadRequest(
            f"org/project {org}/{project} does not exist here: the local platform "
            f"serves {ORG}/{PROJECT}"
        )


def name_in_uri(uri: str, scheme: str, in_uri: str, in_client: str) -> str:
    """The last part of a ``SCHEME://local/local/default/NAME`` URI; a URI of
    another scheme, cluster or project is refused with the forms to use, the
    name standing as ``<in_uri>`` in the URI and as ``<in_client>`` in the
    client's short form."""
    parsed = URL(uri)
    parts = [p for p in parsed.path.split("/") if p]
    if (
        parsed.scheme != scheme
        or parsed.host != CLUSTER
        or parts[:-1] != [ORG, PROJECT]
    ):
        raise BadRequest(
            f"{scheme} {uri!r} is not on this platform: use "
            f"{scheme}://{CLUSTER}/{ORG}/{PROJECT}/<{in_uri}> "
            f"({scheme}:<{in_client}> in the client)"
        )
    return parts[-1]
