"""``client.jobs``: start, run, list, status, kill and watch jobs."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from multidict import MultiDict
from yarl import URL

from . import _stream_wire, _wire
from ._config import Config
from ._core import Core
from ._errors import ClientError, NDJSONError
from ._exec import StdStream, open_stream
from ._image_save import QUIET, AbstractDockerImageProgress, follow_save
from ._job_watch import watch_polled, watch_pushed
from ._models import (
    Container,
    DiskVolume,
    HTTPPort,
    JobDescription,
    JobPriority,
    JobRestartPolicy,
    JobStatus,
    RemoteImage,
    SecretFile,
    Volume,
)
from ._parser import Parser
from ._port_forward import Forward, forward
from ._stream_models import JobTelemetry
from ._telemetry import top
from ._url_utils import (
    normalize_disk_uri,
    normalize_secret_uri,
    normalize_storage_path_uri,
)
from ._utils import AsyncIteratorAndContextManager, asyncgeneratorcontextmanager

# A save streams nothing while the commit runs, which can take minutes.
SAVE_TIMEOUT = aiohttp.ClientTimeout(
    total=None, connect=None, sock_read=None, sock_connect=60
)


class Jobs:
    def __init__(self, core: Core, config: Config, parser: Parser) -> None:
        self._core = core
        self._config = config
        self._parse = parser

    @property
    def _api(self) -> URL:
        return self._config.api_url

    def _mounts(
        self,
        volumes: Sequence[Volume],
        secret_env: Mapping[str, URL] | None,
        secret_files: Sequence[SecretFile],
        disk_volumes: Sequence[DiskVolume],
    ) -> dict[str, Any]:
        """What a container mounts, each URI completed with the current cluster,
        org and project (``secret:key`` -> ``secret://c/o/p/key``) as the SDK
        sends it: the platform takes full URIs only."""
        config = self._config
        return {
            "volumes": [
                _wire.volume_to_api(
                    v, normalize_storage_path_uri(v.storage_uri, config)
                )
                for v in volumes
            ],
            "secret_env": {
                k: normalize_secret_uri(v, config)
                for k, v in (secret_env or {}).items()
            },
            "secret_files": [
                replace(f, secret_uri=normalize_secret_uri(f.secret_uri, config))
                for f in secret_files
            ],
            "disk_volumes": [
                replace(d, disk_uri=normalize_disk_uri(d.disk_uri, config))
                for d in disk_volumes
            ],
        }

    async def _post_job(self, url: URL, payload: dict[str, Any]) -> JobDescription:
        async with self._core.request("POST", url, json=payload) as resp:
            return _wire.job_description_from_api(await resp.json(), self._parse)

    async def run(
        self,
        container: Container,
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
        description: str | None = None,
        scheduler_enabled: bool = False,
        pass_config: bool = False,
        wait_for_jobs_quota: bool = False,
        schedule_timeout: float | None = None,
        restart_policy: JobRestartPolicy = JobRestartPolicy.NEVER,
        life_span: float | None = None,
        org_name: str | None = None,
        priority: JobPriority | None = None,
        project_name: str | None = None,
        preemptible_node: bool = False,
    ) -> JobDescription:
        """Run a container with explicit resources (``POST /jobs``)."""
        payload = _wire.job_to_api(
            cluster_name=self._config.cluster_name,
            project_name=project_name or self._config.project_name_or_raise,
            org_name=org_name or self._config.org_name,
            name=name,
            tags=tags,
            description=description,
            pass_config=pass_config,
            wait_for_jobs_quota=wait_for_jobs_quota,
            schedule_timeout=schedule_timeout,
            restart_policy=restart_policy,
            life_span=life_span,
            priority=priority,
        )
        payload["container"] = _wire.container_to_api(
            image=container.image,
            entrypoint=container.entrypoint,
            command=container.command,
            working_dir=container.working_dir,
            http=container.http,
            env=container.env,
            tty=container.tty,
            **self._mounts(
                container.volumes,
                container.secret_env,
                container.secret_files,
                container.disk_volumes,
            ),
        )
        payload["container"]["resources"] = _wire.resources_to_api(container.resources)
        payload["scheduler_enabled"] = scheduler_enabled
        if preemptible_node:
            # Older SDKs' run(..., preemptible_node=True); the platform reads it here.
            payload["preemptible_node"] = True
        return await self._post_job(self._api / "jobs", payload)

    async def start(
        self,
        *,
        image: RemoteImage,
        preset_name: str,
        cluster_name: str | None = None,
        org_name: str | None = None,
        entrypoint: str | None = None,
        command: str | None = None,
        working_dir: str | None = None,
        http: HTTPPort | None = None,
        env: Mapping[str, str] | None = None,
        volumes: Sequence[Volume] = (),
        secret_env: Mapping[str, URL] | None = None,
        secret_files: Sequence[SecretFile] = (),
        disk_volumes: Sequence[DiskVolume] = (),
        tty: bool = False,
        shm: bool = False,
        name: str | None = None,
        tags: Sequence[str] = (),
        description: str | None = None,
        pass_config: bool = False,
        wait_for_jobs_quota: bool = False,
        schedule_timeout: float | None = None,
        restart_policy: JobRestartPolicy = JobRestartPolicy.NEVER,
        life_span: float | None = None,
        privileged: bool = False,
        priority: JobPriority | None = None,
        energy_schedule_name: str | None = None,
        project_name: str | None = None,
    ) -> JobDescription:
        """Start a job from a resource preset (``POST /jobs?from_preset``)."""
        if not isinstance(image, RemoteImage):
            raise TypeError(
                "image must be a RemoteImage: "
                'image=client.parse.remote_image("ubuntu:latest")'
            )
        payload = _wire.job_to_api(
            cluster_name=cluster_name or self._config.cluster_name,
            project_name=project_name or self._config.project_name_or_raise,
            org_name=org_name or self._config.org_name,
            name=name,
            preset_name=preset_name,
            tags=tags,
            description=description,
            pass_config=pass_config,
            wait_for_jobs_quota=wait_for_jobs_quota,
            schedule_timeout=schedule_timeout,
            restart_policy=restart_policy,
            life_span=life_span,
            privileged=privileged,
            priority=priority,
            energy_schedule_name=energy_schedule_name,
        )
        payload.update(
            _wire.container_to_api(
                image=image,
                entrypoint=entrypoint,
                command=command,
                working_dir=working_dir,
                http=http,
                env=env,
                tty=tty,
                shm=shm,
                **self._mounts(volumes, secret_env, secret_files, disk_volumes),
            )
        )
        return await self._post_job(
            (self._api / "jobs").with_query("from_preset"), payload
        )

    def list(
        self,
        *,
        statuses: Iterable[JobStatus] = (),
        name: str = "",
        tags: Iterable[str] = (),
        owners: Iterable[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        reverse: bool = False,
        limit: int | None = None,
        cluster_name: str | None = None,
        org_names: Iterable[str | None] = (),
        project_names: Iterable[str] = (),
        _materialized: bool | None = None,
        _being_dropped: bool | None = False,
        _logs_removed: bool | None = False,
    ) -> AsyncIteratorAndContextManager[JobDescription]:
        """Stream jobs (ndjson, one at a time: memory stays flat for long lists).

        The ``_``-flags filter on the platform's bookkeeping (``None``: either),
        as in ``apolo_sdk``; by default jobs being dropped or without logs are
        left out."""
        params: MultiDict[str] = MultiDict()
        for status in statuses:
            params.add("status", JobStatus(status).value)
        if name:
            params.add("name", name)
        for owner in owners:
            params.add("owner", owner)
        for tag in tags:
            params.add("tag", tag)
        for key, when in (("since", since), ("until", until)):
            if when is not None:
                if when.tzinfo is None:
                    when = when.astimezone(UTC)
                params.add(key, when.isoformat())
        params["cluster_name"] = cluster_name or self._config.cluster_name
        if reverse:
            params.add("reverse", "1")
        if limit is not None:
            params.add("limit", str(limit))
        for key, flag in (
            ("materialized", _materialized),
            ("being_dropped", _being_dropped),
            ("logs_removed", _logs_removed),
        ):
            if flag is not None:
                params.add(key, str(flag))
        for org in org_names or [self._config.org_name]:
            if org is not None:
                params.add("org_name", org)
        for project in project_names:
            params.add("project_name", project)
        return self._list(params)

    @asyncgeneratorcontextmanager
    async def _list(
        self, params: MultiDict[str]
    ) -> AsyncGenerator[JobDescription, None]:
        headers = {"Accept": "application/x-ndjson"}
        url = self._api / "jobs"
        async with self._core.request(
            "GET", url, params=params, headers=headers
        ) as resp:
            if resp.headers.get("Content-Type", "").startswith("application/x-ndjson"):
                async for line in resp.content:
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if "error" in item:
                        raise NDJSONError(item["error"])
                    yield _wire.job_description_from_api(item, self._parse)
            else:
                for item in (await resp.json())["jobs"]:
                    yield _wire.job_description_from_api(item, self._parse)

    async def status(self, id: str) -> JobDescription:
        async with self._core.request("GET", self._api / "jobs" / id) as resp:
            return _wire.job_description_from_api(await resp.json(), self._parse)

    async def kill(self, id: str) -> None:
        async with self._core.request("DELETE", self._api / "jobs" / id):
            return None

    async def bump_life_span(self, id: str, additional_life_span: float) -> None:
        url = self._api / "jobs" / id / "max_run_time_minutes"
        payload = _wire.bump_life_span_to_api(additional_life_span)
        async with self._core.request("PUT", url, json=payload):
            return None

    def _monitoring_url(self, cluster_name: str | None) -> URL:
        cluster = self._config.get_cluster(cluster_name or self._config.cluster_name)
        return cluster.monitoring_url

    def monitor(
        self,
        id: str,
        *,
        cluster_name: str | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
        separator: str | None = None,
        debug: bool = False,
    ) -> AsyncIteratorAndContextManager[bytes]:
        """Stream the job's output (stdout and stderr) from its start, or ``since``.

        Follows a pending or running job live and ends when the job has finished
        and everything was sent.
        """
        url = self._monitoring_url(cluster_name) / id / "log_ws"
        query: dict[str, str] = {}
        if since is not None:
            if since.tzinfo is None:
                since = since.astimezone(UTC)
            query["since"] = since.isoformat()
        if timestamps:
            query["timestamps"] = "true"
        if separator is not None:
            query["separator"] = separator
        if debug:
            query["debug"] = "true"
        return self._monitor(url.with_query(query) if query else url)

    @asyncgeneratorcontextmanager
    async def _monitor(self, url: URL) -> AsyncGenerator[bytes, None]:
        async with self._core.ws_connect(url) as ws:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    if msg.data:
                        yield msg.data
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise ClientError(
                        f"log stream of {url.parent.name} broke: {ws.exception()}"
                    )
                else:
                    raise ClientError(
                        f"unexpected log frame {msg.type.name} from {url}"
                    )

    def port_forward(
        self,
        id: str,
        local_port: int,
        job_port: int,
        *,
        no_key_check: bool = False,
        cluster_name: str | None = None,
    ) -> AbstractAsyncContextManager[Forward]:
        """Forward 127.0.0.1:``local_port`` to the job's ``job_port`` while in the block.

        Every accepted TCP connection gets its own WebSocket to the platform.
        ``local_port=0`` picks a free port: read it from the yielded ``Forward``.
        """
        url = self._monitoring_url(cluster_name) / id / "port_forward" / str(job_port)
        return forward(self._core, url, local_port)

    def exec(
        self,
        id: str,
        cmd: str,
        *,
        tty: bool = False,
        stdin: bool = False,
        stdout: bool = False,
        stderr: bool = False,
        cluster_name: str | None = None,
    ) -> AbstractAsyncContextManager[StdStream]:
        """Run ``cmd`` (split as a shell would, run without one) inside the
        running job; yields a :class:`StdStream` whose ``read_out`` raises
        ``StdStreamError(exit_code)`` once the command has ended."""
        url = self._monitoring_url(cluster_name) / id / "exec"
        query = _stream_wire.stream_query(
            cmd=cmd, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr
        )
        return open_stream(self._core, url.with_query(query), protocol=None)

    def attach(
        self,
        id: str,
        *,
        tty: bool = False,
        stdin: bool = False,
        stdout: bool = False,
        stderr: bool = False,
        cluster_name: str | None = None,
    ) -> AbstractAsyncContextManager[StdStream]:
        """Connect to the running job's own stdio (input only for ``tty`` jobs)."""
        url = self._monitoring_url(cluster_name) / id / "attach"
        query = _stream_wire.stream_query(
            tty=tty, stdin=stdin, stdout=stdout, stderr=stderr
        )
        return open_stream(
            self._core, url.with_query(query), protocol=_stream_wire.ATTACH_PROTOCOL
        )

    def top(
        self, id: str, *, cluster_name: str | None = None
    ) -> AsyncIteratorAndContextManager[JobTelemetry]:
        """Yield the job's resource use about once a second while it runs."""
        return top(self._core, self._monitoring_url(cluster_name) / id / "top", id)

    async def send_signal(self, id: str, *, cluster_name: str | None = None) -> None:
        """Kill the running job's processes at once (it then fails, code 137)."""
        url = self._monitoring_url(cluster_name) / id / "kill"
        async with self._core.request("POST", url):
            return None

    async def get_capacity(
        self, *, cluster_name: str | None = None
    ) -> Mapping[str, int]:
        """Per preset name, how many such jobs would start now."""
        url = self._monitoring_url(cluster_name) / "capacity"
        async with self._core.request("GET", url) as resp:
            data: Mapping[str, int] = await resp.json()
            return data

    async def save(
        self,
        id: str,
        image: RemoteImage,
        *,
        progress: AbstractDockerImageProgress | None = None,
        cluster_name: str | None = None,
    ) -> None:
        """Commit the running job's container and push it as ``image``, which
        must be in the platform's registry (``image:name:tag``); the steps go
        to ``progress``, a failure raises ``DockerError``."""
        if not image._is_in_apolo_registry:
            raise ValueError(f"Image `{image}` must be in the platform registry")
        url = self._monitoring_url(cluster_name) / id / "save"
        payload = {"container": {"image": image.as_docker_url()}}
        async with self._core.request(
            "POST", url, json=payload, timeout=SAVE_TIMEOUT
        ) as resp:
            await follow_save(
                id,
                image,
                aiter(resp.content),
                progress or QUIET,
                self._parse.remote_image,
            )

    def watch(self, id: str) -> AsyncIteratorAndContextManager[JobDescription]:
        """Yield the job now and again on every status change, until it finishes.

        Pushed over a WebSocket where the platform advertises one (the local
        platform does); adaptive polling otherwise (the real platform).
        """
        if self._config.status_ws_url is not None:
            return watch_pushed(self._core, self._parse, id, self._config.status_ws_url)
        return watch_polled(self.status, id)
