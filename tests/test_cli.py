"""The ``portal`` command as an operator runs it: the installed console script in a process of its
own, a real PostgreSQL (embedded or at a URL), real signals.

Each test uses its own data dir and a free port; whatever it starts is stopped in ``finally``,
and a failing test shows the command's output.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx
import psutil
import pytest

from portal import db
from portal.services.demo import DEMO_PASSWORD, PEOPLE

PORTAL = Path(sys.executable).with_name("portal")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
COMMAND_TIMEOUT = 60.0


# --- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """The inherited environment without anyone's PORTAL_* settings (the suite sets some),
    plus this test's data dir and, if given, its database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env.update(PORTAL_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    if database_url:
        env["PORTAL_DATABASE_URL"] = database_url
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = COMMAND_TIMEOUT):
    return subprocess.run(
        [str(PORTAL), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def shown(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def sql(url: str, query: str, *args: Any) -> Any:
    """One value from one query. asyncpg runs in a thread of its own: the suite's event loop
    belongs to pytest-asyncio and must not be replaced by ``asyncio.run`` here."""

    async def fetch() -> Any:
        connection = await asyncpg.connect(**db.connect_kwargs(url), timeout=10)
        try:
            return await connection.fetchval(query, *args)
        finally:
            await connection.close()

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, fetch()).result(timeout=30)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def health(base_url: str) -> int | None:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=2).status_code
    except httpx.HTTPError:
        return None


def sign_in(base_url: str, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        client.get("/login")
        token = client.cookies["csrftoken"]
        return client.post(
            "/login",
            data={"email": email, "password": password},
            headers={"x-csrftoken": token},
        )


def assert_demo_sign_in_works(base_url: str) -> None:
    email = PEOPLE[0][0]
    response = sign_in(base_url, email, DEMO_PASSWORD)
    assert response.status_code == 303, response.text
    assert "portal_session" in response.cookies


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Live postmasters whose command line names a path under ``data_dir`` (or its cluster,
    which for root lives elsewhere behind the ``pgdata`` symlink: db.embedded_pgdata)."""
    pgdata = data_dir / "pgdata"
    needle = str(pgdata.resolve() if pgdata.is_symlink() else data_dir.resolve())
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        info = process.info
        if info["status"] == psutil.STATUS_ZOMBIE:  # dead, only not reaped yet
            continue
        if info["name"] == "postgres" and needle in " ".join(info["cmdline"] or []):
            found.append(process)
    return found


def embedded_url(data_dir: Path) -> str:
    """The running embedded server's URL (its unix socket), as postmaster.pid tells it."""
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata((data_dir / "pgdata").resolve())
    assert info is not None and info.is_running(), "embedded PostgreSQL is not running"
    return info.get_uri(database="postgres")


@dataclass
class Served:
    process: subprocess.Popen
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the process to end; its exit code."""
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"portal serve still running {STOP_TIMEOUT:.0f} s after {sig.name}:\n{self.log()}"
            ) from None


@contextmanager
def served(env: dict[str, str], log_path: Path, *args: str) -> Iterator[Served]:
    """``portal serve`` on a free port, answering /healthz; killed afterwards if still alive."""
    port = free_port()
    command = [str(PORTAL), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = Served(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while health(server.base_url) != 200:
            if process.poll() is not None:
                raise AssertionError(
                    f"portal serve exited with {process.returncode}:\n{server.log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no healthy /healthz within {START_TIMEOUT:.0f} s:\n{server.log()}"
                )
            time.sleep(0.2)
        yield server
    except BaseException:
        print(f"--- portal serve output ({log_path})\n{server.log()}")
        raise
    finally:
        _end(process)


def _end(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    family = [*psutil.Process(process.pid).children(recursive=True)]
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in family:
        if child.is_running():
            child.kill()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir for one test; an embedded PostgreSQL left running in it is stopped after."""
    path = tmp_path / "data"
    yield path
    for leftover in postgres_processes(path):
        leftover.terminate()
        try:
            leftover.wait(10)
        except psutil.TimeoutExpired:
            leftover.kill()
    if (path / "pgdata").is_symlink():  # root's cluster lives outside the data dir
        shutil.rmtree((path / "pgdata").resolve().parent, ignore_errors=True)


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """A new, empty (unmigrated) database on the suite's server; dropped afterwards."""
    name = f"portal_cli_{secrets.token_hex(4)}"
    parsed = urlparse(database_url)
    admin_url = urlunparse(parsed._replace(path="/postgres"))
    sql(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(parsed._replace(path=f"/{name}"))
    finally:
        sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_serve_with_embedded_postgres_stops_it_on_sigterm_and_reuses_its_data(
    data_dir: Path, tmp_path: Path
):
    env = cli_env(data_dir)

    with served(env, tmp_path / "first.log", "--demo") as first:
        assert_demo_sign_in_works(first.base_url)
        # A short, clear start (issue 17): no pgserver or initdb chatter, no per-migration
        # lines, no XDG_RUNTIME_DIR warning; the people, the password, the data and the URL.
        start = first.log().split("Portal is running at")[0]
        assert len(start.strip().splitlines()) <= 12, start
        assert "initdb" not in start and "XDG_RUNTIME_DIR" not in start
        assert "password:" in start and "Data: an embedded PostgreSQL in" in start
        url = embedded_url(data_dir)
        postmaster = psutil.Process(
            int((data_dir / "pgdata/postmaster.pid").read_text().split()[0])
        )
        cluster = sql(url, "SELECT system_identifier FROM pg_control_system()")
        # A second command on the same data dir joins the running server and leaves it running.
        added = run_cli(env, "staff", "add", "marker@example.com")
        assert added.returncode == 0, shown(added)
        assert health(first.base_url) == 200
        assert first.stop() == 0, first.log()
    postmaster.wait(10)  # raises TimeoutExpired if it is still running
    assert postgres_processes(data_dir) == []

    with served(env, tmp_path / "second.log") as second:
        url = embedded_url(data_dir)
        # The same cluster (no second initdb), with what run one wrote.
        assert sql(url, "SELECT system_identifier FROM pg_control_system()") == cluster
        assert sql(url, "SELECT is_staff FROM identity WHERE email = 'marker@example.com'") is True
        assert_demo_sign_in_works(second.base_url)
        assert second.stop() == 0, second.log()
    wait_for(lambda: not postgres_processes(data_dir), 10, "the embedded PostgreSQL to stop")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT])
def test_a_closed_terminal_or_ctrl_c_stops_the_embedded_postgres_too(
    data_dir: Path, tmp_path: Path, sig: signal.Signals
):
    env = cli_env(data_dir)
    with served(env, tmp_path / "first.log") as running:
        postmaster = psutil.Process(
            int((data_dir / "pgdata/postmaster.pid").read_text().split()[0]))
        assert running.stop(sig) == 0, running.log()
    postmaster.wait(10)  # raises TimeoutExpired if it is still running
    assert postgres_processes(data_dir) == []


@pytest.mark.slow
def test_serve_after_a_killed_run_still_stops_the_embedded_postgres(data_dir: Path, tmp_path: Path):
    env = cli_env(data_dir)
    with served(env, tmp_path / "killed.log") as killed:
        assert killed.stop(signal.SIGKILL) == -signal.SIGKILL
    # Nothing could stop it: the embedded server outlives the killed process...
    assert postgres_processes(data_dir) != []

    with served(env, tmp_path / "next.log") as after:
        assert after.stop() == 0, after.log()
    # ...and the next run, which joined it, stops it on the way out.
    wait_for(lambda: not postgres_processes(data_dir), 10, "the embedded PostgreSQL to stop")


def worker_processes(pid: int) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(pid).children()
        if "spawn_main" in " ".join(child.cmdline())
    ]


