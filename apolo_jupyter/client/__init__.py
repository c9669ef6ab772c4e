"""The embedded async jobs client; public names mirror ``apolo_sdk``."""

from ._client import Client, get
from ._config import Cluster, Config
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
from ._file_filter import AsyncFilterFunc, FileFilter
from ._jobs import Jobs
from ._models import (
    Container,
    DiskVolume,
    HTTPPort,
    JobDescription,
    JobPriority,
    JobRestartPolicy,
    JobStatus,
    JobStatusHistory,
    JobStatusItem,
    Preset,
    RemoteImage,
    Resources,
    SecretFile,
    Volume,
)
from ._parser import Parser, VolumeParseResult
from ._storage import Storage
from ._storage_models import DiskUsageInfo, FileStatus, FileStatusType
from ._storage_progress import (
    AbstractFileProgress,
    AbstractRecursiveFileProgress,
    StorageProgressComplete,
    StorageProgressEnterDir,
    StorageProgressFail,
    StorageProgressLeaveDir,
    StorageProgressStart,
    StorageProgressStep,
)
from ._stream_models import JobTelemetry

__all__ = [
    "AbstractFileProgress",
    "AbstractRecursiveFileProgress",
    "AsyncFilterFunc",
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
    "DiskUsageInfo",
    "DiskVolume",
    "FileFilter",
    "FileStatus",
    "FileStatusType",
    "HTTPPort",
    "IllegalArgumentError",
    "JobDescription",
    "JobPriority",
    "JobRestartPolicy",
    "JobStatus",
    "JobStatusHistory",
    "JobStatusItem",
    "JobTelemetry",
    "Jobs",
    "NDJSONError",
    "Parser",
    "PlatformUnreachable",
    "Preset",
    "RemoteImage",
    "ResourceNotFound",
    "Resources",
    "SecretFile",
    "ServerNotAvailable",
    "StdStream",
    "StdStreamError",
    "Storage",
    "StorageProgressComplete",
    "StorageProgressEnterDir",
    "StorageProgressFail",
    "StorageProgressLeaveDir",
    "StorageProgressStart",
    "StorageProgressStep",
    "Volume",
    "VolumeParseResult",
    "get",
]
