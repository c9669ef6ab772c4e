"""Connection resolution: which platform a new client talks to.

Order: explicit ``url``/``token``; ``APOLO_PASSED_CONFIG`` (what the platform
injects into jobs); an apolo-cli login (``$APOLO_CONFIG`` or ``~/.apolo/db``, read
only); else the embedded local platform, started on demand.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yarl import URL

from . import _wire
from ._config import Config
from ._core import Core
from ._errors import ConfigError
from ._local_home import LocalPaths, ensure_running

PASSED_CONFIG_VARS = ("APOLO_PASSED_CONFIG", "NEURO_PASSED_CONFIG")
LOCAL_SOURCE = "embedded local platform"
_announced: set[str] = set()
_announce_lock = threading.Lock()


def _in_notebook(stream: object) -> bool:
    """``stream`` is a Jupyter kernel's output stream (checked by name: the
    client imports nothing from Jupyter)."""
    return type(stream).__module__.startswith("ipykernel.")


def announce(config: Config) -> None:
    """Say which platform a new client talks to.

    In a terminal or a script: one line on stderr, beside the program's output.
    In a notebook: a plain info line on stdout (stderr shows as an error box),
    once per kernel and platform, flushed at once so that it lands where
    ``get()`` was called, never in the middle of a job's log printed later.
    """
    line = config.describe()
    if not _in_notebook(sys.stdout):
        print(line, file=sys.stderr)
        return
    with _announce_lock:
        if line in _announced:
            return
        _announced.add(line)
    print(line, file=sys.stdout, flush=True)


def username_from_token(token: str) -> str:
    """The user name inside a JWT (unverified, as apolo_sdk reads it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (IndexError, ValueError, binascii.Error):
        return "user"
    if not isinstance(claims, dict):
        return "user"
    name = claims.get("identity") or claims.get("https://platform.neuromation.io/user")
    return str(name) if name else "user"


async def fetch_config(
    api_url: URL,
    token: str,
    *,
    source: str,
    cluster_name: str | None = None,
    org_name: str | None = None,
    project_name: str | None = None,
) -> Config:
    core = Core(token)
    try:
        async with core.request("GET", api_url / "config") as resp:
            data = await resp.json()
    finally:
        await core.close()
    if data.get("authorized") is False:
        raise ConfigError(f"{api_url} did not accept the token ({source})")
    try:
        return _wire.config_from_api(
            data,
            api_url=api_url,
            token=token,
            username=username_from_token(token),
            source=source,
            cluster_name=cluster_name,
            org_name=org_name,
            project_name=project_name,
        )
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{api_url}/config is not usable ({source}): {exc}") from exc


def decode_passed_config(text: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.b64decode(text))
        for key in ("token", "cluster", "url"):
            if not isinstance(data[key], str):
                raise TypeError(key)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ConfigError(
            "Data in passed config is malformed: APOLO_PASSED_CONFIG must be base64 "
            'of JSON {"token", "cluster", "url", "org_name", "project_name"} '
            f"({exc!r})"
        ) from exc
    return dict(data)


def cli_config_dir(env: Mapping[str, str]) -> Path | None:
    """The apolo-cli config dir holding a login db, as apolo_sdk chooses it."""
    candidates = [
        Path(env.get("APOLO_CONFIG", "~/.apolo")).expanduser(),
        Path(env.get("NEUROMATION_CONFIG", "~/.neuro")).expanduser(),
    ]
    for path in candidates:
        if (path / "db").is_file():
            return path
    return None


def config_from_cli_db(path: Path) -> Config:
    """Read an apolo-cli login without touching it (immutable, read-only open)."""
    db = path / "db"
    uri = f"file:{db}?mode=ro&immutable=1"
    try:
        with sqlite3.connect(uri, uri=True) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                "SELECT token, url, cluster_name, org_name, project_name, clusters "
                "FROM main ORDER BY timestamp DESC LIMIT 1"
            ).fetchone()
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot read the apolo-cli login at {db}: {exc}") from exc
    if row is None:
        raise ConfigError(f"the apolo-cli login at {db} is empty; run: apolo login")
    clusters = {
        c["name"]: _wire.cluster_from_api(c, "presets")
        for c in json.loads(row["clusters"])
    }
    return Config(
        api_url=URL(row["url"]),
        auth_token=row["token"],
        cluster_name=row["cluster_name"],
        org_name=row["org_name"],
        project_name=row["project_name"],
        clusters=clusters,
        username=username_from_token(row["token"]),
        source=f"apolo-cli login ({path})",
    )


def _login_at(path: Path) -> Config:
    path = path.expanduser()
    if not (path / "db").is_file():
        raise ConfigError(
            f"no apolo-cli login in {path} (no db file there): log in with "
            f"`apolo --config {path} login`, or leave path= out"
        )
    return config_from_cli_db(path)


async def local_config(paths: LocalPaths | None = None) -> Config:
    paths = paths or LocalPaths.default()
    info = await asyncio.to_thread(ensure_running, paths)
    return await fetch_config(URL(info.url), info.token, source=LOCAL_SOURCE)


async def resolve(
    *,
    url: URL | str | None = None,
    token: str | None = None,
    local: bool = False,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Config:
    env = os.environ if env is None else env
    if local:
        return await local_config()
    if path is not None:
        return await asyncio.to_thread(_login_at, Path(path))
    if url is not None or token is not None:
        if url is None or token is None:
            raise ConfigError("pass both url= and token= (or neither)")
        return await fetch_config(URL(url), token, source="explicit url")
    for var in PASSED_CONFIG_VARS:
        if env.get(var):
            data = decode_passed_config(env[var])
            return await fetch_config(
                URL(data["url"]),
                data["token"],
                source=var,
                cluster_name=data["cluster"],
                org_name=data.get("org_name"),
                project_name=data.get("project_name") or None,
            )
    cli_dir = cli_config_dir(env)
    if cli_dir is not None:
        return config_from_cli_db(cli_dir)
    return await local_config()
