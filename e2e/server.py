"""The real server for e2e flows: ``portal serve`` in a subprocess on a free port.

It runs exactly as in production (uvicorn, migrations on start, security headers, CSP) against the
run's database, so the browser sees what a user would. Its output goes to a log file that a
failing start shows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Server:
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


#: The e2e server's key (the mailbox decrypts the outbox with it).
SECRET_KEY = "e2e-secret-key-not-for-production-0123456789"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(database_url: str, data_dir: Path, base_url: str) -> dict[str, str]:
    """The inherited environment without anyone's PORTAL_* settings, plus the run's own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env.update(
        PORTAL_DATABASE_URL=database_url,
        PORTAL_DATA_DIR=str(data_dir),
        PORTAL_SECRET_KEY=SECRET_KEY,
        PORTAL_BASE_URL=base_url,
        PORTAL_DEV="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http URL)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_process(command: list[str], *, env: dict[str, str] | None, log_path: Path,
                    ready_url: str, name: str, cwd: Path | None = None
                    ) -> Iterator[subprocess.Popen]:
    """Start ``command`` with its output in ``log_path``; wait until ``ready_url`` answers 200
    (failing with the log if the process exits or the wait runs out); stop it with SIGTERM
    afterwards."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=cwd)
    tail = Server(base_url="", log_path=log_path).log_tail
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(ready_url):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} before answering "
                                   f"{ready_url}; log {log_path}:\n{tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {ready_url} within "
                                   f"{START_TIMEOUT:.0f} s; log {log_path}:\n{tail()}")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def running_server(database_url: str, work_dir: Path, *extra_args: str,
                   host_name: str = "127.0.0.1",
                   settings: dict[str, str] | None = None) -> Iterator[Server]:
    """Start ``portal serve`` (plus ``extra_args``, e.g. ``--demo``); wait for /healthz; stop it
    with SIGTERM afterwards. ``host_name`` is the host of its base URL (the server listens on
    127.0.0.1 either way): passkey flows use "localhost", since browsers refuse an IP address
    as WebAuthn's relying party id. ``settings`` adds PORTAL_* variables of the test's own
    (e.g. ``PORTAL_TRUSTED_PROXIES``)."""
    port = free_port()
    base_url = f"http://{host_name}:{port}"
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = Server(base_url=base_url, log_path=work_dir / "server.log")
    command = [sys.executable, "-m", "portal.cli", "serve", "--host", "127.0.0.1",
               "--port", str(port), *extra_args]
    env = {**server_environment(database_url, data_dir, base_url), **(settings or {})}
    with running_process(command, env=env, log_path=server.log_path,
                         ready_url=f"http://127.0.0.1:{port}/healthz",
                         name="portal serve"):
        yield server
