"""``client.users.share``: what ``apolo run --share USER`` needs, as ``apolo_sdk``."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from yarl import URL

from ._config import Config
from ._core import Core


class Action(str, enum.Enum):
    READ = "read"
    WRITE = "write"
    MANAGE = "manage"


@dataclass(frozen=True)
class Permission:
    uri: URL
    action: Action


class Users:
    def __init__(self, core: Core, config: Config) -> None:
        self._core = core
        self._config = config

    async def share(self, user: str, permission: Permission) -> Permission:
        """Grant ``user`` (or a role) ``permission``."""
        if ":" in user:
            raise ValueError(f"Invalid name: {user!r} (a user or role has no ':')")
        payload = [{"uri": str(permission.uri), "action": permission.action.value}]
        url = self._config.api_url / "users" / user.replace("/", ":") / "permissions"
        async with self._core.request("POST", url, json=payload) as resp:
            granted = (await resp.json())[0]
        return Permission(uri=URL(granted["uri"]), action=Action(granted["action"]))
