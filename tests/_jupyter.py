"""A real Jupyter server (or JupyterLab) for the tests, on 127.0.0.1:0 with a token."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    token: str
    log: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def launch(app: str, env: dict[str, str], log: Path, *extra: str) -> Server:
    """``python -m app`` (``jupyter_server`` or ``jupyterlab``) with a fresh token and
    the ``apolo_jupyter.server`` extension; returns once its runtime file names the
    port and the port accepts connections. ``env`` must set ``JUPYTER_RUNTIME_DIR``."""
    token = secrets.token_hex(16)
    args = [
        sys.executable, "-m", app, "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0", "--ServerApp.port_retries=0", "--no-browser",
        "--allow-root", f"--IdentityProvider.token={token}", *extra,
    ]  # fmt: skip
    shipped = Path(sys.prefix, "etc/jupyter/jupyter_server_config.d/apolo_jupyter.json")
    if not shipped.exists():  # e.g. an install that skipped the shared data
        args.append('--ServerApp.jpserver_extensions={"apolo_jupyter.server": True}')
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    info = Path(env["JUPYTER_RUNTIME_DIR"], f"jpserver-{proc.pid}.json")
    deadline = time.monotonic() + 30
    port = 0
    while not port:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"{app} did not start:\n" + log.read_text())
        try:  # the file may be there before it is complete
            port = int(json.loads(info.read_text())["port"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
            continue
        # The file can name the port a moment before it accepts connections.
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                port = 0
                time.sleep(0.05)
    return Server(proc, f"http://127.0.0.1:{port}", token, log)


def start_jupyter_server(tmp: Path, *extra: str, **env_extra: str) -> Server:
    """``jupyter_server`` on ``tmp`` with runtime, config and data directories of
    its own there (and ``env_extra`` in its environment)."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        **env_extra,
    )
    return launch(
        "jupyter_server", env, tmp / "server.log", f"--ServerApp.root_dir={tmp}", *extra
    )
