"""Platform URIs: normalisation and parsing of command-line style text.

A *cluster URI* (``storage:``, ``image:``, ``job:``, ...) written without a host
is completed with the current cluster, org and project:

* relative path ``storage:folder`` -> ``storage://{cluster}/{org}/{project}/folder``
* absolute path ``storage:/proj2/f`` -> ``storage://{cluster}/{org}/proj2/f``
  (the first segment names another project of the same org)

A URI that already has a host is returned unchanged.  Fragments, queries, users,
passwords and ports are refused, and so is a leading ``~``.  The results match
``apolo_sdk`` 26.9.0 (see the protocol reference, section 6.1).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from yarl import URL

from ._config import Config

#: Schemes whose host-less URIs are completed with cluster/org/project.
CLUSTER_SCHEMES = ("storage", "image", "job", "secret", "disk", "blob", "flow")

#: Default schemes of :func:`uri_from_cli`, as in ``apolo_sdk``.
DEFAULT_CLI_SCHEMES = ("file", "storage")

#: ``scheme:123``: some URL parsers read the digits as a port; we keep them as
#: the path (``storage:12`` is the folder ``12`` of the current project).
SCHEME_AND_NUMBER_RE = re.compile(r"(?P<scheme>[a-zA-Z0-9+\-.]{2,}):(?P<path>[0-9]+)")


def normalize_uri(uri: URL, config: Config) -> URL:
    """Complete a host-less cluster URI with the current cluster/org/project."""
    check_uri(uri)
    if (uri.host or uri.path.lstrip("/")).startswith("~"):
        raise ValueError(
            f"Cannot expand user for {uri}: '~' has no meaning on the platform; "
            f"write {uri.scheme}:<path> (inside the current project) or "
            f"{uri.scheme}:/<project>/<path>"
        )
    if uri.host:
        return uri
    if uri.scheme not in CLUSTER_SCHEMES:
        raise ValueError(
            f"Absolute URI is required for scheme {uri.scheme}: "
            f"write it as {uri.scheme}://<host>/<path>"
        )
    _check_inside(uri, config)
    return URL.build(
        scheme=uri.scheme,
        host=config.cluster_name,
        path=_project_path(uri.path, config),
    )


def _check_inside(uri: URL, config: Config) -> None:
    """Refuse a ``..`` that climbs above the current project (``storage:../x``)
    or, for ``storage:/<project>/...``, above the org. Dot segments that stay
    inside resolve as in the SDK (``storage:a/../b`` is ``b``); the SDK would turn
    the others into another project's or org's folder. The message shows what
    was typed."""
    relative = not uri.path.startswith("/")
    depth = 0
    for part in uri.path.split("/"):
        if part == "..":
            depth -= 1
        elif part not in ("", "."):
            depth += 1
        if depth < 0:
            break
    else:
        return
    if relative:
        where = f"the current project ({config.project_name_or_raise})"
        fix = (
            f"write a path inside it, e.g. {uri.scheme}:folder, or name another "
            f"project explicitly as {uri.scheme}:/<project>/<path>"
        )
    else:
        where = "the org's projects"
        fix = f"write it as {uri.scheme}:/<project>/<path> without '..'"
    raise ValueError(f"{uri.scheme}:{uri.path} leads outside {where}; {fix}")


def normalize_storage_path_uri(uri: URL, config: Config) -> URL:
    """:func:`normalize_uri` for ``storage:`` URIs only."""
    return _normalize_only(uri, "storage", config, "<path>")


def normalize_secret_uri(uri: URL, config: Config) -> URL:
    """:func:`normalize_uri` for ``secret:`` URIs only (a job's secret_env and
    secret files, as ``apolo_sdk`` sends them)."""
    return _normalize_only(uri, "secret", config)


def normalize_disk_uri(uri: URL, config: Config) -> URL:
    """:func:`normalize_uri` for ``disk:`` URIs only (a job's disk volumes)."""
    return _normalize_only(uri, "disk", config)


def _normalize_only(
    uri: URL, scheme: str, config: Config, example: str = "<name>"
) -> URL:
    if uri.scheme != scheme:
        raise ValueError(
            f"Invalid {scheme} scheme '{uri.scheme}:' (only '{scheme}:' is allowed)"
            f"; write it as {scheme}:{example}"
        )
    return normalize_uri(uri, config)


def normalize_local_path_uri(uri: URL) -> URL:
    """Make a ``file:`` URI absolute (relative paths start at the current folder)."""
    if uri.scheme != "file":
        raise ValueError(
            f"Invalid local file scheme '{uri.scheme}:' (only 'file:' is allowed)"
            f"; write it as file:<path>"
        )
    check_uri(uri)
    if uri.host:
        raise ValueError(
            f"Host part is not allowed in file URI, found '{uri.host}'; "
            f"write it as file:<path> or file:///<absolute path>"
        )
    if uri.path.startswith("~"):
        raise ValueError(
            f"Cannot expand user for {uri}; write the path without 'file:' "
            f"(e.g. ~/data) to expand '~', or give an absolute path"
        )
    result = URL(_absolute(Path(uri.path)).as_uri())
    while result.path.startswith("//"):
        result = result.with_path(result.path[1:])
    return result


def uri_from_cli(
    text: str,
    config: Config,
    allowed_schemes: Iterable[str] = DEFAULT_CLI_SCHEMES,
) -> URL:
    """Parse a URI or (if ``file`` is allowed) a local path given as text.

    An empty ``allowed_schemes`` allows every scheme.
    """
    allowed = tuple(allowed_schemes)
    if "file" in allowed and text.startswith("~"):
        return normalize_local_path_uri(_expanded_home_uri(text))
    uri = _parse(text)
    checked_text = text
    if not uri.scheme or len(uri.scheme) == 1:  # one letter: a Windows drive
        number = SCHEME_AND_NUMBER_RE.fullmatch(text)
        if number:
            uri = URL.build(scheme=number["scheme"], path=number["path"])
        elif "file" in allowed:
            uri = _local_path_uri(text)
            checked_text = ""  # '#' and '?' are quoted in a local path
    if not uri.scheme:
        raise ValueError(_no_scheme_message(text, allowed))
    check_scheme(uri.scheme, allowed)
    check_uri_text(checked_text, uri.scheme)
    if uri.scheme == "file":
        return normalize_local_path_uri(uri)
    return normalize_uri(uri, config)


def check_scheme(scheme: str, allowed: Iterable[str]) -> None:
    """Refuse ``scheme`` unless it is allowed (an empty ``allowed`` allows all)."""
    allowed = tuple(allowed)
    if not allowed or scheme in allowed:
        return
    listed = ", ".join(f"'{item}:'" for item in allowed)
    verb = "are" if len(allowed) > 1 else "is"
    raise ValueError(
        f"Invalid scheme '{scheme}:' (only {listed} {verb} allowed); "
        f"write it as {allowed[0]}:<path>"
    )


def check_uri_text(text: str, scheme: str) -> None:
    """Refuse ``#`` and ``?`` anywhere in the text (even trailing, empty parts)."""
    if "#" in text:
        raise ValueError(_fragment_message(scheme))
    if "?" in text:
        raise ValueError(_query_message(scheme))


def check_uri(uri: URL) -> None:
    """Refuse fragment, query, user, password and port in a platform URI."""
    scheme = uri.scheme
    if uri.fragment:
        raise ValueError(_fragment_message(scheme))
    if uri.query:
        raise ValueError(_query_message(scheme))
    if uri.user is not None:
        raise ValueError(
            f"User is not allowed in {scheme} URI. "
            f"Write {scheme}://<cluster>/<path> without '<user>@'."
        )
    if uri.password is not None:
        raise ValueError(
            f"Password is not allowed in {scheme} URI; "
            f"write {scheme}://<cluster>/<path> without '<user>:<password>@'"
        )
    if uri.port is not None:
        fix = (
            f"write {scheme}://<cluster>/<path> without ':<port>'"
            if uri.explicit_port is not None
            else f"'{scheme}:' implies a port, use a platform scheme such as storage:"
        )
        raise ValueError(f"Port is not allowed in {scheme} URI; {fix}")


def shorten_uri(uri: URL, config: Config) -> URL:
    """The inverse of normalisation: drop the current cluster/org/project prefix.

    Trailing slashes are dropped too; ``file:`` URIs stay absolute.
    """
    result = uri
    if uri.scheme != "file" and uri.host == config.cluster_name:
        own = ("/", config.org_name, config.project_name_or_raise)
        prefix = tuple(part for part in own if part is not None)
        if uri.parts[: len(prefix)] == prefix:
            rest = "/".join(uri.parts[len(prefix) :])
            result = URL.build(scheme=uri.scheme, host="", path=rest)
    while result.path.endswith("/") and result.path != "/":
        result = URL.build(
            scheme=result.scheme, host=result.host or "", path=result.path[:-1]
        )
    return result


def _project_path(path: str, config: Config) -> str:
    """``/{org}/{project}/{path}`` for relative, ``/{org}/{path}`` for absolute."""
    if path.startswith("/"):
        path = path.lstrip("/")
    else:
        project = config.project_name_or_raise
        path = f"{project}/{path}" if path else project
    if config.org_name is not None:
        path = f"{config.org_name}/{path}"
    return "/" + path


def _parse(text: str) -> URL:
    try:
        return URL(text)
    except ValueError as exc:  # includes UnicodeError from IDNA host encoding
        raise ValueError(
            f"{exc} in '{text}'; write a URI as <scheme>:<path>, "
            f"e.g. storage:folder/file"
        ) from None


def _expanded_home_uri(text: str) -> URL:
    try:
        expanded = os.path.expanduser(text)
    except ValueError as exc:  # a NUL byte in the user name
        raise ValueError(
            f"{exc} in local path {text!r}; write the path without NUL characters"
        ) from None
    if expanded.startswith("~"):
        raise ValueError(
            f"Cannot expand user for {text}: no such user's home; "
            f"write an absolute path instead"
        )
    return URL(Path(expanded).as_uri())


def _local_path_uri(text: str) -> URL:
    """``file:`` URI of a local path; only UTF-8 encodable paths are accepted."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{exc} in local path {text!r}; rename the file or pass a file: URI "
            f"with the bytes quoted as %XX"
        ) from None
    return URL(_absolute(Path(text)).as_uri())


def _absolute(path: Path) -> Path:
    """``path`` made absolute without resolving '..' or symlinks in it."""
    return path if path.is_absolute() else Path.cwd().resolve() / path


def _no_scheme_message(text: str, allowed: tuple[str, ...]) -> str:
    names = allowed or CLUSTER_SCHEMES
    example = next((name for name in names if name != "file"), names[0])
    return (
        f"URI Scheme not specified. Please specify one of {', '.join(names)}; "
        f"write it as e.g. '{example}:{text}'"
    )


def _fragment_message(scheme: str) -> str:
    return (
        f"Fragment part is not allowed in {scheme} URI. Use '%23' to quote '#' in path."
    )


def _query_message(scheme: str) -> str:
    return f"Query part is not allowed in {scheme} URI. Use '%3F' to quote '?' in path."