@pytest.mark.slow
def test_serve_with_two_workers_against_a_database_url(empty_database: str, tmp_path: Path):
    env = cli_env(tmp_path / "data", database_url=empty_database)

    with served(env, tmp_path / "serve.log", "--workers", "2") as server:
        workers = wait_for(
            lambda: (found := worker_processes(server.process.pid)) and len(found) == 2 and found,
            30,
            "two worker processes",
        )
        for _ in range(4):
            assert health(server.base_url) == 200
        assert server.stop() == 0, server.log()
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == [], server.log()


def test_migrate_is_idempotent_and_staff_add_marks_or_creates_the_identity(
    empty_database: str, tmp_path: Path
):
    env = cli_env(tmp_path / "data", database_url=empty_database)

    first = run_cli(env, "migrate")
    assert first.returncode == 0, shown(first)
    applied = sql(empty_database, "SELECT count(*) FROM migration")
    assert applied > 0
    again = run_cli(env, "migrate")
    assert again.returncode == 0, shown(again)
    assert sql(empty_database, "SELECT count(*) FROM migration") == applied

    missing = run_cli(env, "staff", "add", "someone@example.com")
    assert missing.returncode == 0, shown(missing)
    assert "has no ID yet" in missing.stdout
    assert (
        sql(empty_database, "SELECT is_staff FROM identity WHERE email = $1", "someone@example.com")
        is True
    )

    sql(empty_database, "INSERT INTO identity (email) VALUES ('existing@example.com')")
    existing = run_cli(env, "staff", "add", "existing@example.com")
    assert existing.returncode == 0, shown(existing)
    assert "is now staff" in existing.stdout
    assert (
        sql(
            empty_database, "SELECT is_staff FROM identity WHERE email = $1", "existing@example.com"
        )
        is True
    )
    assert sql(empty_database, "SELECT count(*) FROM identity") == 2


@contextmanager
def unanswering_server(kind: str) -> Iterator[int]:
    """A port where nothing listens (refused), or where a socket accepts connections and then
    never says a word (silent)."""
    if kind == "refused":
        yield free_port()
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshake; nobody ever answers
        yield listener.getsockname()[1]


@pytest.mark.parametrize("kind", ["refused", pytest.param("silent", marks=pytest.mark.slow)])
def test_serve_exits_with_one_clear_line_when_the_database_does_not_answer(
    kind: str, tmp_path: Path
):
    with unanswering_server(kind) as port:
        env = cli_env(tmp_path / "data", f"postgresql://postgres@127.0.0.1:{port}/portal")
        started = time.monotonic()
        result = run_cli(env, "serve", "--port", str(free_port()), timeout=db.CONNECT_TIMEOUT + 20)
        took = time.monotonic() - started

    assert result.returncode == 1, shown(result)
    assert "Traceback" not in result.stderr, shown(result)
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        f"portal: cannot connect to the database at 127.0.0.1:{port}/portal: "
    ), shown(result)
    assert took < db.CONNECT_TIMEOUT + 10
