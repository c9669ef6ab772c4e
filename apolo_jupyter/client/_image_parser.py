"""Image references: ``ubuntu:22.04``, ``ghcr.io/o/i:1``, ``image:name:tag``, ...

An image is a *platform image* when the text starts with ``image:`` or with the
registry host (``host[:port]/``) of a known cluster; anything else is an
*external* image (Docker Hub, another registry).  The default tag is ``latest``.
Results and errors match ``apolo_sdk`` 26.9.0, quirks included (protocol
reference, section 6.3):

* ``localhost:5000/img:tag`` keeps ``localhost:5000`` as ``registry`` but its
  wire form (``as_docker_url()``) is ``img:tag``;
* only the part after the first ``/`` of a name is checked against the name
  grammar (the first segment may be a registry host or an org);
* in ``image://cluster/X/...`` the segment ``X`` is the org only when it equals
  the current org, otherwise it is the project.
"""

from __future__ import annotations

import enum
import re

from yarl import URL

from ._config import Config
from ._models import LocalImage, RemoteImage
from ._url_utils import check_uri, check_uri_text

DEFAULT_TAG = "latest"
PLATFORM_PREFIX = "image:"

#: One component of a repository name: lowercase letters and digits, separated
#: by single ``.``, ``_`` or ``-`` (the separator rule used by ``apolo_sdk``).
NAME_COMPONENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"

#: A repository path: components joined by ``/``.
IMAGE_NAME_RE = re.compile(rf"(?:{NAME_COMPONENT}/)*{NAME_COMPONENT}")

#: Docker's tag grammar: at most 128 characters, not starting with ``.``/``-``.
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

_NAME_RULES = (
    "invalid image name. Docker specifies it to be the following:\n"
    "Name components may contain lowercase letters, digits and separators. "
    "A separator is defined as a period, one or two underscores, or one or more "
    "dashes. A name component may not start or end with a separator.\n"
    "Write it in lowercase with single separators, e.g. my-org/my_image.v2"
)
_TAG_RULES = (
    "invalid tag. Docker specifies it to be the following:\n"
    "A tag name must be valid ASCII and may contain lowercase and uppercase "
    "letters, digits, underscores, periods and dashes. A tag name may not start "
    "with a period or a dash and may contain a maximum of 128 characters.\n"
    "Write it like 1.0, v2-rc1 or latest"
)
#: What the magics and the launcher say about any name that is not an image.
IMAGE_EXAMPLES = "write one such as python:3.11, ubuntu:22.04 or image:NAME:TAG"


class ImageNameError(ValueError):
    """The text breaks the image name or tag grammar (not a platform problem).
    Its words are the SDK's; the magics and the launcher say one line instead
    (``IMAGE_EXAMPLES``)."""


_FORMS = "write <name>[:<tag>] (e.g. ubuntu:22.04) or image:<name>[:<tag>]"


class TagOption(enum.Enum):
    """How a platform image's tag is read: ``latest`` when missing (DEFAULT),
    optional (ALLOW), or refused (DENY)."""

    ALLOW = enum.auto()
    DENY = enum.auto()
    DEFAULT = enum.auto()


def parse_remote_image(
    text: str, config: Config, tag_option: TagOption = TagOption.DEFAULT
) -> RemoteImage:
    """Parse an external or platform image reference."""
    registry_match = None
    if not text.startswith(PLATFORM_PREFIX):
        registry_match = _match_registry(text, config)
    if text.startswith(PLATFORM_PREFIX) or registry_match:
        try:
            return _parse_platform(text, registry_match, config, tag_option)
        except ValueError as exc:
            raise _same_kind(exc, f"Invalid remote image '{text}': {exc}") from None
    try:
        return _parse_external(text)
    except ValueError as exc:
        raise _same_kind(exc, f"Invalid local image '{text}': {exc}") from None


def parse_local_image(text: str) -> LocalImage:
    """A local docker image, ``name[:tag]`` (``latest`` when untagged); a
    platform image (``image:…``) is refused."""
    try:
        _validate_text(text)
        if text.startswith(PLATFORM_PREFIX):
            raise ValueError(
                "scheme 'image://' is not allowed for local images (drop the "
                "'image:' prefix, e.g. ubuntu:22.04)"
            )
        name, tag = split_image_name(text, DEFAULT_TAG)
    except ValueError as exc:
        raise _same_kind(exc, f"Invalid local image '{text}': {exc}") from None
    return LocalImage(name=name, tag=tag)


def _same_kind(exc: ValueError, message: str) -> ValueError:
    return (
        ImageNameError(message)
        if isinstance(exc, ImageNameError)
        else ValueError(message)
    )


def registry_authority(registry_url: URL) -> str:
    """``host[:port]`` of a cluster's registry, as it prefixes image names."""
    if not registry_url.host:
        raise ValueError(
            f"Empty hostname in registry URL '{registry_url}': please consider "
            f"updating configuration (the cluster's registry_url needs a host)"
        )
    port = registry_url.explicit_port
    return registry_url.host if port is None else f"{registry_url.host}:{port}"


def split_image_name(text: str, default_tag: str | None) -> tuple[str, str | None]:
    """Split ``name[:tag]`` and validate both parts."""
    name, tag = _split_tag(text, default_tag)
    _validate_name(name)
    if tag:
        _validate_tag(tag)
    return name, tag


