"""``jobs.save``: a running job's container committed and pushed as an image.

The monitoring service answers ``POST {monitoring}/{id}/save`` with ndjson: a
``CommitStarted`` line (naming the image), a ``CommitFinished`` line, then
docker's push progress, one object a line. A line with an ``error`` key is a
failure at any point. Each step is reported to an ``AbstractDockerImageProgress``
with the same events and data classes as ``apolo_sdk``, and a failure raises a
``DockerError`` (``status`` and ``message``; 900 for an error the stream
reported, 400 for a line that is not what the protocol says comes next).
"""

from __future__ import annotations

import abc
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import ClientError
from ._models import LocalImage, RemoteImage

if TYPE_CHECKING:
    from builtins import Exception as _AiodockerError
else:
    try:  # present where apolo-sdk is: its callers catch aiodocker's error
        from aiodocker.exceptions import DockerError as _AiodockerError
    except ImportError:
        _AiodockerError = Exception

STREAM_ERROR = 900  # as apolo_sdk: the status of an error the stream reported


class DockerError(ClientError, _AiodockerError):
    """A save failed: the commit or the push said so, or the stream broke the
    protocol. ``status`` and ``message`` as aiodocker's error of that name, and
    where aiodocker is installed it is one of those too, so code written for
    apolo_sdk (``except aiodocker.exceptions.DockerError``) catches it."""

    def __init__(self, status: int, message: str) -> None:
        Exception.__init__(self, message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"[{self.status}] {self.message}"


@dataclass(frozen=True)
class ImageProgressPull:
    src: RemoteImage
    dst: LocalImage


@dataclass(frozen=True)
class ImageProgressPush:
    src: LocalImage
    dst: RemoteImage


@dataclass(frozen=True)
class ImageProgressSave:
    job: str
    dst: RemoteImage


@dataclass(frozen=True)
class ImageProgressStep:
    message: str
    layer_id: str
    status: str
    current: float | None
    total: float | None


@dataclass(frozen=True)
class ImageCommitStarted:
    job_id: str
    target_image: RemoteImage


@dataclass(frozen=True)
class ImageCommitFinished:
    job_id: str


class AbstractDockerImageProgress(abc.ABC):
    """What a save (or, in apolo_sdk, an image pull or push) reports."""

    @abc.abstractmethod
    def pull(self, data: ImageProgressPull) -> None: ...

    @abc.abstractmethod
    def push(self, data: ImageProgressPush) -> None: ...

    @abc.abstractmethod
    def step(self, data: ImageProgressStep) -> None: ...

    @abc.abstractmethod
    def save(self, data: ImageProgressSave) -> None: ...

    @abc.abstractmethod
    def commit_started(self, data: ImageCommitStarted) -> None: ...

    @abc.abstractmethod
    def commit_finished(self, data: ImageCommitFinished) -> None: ...


class _Quiet(AbstractDockerImageProgress):
    def pull(self, data: ImageProgressPull) -> None:
        pass

    def push(self, data: ImageProgressPush) -> None:
        pass

    def step(self, data: ImageProgressStep) -> None:
        pass

    def save(self, data: ImageProgressSave) -> None:
        pass

    def commit_started(self, data: ImageCommitStarted) -> None:
        pass

    def commit_finished(self, data: ImageCommitFinished) -> None:
        pass


QUIET = _Quiet()


def _line(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise DockerError(400, "the save stream ended before the commit finished")
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise DockerError(400, f"not a JSON line in the save stream: {raw!r}") from exc
    if not isinstance(obj, dict):
        raise DockerError(400, f"not a JSON object in the save stream: {raw!r}")
    if "error" in obj:
        detail = obj.get("errorDetail", {"message": "Unknown error"})
        message = (
            detail.get("message", "Unknown error")
            if isinstance(detail, dict)
            else detail
        )
        raise DockerError(STREAM_ERROR, str(message))
    return obj


def _commit_step(raw: bytes, expected: str) -> dict[str, Any]:
    obj = _line(raw)
    if "status" not in obj:
        raise DockerError(400, 'Missing required field: "status"')
    if obj["status"] != expected:
        raise DockerError(
            400, f"Invalid commit status: '{obj['status']}', expecting: '{expected}'"
        )
    return obj


def _push_step(obj: dict[str, Any], tag: str | None) -> ImageProgressStep | None:
    """A layer's progress line; None for the others (the tag's own summary)."""
    layer = obj.get("id")
    if layer is None or layer == tag:
        return None
    status = obj.get("status", "")
    shown = obj.get("progress")
    message = f"{layer}: {status}" + (f" {shown}" if shown is not None else "")
    detail = obj.get("progressDetail")
    detail = detail if isinstance(detail, dict) else {}
    return ImageProgressStep(
        message, layer, status, detail.get("current"), detail.get("total")
    )


async def follow_save(
    job_id: str,
    image: RemoteImage,
    lines: AsyncIterator[bytes],
    progress: AbstractDockerImageProgress,
    committed_image: Callable[[str], RemoteImage],
) -> None:
    """Report the save stream ``lines`` to ``progress``; raise on its errors.
    ``committed_image`` parses the image the commit names."""
    progress.save(ImageProgressSave(job_id, image))
    started = _commit_step(await anext(lines, b""), "CommitStarted")
    details = started.get("details")
    named = details.get("image") if isinstance(details, dict) else None
    if not named:
        raise DockerError(400, "Missing required details: 'image'")
    progress.commit_started(ImageCommitStarted(job_id, committed_image(named)))
    _commit_step(await anext(lines, b""), "CommitFinished")
    progress.commit_finished(ImageCommitFinished(job_id))
    progress.push(
        ImageProgressPush(
            LocalImage(f"{image.project_name}/{image.name}", image.tag), image
        )
    )
    async for raw in lines:
        if not raw.strip():
            continue
        step = _push_step(_line(raw), image.tag)
        if step is not None:
            progress.step(step)
