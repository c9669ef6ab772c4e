"""The local platform as a background daemon: lock, bind, serve, clean up."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from ..client._local_home import LocalPaths
from ._app import make_app
from ._auth import load_or_create
from ._bwrap import detect
from ._executor import Executor
from ._gpu import detect as detect_gpus
from ._service import JobService
from ._settings import ConfigError, Settings
from ._store import StateError, Store

log = logging.getLogger("apolo_jupyter.local")


def _hold_lock(paths: LocalPaths) -> int:
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SystemExit(f"a local platform already runs for {paths.home}") from None
    return fd


def _write_atomic(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _tag(home: Path) -> str:
    """Marks this data directory's sandboxes without naming the directory (jobs
    can read their sandbox init's environment)."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:32]


async def serve(paths: LocalPaths, port: int = 0) -> None:
    paths = LocalPaths(paths.home.absolute())
    paths.ensure()
    # Nothing of the folder the platform was started from is a job's business.
    started_in = os.getcwd()
    os.chdir("/")
    lock_fd = _hold_lock(paths)
    settings = Settings.load(paths)
    # nvidia-smi may take seconds (driver start-up): not on the event loop.
    settings = settings.with_gpus(await asyncio.to_thread(detect_gpus, settings.nvidia))
    secret, token = load_or_create(paths, settings.owner)
    store = Store(paths.db_file)
    detection = detect()
    sandbox = detection.sentence
    executor = Executor(
        detection.mode,
        sandbox_tag=_tag(paths.home),
        bwrap=detection.bwrap,
        hidden=[paths.home.resolve(), started_in],
        description=sandbox,
    )
    if orphans := executor.reap_orphans():
        log.warning("killed %d sandbox(es) left by a crash: %s", len(orphans), orphans)
    service = JobService(settings, store, executor, token)
    lost = service.recover()
    runner = web.AppRunner(
        make_app(settings, service, secret), access_log=None, shutdown_timeout=3.0
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    service.api_url = f"http://127.0.0.1:{bound}/api/v1"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _write_atomic(
        paths.daemon_file,
        {
            "pid": os.getpid(),
            "url": service.api_url,
            "port": bound,
            "sandbox": sandbox,
            "gpus": settings.gpus.sentence,
        },
    )
    log.info(
        "serving %s (sandbox: %s; GPUs: %s; %d lost job(s) marked failed)",
        service.api_url,
        sandbox,
        settings.gpus.sentence,
        lost,
    )
    try:
        await stop.wait()
    finally:
        log.info("stopping: killing %d running job(s)", service.active_count)
        await service.shutdown()
        await runner.cleanup()
        paths.daemon_file.unlink(missing_ok=True)
        store.close()
        os.close(lock_fd)


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m apolo_jupyter.local")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    paths = LocalPaths(args.home) if args.home else LocalPaths.default()
    try:
        asyncio.run(serve(paths, args.port))
    except (StateError, ConfigError) as exc:
        # What a user must act on, without a traceback: `local start` shows it.
        log.error("cannot start: %s", exc)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main(sys.argv[1:])
