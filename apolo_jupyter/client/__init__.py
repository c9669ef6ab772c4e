"""The embedded async jobs client; public names mirror ``apolo_sdk``."""

from ._client import Client, get
from ._config import Cluster, Config
from ._disks import Disk, Disks
from ._errors import (
    AuthenticationError,
    AuthError,
    AuthorizationError,
    BadGateway,
    ClientError,
    ConfigError,
    IllegalArgumentError,
    NDJSONError,
    PlatformUnreachable,
    ResourceNotFound,
    ServerNotAvailable,
    StdStreamError,
)
from ._exec import StdStream
from ._image_parser import TagOption
from ._jobs import Jobs
from ._models import (
    AMDGPUPreset,
    Container,
    DiskVolume,
    HTTPPort,
    IntelGPUPreset,
    JobDescription,
    JobPriority,
    JobRestartPolicy,
    JobStatus,
    JobStatusHistory,
    JobStatusItem,
    NvidiaGPUPreset,
    Preset,
    RemoteImage,
    Resources,
    SecretFile,
    TPUPreset,
    Volume,
)
from ._parser import EnvParseResult, Parser, VolumeParseResult
from ._secrets import Secret, Secrets
from ._storage import Storage
from ._storage_models import DiskUsageInfo, FileStatus, FileStatusType
from ._stream_models import JobTelemetry

__all__ = [
    "AMDGPUPreset",
    "AuthError",
    "AuthenticationError",
    "AuthorizationError",
    "BadGateway",
    "Client",
    "ClientError",
    "Cluster",
    "Config",
    "ConfigError",
    "Container",
    "Disk",
    "DiskUsageInfo",
    "DiskVolume",
    "Disks",
    "EnvParseResult",
    "FileStatus",
    "FileStatusType",
    "HTTPPort",
    "IllegalArgumentError",
    "IntelGPUPreset",
    "JobDescription",
    "JobPriority",
    "JobRestartPolicy",
    "JobStatus",
    "JobStatusHistory",
    "JobStatusItem",
    "JobTelemetry",
    "Jobs",
    "NDJSONError",
    "NvidiaGPUPreset",
    "Parser",
    "PlatformUnreachable",
    "Preset",
    "RemoteImage",
    "ResourceNotFound",
    "Resources",
    "Secret",
    "SecretFile",
    "Secrets",
    "ServerNotAvailable",
    "StdStream",
    "StdStreamError",
    "Storage",
    "TPUPreset",
    "TagOption",
    "Volume",
    "VolumeParseResult",
    "get",
]
