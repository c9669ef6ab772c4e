"""The public API is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import apolo_jupyter
import apolo_jupyter.client

PUBLIC = {
    "AMDGPUPreset",
    "AbstractDeleteProgress",
    "AbstractDockerImageProgress",
    "AbstractFileProgress",
    "AbstractRecursiveFileProgress",
    "Action",
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
    "Disk",
    "DiskUsageInfo",
    "DiskVolume",
    "Disks",
    "DockerError",
    "EnvParseResult",
    "FileFilter",
    "FileStatus",
    "FileStatusType",
    "HTTPPort",
    "IllegalArgumentError",
    "ImageCommitFinished",
    "ImageCommitStarted",
    "ImageProgressPull",
    "ImageProgressPush",
    "ImageProgressSave",
    "ImageProgressStep",
    "IntelGPUPreset",
    "JobDescription",
    "JobPriority",
    "JobRestartPolicy",
    "JobStatus",
    "JobStatusHistory",
    "JobStatusItem",
    "JobTelemetry",
    "Jobs",
    "LocalImage",
    "NDJSONError",
    "NvidiaGPUPreset",
    "Parser",
    "Permission",
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
    "StorageProgressComplete",
    "StorageProgressDelete",
    "StorageProgressEnterDir",
    "StorageProgressFail",
    "StorageProgressLeaveDir",
    "StorageProgressStart",
    "StorageProgressStep",
    "TPUPreset",
    "TagOption",
    "Volume",
    "VolumeParseResult",
    "get",
}


def test_client_all_is_pinned() -> None:
    assert set(apolo_jupyter.client.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(apolo_jupyter.client, name) is getattr(apolo_jupyter, name)


def test_top_level_all() -> None:
    assert set(apolo_jupyter.__all__) == PUBLIC | {"__version__"}


def test_names_match_the_official_sdk() -> None:
    import pytest

    sdk = pytest.importorskip("apolo_sdk")
    # Ours only: DockerError (the SDK raises aiodocker's, which we do not depend on).
    shared = PUBLIC - {"PlatformUnreachable", "Cluster", "Config", "DockerError"}
    # The SDK exports its GPU and TPU preset classes with a leading underscore.
    missing = {
        name
        for name in shared
        if not hasattr(sdk, name) and not hasattr(sdk, f"_{name}")
    }
    assert missing == set()


def test_job_status_semantics() -> None:
    from apolo_jupyter import JobStatus

    assert {s for s in JobStatus if s.is_pending} == {
        JobStatus.PENDING,
        JobStatus.SUSPENDED,
    }
    assert {s for s in JobStatus if s.is_finished} == {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }
    assert JobStatus.RUNNING.is_running and not JobStatus.PENDING.is_running
    assert f"{JobStatus.RUNNING}" == "running"


def test_resources_spellings() -> None:
    import pytest

    from apolo_jupyter import Resources

    assert Resources(memory_mb=100, cpu=0.5) == Resources(memory=100 * 2**20, cpu=0.5)
    assert Resources(memory_mb=100, cpu=0.5).memory_mb == 100
    with pytest.raises(TypeError, match="not both"):
        Resources(memory=1, memory_mb=1, cpu=1)
    with pytest.raises(TypeError, match="memory_mb=100"):
        Resources(cpu=1)
    with pytest.raises(ValueError, match="cpu must be positive"):
        Resources(memory_mb=1, cpu=0)
