"""A database that is gone (a failover, a restart) is a 503 with Retry-After for every kind of
client, never a 500; the pool drops its dead connections and reconnects by itself (issue 16)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

import asyncpg
import pytest

from portal import db
from portal.app import create_app
from portal.tables import Account
from tests.conftest import http_client


def test_a_multi_host_url_becomes_asyncpg_host_and_port_lists():
    kwargs = db.connect_kwargs(
        "postgresql://portal:s%40cret@10.0.0.1:5432,10.0.0.2,[::1]:5434/portal"
        "?target_session_attrs=read-write")
    assert kwargs == {"host": ["10.0.0.1", "10.0.0.2", "::1"], "port": [5432, 5432, 5434],
                      "user": "portal", "password": "s@cret", "database": "portal",
                      "target_session_attrs": "read-write"}
    assert db.describe("postgresql://a:1,b:2/x") == "a:1,b:2/x"
    single = db.connect_kwargs("postgresql://postgres@127.0.0.1:5432/postgres")
    assert single == {"host": "127.0.0.1", "port": 5432, "user": "postgres",
                      "database": "postgres"}
    encoded = db.connect_kwargs("postgresql://u@%2Frun%2Fpostgresql:5433,[::1]/d?port=5432")
    assert encoded["host"] == ["/run/postgresql", "::1"] and encoded["port"] == [5433, 5432]
    socket = db.connect_kwargs("postgresql:///portal?host=/run/postgresql")
    assert socket["host"] == "/run/postgresql" and socket["port"] == 5432


async def test_the_pool_finds_the_primary_among_several_hosts(database_url):
    """asyncpg (this version) takes libpq's multi-host form with target_session_attrs: a
    host that refuses is skipped and the one that takes writes is chosen."""
    kwargs = db.connect_kwargs(database_url)
    host = quote(kwargs["host"], safe="")  # the embedded server's host is a socket directory
    url = (f"postgresql://{kwargs['user']}@127.0.0.1:1,{host}:{kwargs['port']}/"
           f"{kwargs['database']}?target_session_attrs=read-write")
    connection = await asyncpg.connect(**db.connect_kwargs(url), timeout=10)
    try:
        assert await connection.fetchval("SELECT NOT pg_is_in_recovery()")
        assert connection.get_settings().server_version  # connected, to the second host
    finally:
        await connection.close()


async def _kill_the_pools_connections(database_url: str) -> int:
    """What a dying primary does to every open connection: the server end is gone."""
    admin = await asyncpg.connect(**db.connect_kwargs(database_url))
    try:
        return await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'")
    finally:
        await admin.close()


async def test_after_the_server_drops_every_connection_the_pool_reconnects_by_itself(
        client, database_url):
    for _ in range(3):  # several connections open in the pool
        assert (await client.get("/healthz")).status_code == 200
    await Account.count()
    assert await _kill_the_pools_connections(database_url) >= 1
    statuses = []
    for _ in range(4):
        response = await client.get("/healthz")
        statuses.append(response.status_code)
    # The ping that meets a dead connection makes the pool replace all of them and tries
    # again on a new one: the instance stays in (a 503 here would take it out of haproxy).
    assert statuses == [200, 200, 200, 200]
    assert await Account.count() == 0


async def test_a_request_on_a_dead_connection_is_a_503_page_never_a_500(client, database_url):

    await client.get("/healthz")
    await _kill_the_pools_connections(database_url)
    # A session cookie makes the middleware read the database before any handler runs.
    response = await client.get("/", cookies={"portal_session": "x" * 43})
    assert response.status_code in (303, 503)
    if response.status_code == 503:
        assert response.headers["retry-after"] == "5"
    assert (await client.get("/", cookies={"portal_session": "x" * 43})).status_code == 303


@pytest.fixture
async def unreachable(settings, database_url):
    """The app with its database gone: a URL nothing answers at, and no pool."""
    broken = replace(settings, database_url="postgresql://postgres@127.0.0.1:1,127.0.0.1:2/x"
                                            "?target_session_attrs=read-write")
    await db.close_pool()
    try:
        async with http_client(create_app(broken)) as client:
            yield client
    finally:
        db.configure(database_url)
        await db.start_pool()


async def test_without_a_database_people_get_a_503_page_with_retry_after(unreachable):
    page = await unreachable.get("/", cookies={"portal_session": "x" * 43})
    assert page.status_code == 503
    assert page.headers["retry-after"] == "5"
    assert "Chwilowo nie możemy połączyć się z bazą danych" in page.text
    assert "Traceback" not in page.text
    english = await unreachable.get("/", cookies={"portal_session": "x" * 43},
                                    headers={"Accept-Language": "en"})
    assert "We cannot reach the database right now" in english.text
    fragment = await unreachable.get("/companies", cookies={"portal_session": "x" * 43},
                                     headers={"HX-Request": "true"})
    assert fragment.status_code == 503 and fragment.headers["retry-after"] == "5"
    # htmx swaps a 503 (layout.html): a notice in the live region, not a page in the target
    assert fragment.headers["hx-retarget"] == "#live"
    assert fragment.headers["hx-reswap"] == "innerHTML"
    assert fragment.text.lstrip().startswith('<p class="form-error" data-error-notice>')
    assert "Chwilowo nie możemy połączyć się z bazą danych" in fragment.text
    assert "<html" not in fragment.text and "hx-retarget" not in page.headers


async def test_without_a_database_the_api_and_the_token_endpoint_answer_json_503(
        unreachable):
    api = await unreachable.get("/api/v1/account",
                                headers={"Authorization": "Bearer pak_0123456789ab_" + "A" * 43})
    assert api.status_code == 503 and api.headers["retry-after"] == "5"
    assert api.json()["error"]["code"] == "unavailable"
    token = await unreachable.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": "x", "client_id": "c",
        "client_secret": "s", "redirect_uri": "https://app.example.com/cb",
        "code_verifier": "v" * 43})
    assert token.status_code == 503 and token.headers["retry-after"] == "5"
    assert token.json()["error"] == "temporarily_unavailable"
    health = await unreachable.get("/healthz")
    assert health.status_code == 503 and health.json()["database"] == "down"