def _parse_external(text: str) -> RemoteImage:
    _validate_text(text)
    name, tag = split_image_name(text, DEFAULT_TAG)
    registry = None
    if ":" in name:  # only a registry port can put a ':' in the name
        registry, name = name.split("/", 1)
    return RemoteImage.new_external_image(name=name, tag=tag, registry=registry)


def _parse_platform(
    text: str,
    registry_match: tuple[str, str] | None,
    config: Config,
    tag_option: TagOption = TagOption.DEFAULT,
) -> RemoteImage:
    """``image:...`` text, or ``<registry>/...`` text already matched to a cluster."""
    _validate_text(text)
    if registry_match is None:
        check_uri_text(text, "image")
        url = _parse_url(text)
    else:
        cluster_name, rest = registry_match
        url = _parse_url(f"image://{cluster_name}/{rest}")
    if not url.path or url.path == "/":
        raise ValueError(f"no image name specified; {_FORMS}")
    check_uri(url)
    default = DEFAULT_TAG if tag_option is TagOption.DEFAULT else None
    name, tag = split_image_name(url.path.lstrip("/"), default)
    if tag_option is TagOption.DENY and tag is not None:
        raise ValueError("tag is not allowed; write the image without ':<tag>'")
    cluster_name = config.cluster_name if url.host is None else url.host
    org_name, project_name, name = _owner_and_name(url, name, config)
    return RemoteImage.new_platform_image(
        name=name,
        tag=tag,
        registry=_cluster_registry(cluster_name, config),
        cluster_name=cluster_name,
        org_name=org_name,
        project_name=project_name,
    )


def _owner_and_name(url: URL, name: str, config: Config) -> tuple[str | None, str, str]:
    """(org, project, name) of a platform image path already split from its tag."""
    org_name = config.org_name
    if not url.path.startswith("/"):  # image:<name>: the current project
        return org_name, config.project_name_or_raise, name
    project_name, _, name = name.partition("/")
    if url.host and project_name == org_name:  # image://cluster/org/project/name
        project_name, _, name = name.partition("/")
    if not name:
        raise ValueError(
            "no image name specified; write image:/<project>/<name>[:<tag>] or "
            "image://<cluster>/<org>/<project>/<name>[:<tag>]"
        )
    return org_name, project_name, name


def _match_registry(text: str, config: Config) -> tuple[str, str] | None:
    """(cluster name, rest of the path) when ``text`` starts with a registry."""
    for cluster in config.clusters.values():
        registry = registry_authority(cluster.registry_url)
        if text.startswith(f"{registry}/"):
            return cluster.name, text[len(registry) :].lstrip("/")
    return None


def _cluster_registry(cluster_name: str, config: Config) -> str:
    try:
        cluster = config.get_cluster(cluster_name)
    except RuntimeError as exc:
        raise RuntimeError(
            f"{exc}; write image:<name>[:<tag>] for the current cluster or name a "
            f"known one in image://<cluster>/<org>/<project>/<name>, or log in again "
            f"if the cluster is new"
        ) from None
    return registry_authority(cluster.registry_url)


def _parse_url(text: str) -> URL:
    try:
        return URL(text)
    except ValueError as exc:  # includes UnicodeError from IDNA host encoding
        raise ValueError(f"{exc}; {_FORMS}") from None


def _validate_text(text: str) -> None:
    if not text:
        raise ImageNameError(f"empty image name; {_FORMS}")
    if text.startswith("-"):
        raise ImageNameError(f"image cannot start with dash; {_FORMS}")
    if text == "image:latest":
        raise ValueError(
            "ambiguous value: valid as both local and remote image name; write "
            "library/image:latest for the Docker Hub image or image:latest:latest "
            "for the platform image 'latest'"
        )


def _split_tag(text: str, default_tag: str | None) -> tuple[str, str | None]:
    """``name`` and ``tag``; a ``:`` followed by a ``/`` is a registry port."""
    if text.startswith(":") or text.endswith(":"):
        raise ValueError(
            f"empty name or empty tag; drop the ':' to get the tag "
            f"'{DEFAULT_TAG}' or {_FORMS}"
        )
    colons = text.count(":")
    if colons == 0:
        return text, default_tag
    if colons == 1:
        name, tag = text.split(":")
        return (text, default_tag) if "/" in tag else (name, tag)
    if colons == 2 and "/" in text:  # registry:port/name:tag
        name, tag = text.rsplit(":", 1)
        return name, tag
    raise ValueError(
        "too many tags; write at most one ':<tag>' (a registry port goes before "
        "the first '/', e.g. localhost:5000/img:tag)"
    )


def _validate_name(name: str) -> None:
    """Check the name after its first segment (a registry host or an org)."""
    _, slash, rest = name.partition("/")
    checked = rest if slash else name
    if not checked:
        raise ValueError(f"no image name specified; {_FORMS}")
    if not IMAGE_NAME_RE.fullmatch(checked):
        raise ImageNameError(_NAME_RULES)


def _validate_tag(tag: str) -> None:
    if len(tag) > 128:
        raise ImageNameError("tag is to long; write a tag of 128 characters at most")
    if not TAG_RE.fullmatch(tag):
        raise ImageNameError(_TAG_RULES)
