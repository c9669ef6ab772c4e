"""Secrets of the local platform: one 0600 file per key under the data directory.

The routes (``_secrets_api``) speak ``apolo_sdk``'s protocol (``client.secrets``
and the official ``apolo secret``). Values leave the store only through ``GET /secrets/{key}`` and
into the jobs that name them (as files or environment variables); nothing else
logs or records them.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

from ._project import name_in_uri
from ._requests import BadRequest
from ._settings import ORG, PROJECT

MAX_KEY = 253  # characters, as the real platform (a Kubernetes secret's data key)
_KEY = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{MAX_KEY - 1}}}")
MAX_VALUE = 1 << 20  # bytes


class SecretStore:
    def __init__(self, folder: Path, owner: str) -> None:
        self._folder = folder
        self._owner = owner

    def _path(self, key: str) -> Path:
        if len(key) > MAX_KEY:
            raise BadRequest(
                f"secret key {key[:40]!r}... is {len(key)} characters; a key has at "
                f"most {MAX_KEY}: choose a shorter one"
            )
        if not _KEY.fullmatch(key) or ".." in key:
            raise BadRequest(
                f"secret key {key!r} is invalid: use letters, digits, '_', '-' and "
                "'.', starting with a letter, digit or '_', e.g. DB_PASSWORD"
            )
        return self._folder / key

    def list_keys(self) -> list[str]:
        """Every stored key (never a temporary file of ``add``)."""
        try:
            names = [p.name for p in self._folder.iterdir() if p.is_file()]
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _KEY.fullmatch(n) and ".." not in n)

    def add(self, key: str, value: bytes) -> None:
        path = self._path(key)
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A short name of its own (a key may be as long as a file name can be);
        # the leading "." is never a key, so list_keys never shows it.
        tmp = path.with_name(f".new-{secrets.token_hex(8)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(tmp, flags, 0o600)
        try:
            try:
                os.write(fd, value)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

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
        key = name_in_uri(uri, "secret", "key", "key")
        if self.get(key) is None:
            raise BadRequest(
                f"secret {key!r} does not exist: add it first, e.g. "
                f"apolo-jupyter secret add {key} VALUE"
            )
        return key
