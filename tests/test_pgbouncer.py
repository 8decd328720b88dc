"""The portal behind PgBouncer in transaction mode (docs/SCALING.md): with
``?statement_cache_size=0`` in PORTAL_DATABASE_URL, many client connections share two server
connections and every kind of request still works (sign-ins, pages, API writes in
transactions with row locks, advisory locks, the migration lock)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from portal import db
from portal.app import create_app
from portal.security.tokens import new_hex_id, new_token, token_hash
from portal.tables import ApiKey, Company
from portal.testing import factories
from tests.conftest import Client, http_client
from tests.services.test_mail import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(PGBOUNCER).exists(), reason="pgbouncer is not installed"),
]
SERVER_CONNECTIONS = 2


@pytest.fixture(scope="module")
def bouncer(database_url: str):
    kwargs = db.connect_kwargs(database_url)
    # Its own directory (pytest's is private to us; as root PgBouncer runs as postgres).
    work = Path(tempfile.mkdtemp(prefix="portal-pgbouncer-"))
    port = free_port()
    (work / "users.txt").write_text(f'"{kwargs["user"]}" ""\n')
    (work / "pgbouncer.ini").write_text(f"""[databases]
* = host={kwargs["host"]} port={kwargs["port"]}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {work / "users.txt"}
pool_mode = transaction
default_pool_size = {SERVER_CONNECTIONS}
max_client_conn = 200
logfile = {work / "pgbouncer.log"}
""")
    as_root = ["-u", "postgres"] if os.geteuid() == 0 else []
    if as_root:
        shutil.chown(work, "postgres")
        for path in work.iterdir():
            shutil.chown(path, "postgres")
    process = subprocess.Popen([PGBOUNCER, *as_root, str(work / "pgbouncer.ini")],
                               stdout=(work / "stdout.log").open("wb"),
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    url = (f"postgresql://{kwargs['user']}@127.0.0.1:{port}/{kwargs['database']}"
           "?statement_cache_size=0")

    async def answers() -> bool:
        try:
            connection = await asyncpg.connect(**db.connect_kwargs(url), timeout=2)
        except (OSError, asyncpg.PostgresError):
            return False
        await connection.close()
        return True

    while not asyncio.run(answers()):
        assert process.poll() is None and time.monotonic() < deadline, (
            (work / "stdout.log").read_text())
        time.sleep(0.2)
    yield url
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    shutil.rmtree(work, ignore_errors=True)


async def test_the_portal_works_behind_pgbouncer_in_transaction_mode(bouncer, settings,
                                                                     database_url):
    owner = await factories.identity("pula@example.com")
    account = await factories.account(owner)
    key_id = new_hex_id(12)
    secret = f"pak_{key_id}_{new_token(32)}"
    await ApiKey.insert(ApiKey(account=account["id"], key_id=key_id, name="pula",
                               secret_hash=token_hash(secret), created_by=owner,
                               scopes=["read", "write"]))
    await db.close_pool()
    try:
        await db.migrate(bouncer)  # the migration lock through the pooler (nothing to apply)
        db.configure(bouncer)
        await db.start_pool(max_size=10)
        app = create_app(replace(settings, database_url=bouncer))

        people = []
        for _ in range(4):  # one after another: four hashes at once may be refused (503)
            client = Client(http_client(app))
            await client.sign_in("pula@example.com", factories.PASSWORD)
            people.append(client)

        async def person(n: int, client: Client) -> list[int]:
            statuses = []
            for i in range(3):
                statuses.append((await client.get("/companies")).status_code)
                statuses.append((await client.get("/account")).status_code)
                statuses.append((await client.post_form("/companies/new", {
                    "name": f"Pula formularz {n}-{i}", "country": "PL"})).status_code)
            return statuses

        async def integration(n: int) -> list[int]:
            async with http_client(app) as raw:
                statuses = []
                for i in range(5):
                    created = await raw.post("/api/v1/companies",
                                             json={"name": f"Pula {n}-{i}"},
                                             headers={"Authorization": f"Bearer {secret}"})
                    statuses.append(created.status_code)
                    listed = await raw.get("/api/v1/companies?q=Pula",
                                           headers={"Authorization": f"Bearer {secret}"})
                    statuses.append(listed.status_code)
                return statuses

        results = await asyncio.gather(*(person(n, client) for n, client in enumerate(people)),
                                        *(integration(n) for n in range(8)))
        for client in people:
            await client.raw.aclose()
        statuses = [status for result in results for status in result]
        assert set(statuses) <= {200, 201, 303}, statuses
        assert await Company.count().where(Company.name.like("Pula %")) == 40 + 12
        # More client connections than server connections: the pooler really shared them.
        assert db.ENGINE.pool.get_size() > SERVER_CONNECTIONS
        direct = await asyncpg.connect(**db.connect_kwargs(database_url))
        try:
            servers = await direct.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        finally:
            await direct.close()
        assert servers <= SERVER_CONNECTIONS
    finally:
        await db.close_pool()
        db.configure(database_url)
        await db.start_pool()
