"""What a job runs with: its command, environment and mounts (volumes, secrets,
disks), checked at creation and opened at each start."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ._command import split
from ._disks import DiskStore
from ._executor import JobSpec, Mount, PreflightError
from ._records import JobRecord
from ._requests import BadRequest, volume_parts
from ._secrets import SecretStore
from ._settings import Settings
from ._volume_fs import VolumeError, check_volume, open_volume

# Secret copies and disk folders live in the platform's data directory, which no
# job sees; opened without following a symlink all the same.
_PLATFORM_FILE = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_PLATFORM_DIR = _PLATFORM_FILE | os.O_DIRECTORY


def log_path(settings: Settings, job_id: str) -> Path:
    return settings.paths.jobs_dir / job_id / "log"


class JobSpecs:
    """Builds each job's ``JobSpec``; ``api_url`` is set once the server is bound
    (for ``pass_config``)."""

    def __init__(self, settings: Settings, token: str) -> None:
        self._settings = settings
        self._token = token
        self.api_url = ""
        home = settings.paths.home
        self.secrets = SecretStore(home / "secrets", settings.owner)
        self.disks = DiskStore(home / "disks", settings.owner)

    def check_volumes(self, job: JobRecord) -> None:
        storage = self._settings.paths.storage_dir
        for volume in job.container.get("volumes", ()):
            parts = volume_parts(volume["src_storage_uri"])
            try:
                check_volume(storage, parts, must_exist=volume["read_only"])
            except VolumeError as exc:
                raise BadRequest(str(exc)) from None
            except OSError as exc:
                raise BadRequest(
                    f"volume source {volume['src_storage_uri']} cannot be opened: "
                    f"{exc.strerror or exc}"
                ) from None

    def check_secrets_and_disks(self, job: JobRecord) -> None:
        """Every secret and disk a job names exists (their values stay out of the
        record: it keeps the URIs only)."""
        container = job.container
        for uri in container.get("secret_env", {}).values():
            self.secrets.key_of(uri)
        for item in container.get("secret_volumes", ()):
            self.secrets.key_of(item["src_secret_uri"])
        for item in container.get("disk_volumes", ()):
            self.disks.id_of(item["src_disk_uri"])

    def _secret_mounts(
        self, job: JobRecord, env: dict[str, str], fds: contextlib.ExitStack
    ) -> list[Mount]:
        """``secret_env`` into ``env``; each secret file as a 0600 file of the job's
        own, bound read-only at its path; disks as their folders. Each mount is
        opened here (fds closed by ``fds``), in folders no job can write."""
        container = job.container
        for name, uri in container.get("secret_env", {}).items():
            value = self.secrets.get(self.secrets.key_of(uri)) or b""
            try:
                env[name] = value.decode()
            except UnicodeDecodeError:
                raise BadRequest(
                    f"secret {uri} is not UTF-8 text, so it cannot be the value of "
                    f"{name}: mount it as a file instead (-v secret:KEY:/path)"
                ) from None
        mounts = []
        folder = log_path(self._settings, job.id).parent / "secrets"
        for index, item in enumerate(container.get("secret_volumes", ())):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = self.secrets.get(self.secrets.key_of(item["src_secret_uri"]))
            path = folder / str(index)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data or b"")
            finally:
                os.close(fd)
            secret_fd = os.open(path, _PLATFORM_FILE)
            fds.callback(os.close, secret_fd)
            mounts.append(Mount(path, item["dst_path"], True, secret_fd))
        for item in container.get("disk_volumes", ()):
            disk_id = self.disks.id_of(item["src_disk_uri"])
            self.disks.touch(disk_id)
            folder = self.disks.data_dir(disk_id)
            # Jobs write inside a disk, never to the folders leading to it.
            disk_fd = os.open(folder, _PLATFORM_DIR)
            fds.callback(os.close, disk_fd)
            mounts.append(Mount(folder, item["dst_path"], item["read_only"], disk_fd))
        return mounts

    def drop_secret_files(self, job: JobRecord) -> None:
        shutil.rmtree(
            log_path(self._settings, job.id).parent / "secrets", ignore_errors=True
        )

    @contextlib.contextmanager
    def spec(self, job: JobRecord, gpus: tuple[int, ...]) -> Iterator[JobSpec]:
        """The job to run, with each volume's folder open (closed on exit)."""
        container = job.container
        argv = split(container.get("entrypoint") or "") + split(container["command"])
        env = dict(container.get("env") or {})
        env.update(self._settings.gpus.env(gpus))  # the platform's choice wins
        if job.pass_config:
            passed = base64.b64encode(
                json.dumps(
                    {
                        "token": self._token,
                        "cluster": job.cluster_name,
                        "url": self.api_url,
                        "org_name": job.org_name,
                        "project_name": job.project_name,
                    }
                ).encode()
            ).decode()
            env["APOLO_PASSED_CONFIG"] = env["NEURO_PASSED_CONFIG"] = passed
        storage = self._settings.paths.storage_dir
        with contextlib.ExitStack() as fds:
            mounts = []
            for volume in container.get("volumes", ()):
                parts = volume_parts(volume["src_storage_uri"])
                read_only = volume["read_only"]
                try:
                    fd = open_volume(storage, parts, create=not read_only)
                except VolumeError as exc:
                    raise PreflightError(str(exc)) from None
                fds.callback(os.close, fd)
                host = storage.joinpath(*parts)
                mounts.append(Mount(host, volume["dst_path"], read_only, fd))
            mounts += self._secret_mounts(job, env, fds)
            log = log_path(self._settings, job.id)
            log.parent.mkdir(parents=True, exist_ok=True)
            yield JobSpec(
                job.id,
                argv,
                env,
                container.get("working_dir"),
                mounts,
                log,
                tty=bool(container.get("tty")),
                devices=self._settings.gpus.nodes(gpus),
            )
