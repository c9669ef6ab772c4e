"""Secrets of the local platform: one 0600 file per key under the data directory.

The routes (``_secrets_api``) speak ``apolo_sdk``'s protocol (``client.secrets``
and the official ``apolo secret``). Values leave the store only through ``GET /secrets/{key}`` and
into the jobs that name them (as files or environment variables); nothing else
logs or records them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from yarl import URL

from ._requests import BadRequest
from ._settings import CLUSTER, ORG, PROJECT

_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")
MAX_VALUE = 1 << 20  # bytes


class SecretStore:
    def __init__(self, folder: Path, owner: str) -> None:
        self._folder = folder
        self._owner = owner

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key) or ".." in key:
            raise BadRequest(
                f"secret key {key!r} is invalid: use letters, digits, '_', '-' and "
                "'.', starting with a letter, digit or '_', e.g. DB_PASSWORD"
            )
        return self._folder / key

    def list_keys(self) -> list[str]:
        try:
            return sorted(p.name for p in self._folder.iterdir() if p.is_file())
        except FileNotFoundError:
            return []

    def add(self, key: str, value: bytes) -> None:
        path = self._path(key)
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, value)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def item(self, key: str) -> dict[str, Any]:
        return {
            "key": key,
            "owner": self._owner,
            "org_name": ORG,
            "project_name": PROJECT,
        }

    def key_of(self, uri: str) -> str:
        """The key a ``secret://local/local/default/KEY`` URI names; it must exist."""
        parsed = URL(uri)
        parts = [p for p in parsed.path.split("/") if p]
        if (
            parsed.scheme != "secret"
            or parsed.host != CLUSTER
            or parts[:-1] != [ORG, PROJECT]
            or len(parts) != 3
        ):
            raise BadRequest(
                f"secret {uri!r} is not on this platform: use "
                f"secret://{CLUSTER}/{ORG}/{PROJECT}/<key> (secret:<key> in the client)"
            )
        if self.get(parts[-1]) is None:
            raise BadRequest(
                f"secret {parts[-1]!r} does not exist: add it first, e.g. "
                f"apolo-jupyter secret add {parts[-1]} VALUE"
            )
        return parts[-1]
