"""``Client`` and ``get()``: the entry points, as in ``apolo_sdk``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import aiohttp
from yarl import URL

from ._config import Config
from ._connect import announce, resolve
from ._core import DEFAULT_TIMEOUT, Core
from ._disks import Disks
from ._jobs import Jobs
from ._models import Preset
from ._parser import Parser
from ._secrets import Secrets
from ._storage import Storage
from ._users import Users
from ._utils import AwaitableContextManager


class Client:
    """A connection to one platform; close it (or use ``async with``) when done."""

    def __init__(
        self,
        config: Config,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._config = config
        self._closed = False
        self._core = Core(config.auth_token, trace_configs, timeout)
        self.parse = Parser(config)
        self.jobs = Jobs(self._core, config, self.parse)
        self.storage = Storage(self._core, config)
        self.secrets = Secrets(self._core, config)
        self.disks = Disks(self._core, config)
        self.users = Users(self._core, config)

    @property
    def config(self) -> Config:
        return self._config

    @property
    def presets(self) -> Mapping[str, Preset]:
        return self._config.presets

    @property
    def username(self) -> str:
        return self._config.username

    @property
    def cluster_name(self) -> str:
        return self._config.cluster_name

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True
        await self._core.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Client {self._config.describe()}>"


async def _get(
    url: URL | str | None,
    token: str | None,
    path: Path | None,
    timeout: aiohttp.ClientTimeout,
    local: bool,
    quiet: bool,
    trace_configs: list[aiohttp.TraceConfig] | None,
) -> Client:
    config = await resolve(url=url, token=token, local=local, path=path)
    if not (quiet or os.environ.get("APOLO_JUPYTER_QUIET")):
        announce(config)
    return Client(config, trace_configs, timeout)


def get(
    url: URL | str | None = None,
    token: str | None = None,
    *,
    path: Path | None = None,
    timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    trace_configs: list[aiohttp.TraceConfig] | None = None,
    local: bool = False,
    quiet: bool = False,
) -> AwaitableContextManager[Client]:
    """Connect: ``async with get() as client`` (or ``client = await get()``).

    Picks, in order: explicit ``url``/``token``; ``APOLO_PASSED_CONFIG``; an
    apolo-cli login (the one in ``path``, as ``apolo_sdk.get(path=...)``, else
    ``$APOLO_CONFIG`` or ``~/.apolo``); else the embedded local platform
    (``local=True`` forces it). Says in one line (on stderr) which one it picked
    unless ``quiet``. ``timeout`` and ``trace_configs`` go to the aiohttp session,
    as in ``apolo_sdk.get``.
    """
    return AwaitableContextManager(
        _get(url, token, path, timeout, local, quiet, trace_configs)
    )
