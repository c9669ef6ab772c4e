"""``client.parse``: volumes, images, URIs and env vars written as text.

Results and error messages follow ``apolo_sdk`` 26.9.0 (protocol reference,
section 6); each error message keeps the SDK's wording first and then says how
to write the value correctly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from yarl import URL

from ._config import Config
from ._image_parser import TagOption, parse_local_image, parse_remote_image
from ._models import DiskVolume, LocalImage, RemoteImage, SecretFile, Volume
from ._url_utils import check_scheme, normalize_uri, shorten_uri, uri_from_cli

#: A POSIX environment variable name.
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: The last part of a 4-part volume spec: read-only or read-write.
ACCESS_MODES = {"ro": True, "rw": False}

_VOLUME_FORM = "storage:<path>:<container path>[:ro|rw], e.g. storage:data:/var/data:ro"
_SECRET_FORM = "secret:<key>:<container path>, e.g. secret:key:/var/secrets/key"  # noqa: S105
_DISK_FORM = "disk:<disk>:<container path>[:ro|rw], e.g. disk:my-disk:/mnt/disk"
_REMOVED_VOLUMES = ("HOME", "ALL")


@dataclass(frozen=True)
class VolumeParseResult:
    """``Parser.volumes`` split by kind, each list in the order given."""

    volumes: Sequence[Volume]
    secret_files: Sequence[SecretFile]
    disk_volumes: Sequence[DiskVolume]


@dataclass(frozen=True)
class _MountSpec:
    """``<uri>:<container path>[:ro|rw]`` split into its parts."""

    uri: str
    container_path: str
    read_only: bool


@dataclass(frozen=True)
class EnvParseResult:
    """``Parser.envs``: plain values, and ``secret:`` ones as secret URIs."""

    env: dict[str, str]
    secret_env: dict[str, URL]


class _Unset:
    """``org_name`` not given: the current org (``None`` means no org)."""

    def __repr__(self) -> str:
        return "<the current org>"


_UNSET = _Unset()


class Parser:
    """Turns user-written text into the client's models and URIs."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def _scoped(
        self,
        cluster_name: str | None = None,
        org_name: str | _Unset | None = _UNSET,
        project_name: str | None = None,
    ) -> Config:
        """The config with another cluster, org or project for one parse."""
        if cluster_name is None and project_name is None and org_name is _UNSET:
            return self._config
        return replace(
            self._config,
            cluster_name=cluster_name or self._config.cluster_name,
            org_name=self._config.org_name
            if isinstance(org_name, _Unset)
            else org_name,
            project_name=project_name or self._config.project_name,
        )

    def volume(
        self,
        volume: str,
        cluster_name: str | None = None,
        org_name: str | _Unset | None = _UNSET,
    ) -> Volume:
        """``storage:<path>:<container path>[:ro|rw]`` as a :class:`Volume`."""
        mount = _split_mount(volume, "volume", _VOLUME_FORM, allow_mode=True)
        config = self._scoped(cluster_name, org_name)
        uri = uri_from_cli(mount.uri, config, allowed_schemes=("storage",))
        return Volume(
            storage_uri=uri,
            container_path=mount.container_path,
            read_only=mount.read_only,
        )

    def volumes(
        self, volume: Sequence[str], cluster_name: str | None = None
    ) -> VolumeParseResult:
        """Storage volumes, ``secret:`` files and ``disk:`` volumes, by prefix."""
        for removed in _REMOVED_VOLUMES:
            if removed in volume:
                raise ValueError(
                    f"--volume={removed} no longer supported; list each folder to "
                    f"mount instead, e.g. {_VOLUME_FORM}"
                )
        storage = [s for s in volume if not s.startswith(("secret:", "disk:"))]
        secrets = [s for s in volume if s.startswith("secret:")]
        disks = [s for s in volume if s.startswith("disk:")]
        return VolumeParseResult(
            volumes=[self.volume(spec, cluster_name) for spec in storage],
            secret_files=[self._secret_file(spec, cluster_name) for spec in secrets],
            disk_volumes=[self._disk_volume(spec, cluster_name) for spec in disks],
        )

    def local_image(self, image: str) -> LocalImage:
        """A local docker image (``ubuntu:22.04``), as ``apolo push`` takes it."""
        return parse_local_image(image)

    def remote_image(
        self,
        image: str,
        *,
        tag_option: TagOption = TagOption.DEFAULT,
        cluster_name: str | None = None,
    ) -> RemoteImage:
        """An external (``ubuntu:22.04``) or platform (``image:name:tag``) image."""
        return parse_remote_image(image, self._scoped(cluster_name), tag_option)

    def envs(
        self,
        env: Sequence[str],
        env_file: Sequence[str] = (),
        cluster_name: str | None = None,
    ) -> EnvParseResult:
        """``-e`` values and ``--env-file`` lines, as ``apolo run`` reads them.

        ``NAME`` alone takes the value from this process's environment; a value
        starting with ``secret:`` becomes a secret URI (``secret_env``).
        """
        lines: list[str] = []
        for path in env_file:
            lines.extend(_env_file_lines(path))
        lines.extend(env)
        values: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition("=")
            if not name or "\0" in line:
                raise ValueError(
                    f"Invalid environment variable '{line}': write it as NAME=value"
                )
            values[name] = value if sep else os.environ.get(name, "")
        secret_env: dict[str, URL] = {}
        config = self._scoped(cluster_name)
        for name, value in list(values.items()):
            if value.startswith("secret:"):
                secret_env[name] = uri_from_cli(
                    value, config, allowed_schemes=("secret",)
                )
                del values[name]
        return EnvParseResult(env=values, secret_env=secret_env)

    def env(self, specs: Sequence[str]) -> dict[str, str]:
        """``NAME=value`` strings as a dict (later ones win); strict: every spec
        needs a ``=`` and a POSIX name (ours; ``envs`` is the SDK's)."""
        result: dict[str, str] = {}
        for spec in specs:
            name, sep, value = spec.partition("=")
            if not sep:
                raise ValueError(
                    f"Invalid environment variable '{spec}': no '=' in it; "
                    f"write it as -e NAME=value (e.g. -e {name or 'NAME'}=1)"
                )
            if not ENV_NAME_RE.fullmatch(name):
                raise ValueError(
                    f"Invalid environment variable name '{name}' in '{spec}': "
                    f"use letters, digits and '_', not starting with a digit; "
                    f"write it as -e NAME=value"
                )
            result[name] = value
        return result

    def str_to_uri(
        self,
        id_or_name_or_uri: str,
        *,
        allowed_schemes: Iterable[str] = (),
        project_name: str | None = None,
        cluster_name: str | None = None,
        org_name: str | _Unset | None = _UNSET,
        short: bool = False,
    ) -> URL:
        """Parse a URI; an empty ``allowed_schemes`` allows every scheme."""
        config = self._scoped(cluster_name, org_name, project_name)
        uri = uri_from_cli(id_or_name_or_uri, config, allowed_schemes=allowed_schemes)
        return shorten_uri(uri, self._config) if short else uri

    def uri_to_str(self, uri: URL) -> str:
        return str(uri)

    def normalize_uri(
        self,
        uri: URL,
        *,
        allowed_schemes: Iterable[str] = (),
        project_name: str | None = None,
        cluster_name: str | None = None,
        org_name: str | _Unset | None = _UNSET,
        short: bool = False,
    ) -> URL:
        """Complete a host-less cluster URI; an empty ``allowed_schemes`` allows all."""
        check_scheme(uri.scheme, allowed_schemes)
        config = self._scoped(cluster_name, org_name, project_name)
        result = normalize_uri(uri, config)
        return shorten_uri(result, self._config) if short else result

    def _secret_file(self, spec: str, cluster_name: str | None = None) -> SecretFile:
        mount = _split_mount(spec, "secret file", _SECRET_FORM, allow_mode=False)
        config = self._scoped(cluster_name)
        uri = uri_from_cli(mount.uri, config, allowed_schemes=("secret",))
        return SecretFile(secret_uri=uri, container_path=mount.container_path)

    def _disk_volume(self, spec: str, cluster_name: str | None = None) -> DiskVolume:
        mount = _split_mount(spec, "disk volume", _DISK_FORM, allow_mode=True)
        config = self._scoped(cluster_name)
        uri = uri_from_cli(mount.uri, config, allowed_schemes=("disk",))
        return DiskVolume(
            disk_uri=uri,
            container_path=mount.container_path,
            read_only=mount.read_only,
        )


def _env_file_lines(path: str) -> list[str]:
    """The variable lines of an env file: blank lines and ``#`` comments skipped."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            text = file.read()
    except OSError as exc:
        raise ValueError(
            f"cannot read the env file {path}: {exc.strerror or exc}; pass an "
            "existing file of NAME=value lines to --env-file"
        ) from None
    stripped = (line.lstrip() for line in text.splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


def _split_mount(spec: str, kind: str, form: str, *, allow_mode: bool) -> _MountSpec:
    """Split on every ``:``: 3 parts, or 4 with ``ro``/``rw`` when allowed.

    The container path is not validated (the SDK does not either).
    """
    parts = spec.split(":")
    read_only = False
    if allow_mode and len(parts) == 4:
        mode = parts.pop()
        if mode not in ACCESS_MODES:
            raise ValueError(
                f"Wrong ReadWrite/ReadOnly mode spec for '{spec}': the last part "
                f"must be 'ro' (read-only) or 'rw' (read-write); write {form}"
            )
        read_only = ACCESS_MODES[mode]
    elif len(parts) != 3:
        raise ValueError(f"Invalid {kind} specification '{spec}': write it as {form}")
    container_path = parts.pop()
    return _MountSpec(":".join(parts), container_path, read_only)
