"""Shared by the benchmarks: a fresh database, the real server in a subprocess, percentiles,
and writing a section of BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


@contextmanager
def server(database_url: str, workers: int = 1, extra_env: dict[str, str] | None = None):
    """The real ``portal serve`` on a free port; yields its base URL. ``extra_env`` adds to
    the environment (``PYTHONPATH`` of another checkout serves that code)."""
    port = free_port()
    env = {
        **os.environ,
        **(extra_env or {}),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_DATA_DIR": tempfile.mkdtemp(prefix="portal-bench-"),
        "PORTAL_SECRET_KEY": "bench-secret-key-not-for-production",
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
    }
    log = tempfile.NamedTemporaryFile(
        "w", prefix="portal-bench-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "serve", "--port", str(port),
         "--workers", str(workers)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"server did not start; see {log.name}")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def write_section(title: str, body: str) -> None:
    """Replace (or add) the ``## title`` section of BENCHMARKS.md."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else (
        "# Benchmarks\n\nFigures measured by the scripts in `bench/` on the development "
        "machine. Re-run a script to refresh its section.\n"
    )
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + section)
    BENCHMARKS.write_text(text.rstrip() + "\n")


async def database_backends(url: str) -> list[int]:
    """PostgreSQL's processes serving the bench database (a server's pool), for their CPU."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")
    finally:
        await connection.close()
    return [row["pid"] for row in rows]
