"""Integration fixtures: a real PostgreSQL database per run, emptied before each test, and the
app behind an HTTP test client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import contextmanager

import httpx
import pytest

from portal.app import create_app
from portal.settings import Settings
from portal.testing.database import truncate_all


@pytest.fixture(autouse=True)
async def clean_database(engine: None) -> None:
    from portal.services import oidc_keys

    await truncate_all()
    oidc_keys.forget_cached()  # its keys were just deleted


@pytest.fixture(scope="session")
def app(settings: Settings, engine: None):
    return create_app(settings)


def http_client(app) -> httpx.AsyncClient:
    """An HTTP client calling the app in this event loop (the pool lives here too)."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver.local")


@pytest.fixture
async def client(app) -> AsyncIterator[Client]:
    async with http_client(app) as raw:
        yield Client(raw)


class Client:
    """The test client with the two things every form post needs: a CSRF token and form data."""

    def __init__(self, raw: httpx.AsyncClient) -> None:
        self.raw = raw

    def __getattr__(self, name):
        return getattr(self.raw, name)

    async def csrf(self) -> str:
        if "csrftoken" not in self.raw.cookies:
            await self.raw.get("/login")
        return self.raw.cookies["csrftoken"]

    async def post_form(self, url: str, data: dict[str, str], *, htmx: bool = False, **kwargs):
        headers = {"x-csrftoken": await self.csrf(), **kwargs.pop("headers", {})}
        if htmx:
            headers["HX-Request"] = "true"
        return await self.raw.post(url, data=data, headers=headers, **kwargs)

    async def sign_in(self, email: str, password: str):
        response = await self.post_form("/login", {"email": email, "password": password})
        assert response.status_code == 303, response.text
        return response


#: Headers of an htmx request (the fragment, not the page).
HTMX = {"HX-Request": "true"}
#: The UI writes ranges of rows ("Firmy 1-25 z 199") with an en dash.
DASH = "\N{EN DASH}"


@contextmanager
def counting_queries():
    """Count the SQL queries run inside the block (Piccolo numbers every query it sends)."""
    from portal import db

    counter = {"start": db.ENGINE.query_id, "count": 0}
    yield counter
    counter["count"] = db.ENGINE.query_id - counter["start"]


def field_error(html: str, field: str) -> str | None:
    """The message tied by aria-describedby to the first invalid field named ``field``."""
    for tag in re.finditer(rf'<(?:input|select|textarea)[^>]*name="{field}"[^>]*>', html):
        if 'aria-invalid="true"' not in tag.group(0):
            continue
        described = re.search(r'aria-describedby="([^"]*)"', tag.group(0))
        for element_id in (described.group(1).split() if described else []):
            match = re.search(rf'<p class="error" id="{element_id}">([^<]*)</p>', html)
            if match:
                return match.group(1)
    return None


async def last_mail(to: str) -> dict:
    """The newest outbox mail to an address (the test's mailbox), its bodies decrypted."""
    from portal.services import mail
    from portal.settings import Settings
    from portal.tables import OutboxEmail

    row = await (
        OutboxEmail.select()
        .where(OutboxEmail.to_address == to)
        .order_by(OutboxEmail.created_at, ascending=False)
        .first()
    )
    assert row is not None, f"no mail to {to}"
    return mail.readable(row, Settings.from_env().secret_key)


def link_in(mail: dict, prefix: str) -> str:
    """The path of the first link in a mail that starts with ``prefix`` (e.g. /verify/)."""
    match = re.search(rf"https?://[^/\s]+({re.escape(prefix)}[^\s]+)", mail["text_body"])
    assert match, f"no {prefix} link in: {mail['text_body']}"
    return match.group(1)
