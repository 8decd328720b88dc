from dataclasses import replace

from portal import db
from portal.app import create_app
from tests.conftest import http_client


async def test_healthz_answers_ok_when_the_database_answers(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_answers_503_when_the_database_does_not(settings, database_url):
    broken = replace(settings, database_url="postgresql://postgres@127.0.0.1:1/nothing")
    await db.close_pool()  # the suite's pool; the broken app cannot start one
    try:
        app = create_app(broken)
        async with http_client(app) as client:
            response = await client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["database"] == "down"
    finally:
        db.configure(database_url)
        await db.start_pool()
