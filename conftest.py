"""Shared by tests/ and e2e/: settings made before the app is imported, one database for the
run (made fresh, migrated, dropped at the end) and the engine pointed at it."""

import os
import tempfile

# The environment is set before anything from portal is imported.
os.environ.setdefault("PORTAL_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("PORTAL_DATA_DIR", tempfile.mkdtemp(prefix="portal-data-"))

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from portal import db
from portal.settings import Settings
from portal.testing.database import test_database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with test_database() as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return replace(Settings.from_env(), database_url=database_url,
                   base_url="http://testserver.local", dev=True)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[None]:
    db.configure(database_url)
    await db.start_pool(max_size=10)
    yield
    await db.close_pool()
