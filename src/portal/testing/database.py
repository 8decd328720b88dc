"""A database made for one test run, on PORTAL_TEST_DATABASE_URL's server or an embedded one.

Both suites (tests/ and e2e/) call ``test_database()``; the database is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg

from portal import db


def _with_database(url: str, name: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path="/" + name))


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(**db.connect_kwargs(url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def embedded_data_dir() -> Path:
    """Where the tests' embedded PostgreSQL lives: PORTAL_TEST_DATA_DIR, else one directory per
    user in the temp dir. /tmp is shared by every user of the machine: a cluster made there by
    one user (as root, pgserver hands it to its own ``pgserver`` user) cannot be opened by
    another, whose run then failed with "could not open file ...: Permission denied"."""
    if os.environ.get("PORTAL_TEST_DATA_DIR"):
        return Path(os.environ["PORTAL_TEST_DATA_DIR"])
    return Path(tempfile.gettempdir()) / f"portal-test-pg-{os.geteuid()}"


@contextmanager
def server_url() -> Iterator[str]:
    """The maintenance URL of the server tests use (``.../postgres``)."""
    url = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = db.start_embedded(embedded_data_dir())
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()


@contextmanager
def test_database(prefix: str = "portal_test") -> Iterator[str]:
    """Create a fresh, migrated database; yield its URL; drop it afterwards."""
    with server_url() as admin_url:
        name = f"{prefix}_{secrets.token_hex(4)}"
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
        url = _with_database(admin_url, name)
        try:
            asyncio.run(db.migrate(url))
            yield url
        finally:
            asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def truncate_all() -> None:
    """Empty every table of the domain (the migrations table stays)."""
    from portal.tables import ALL_TABLES

    names = ", ".join(f'"{table._meta.tablename}"' for table in ALL_TABLES)
    await db.ENGINE.run_ddl(f"TRUNCATE {names} CASCADE")
