"""Open redirects: a ``next`` that a browser would read as another host (tabs and newlines
dropped, backslashes read as slashes, dot segments) never leaves the site, with or without
htmx, and the target always arrives percent-encoded."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from portal.services import invitations
from portal.testing import factories
from portal.views.rendering import safe_next
from tests.services.test_accounts import CLIENT, scope_for

HOSTILE = [
    "/\t/evil.example/x", "/\n/evil.example", "/\r/evil.example", "/\x0b/evil.example",
    "//evil.example", "/\\evil.example", "\\/evil.example", "https://evil.example/",
    "http:/evil.example", "javascript:alert(1)", " /evil", "/x/../..//evil.example",
    "/%2e%2e//evil.example", "/a\r\nSet-Cookie: x=1", "evil.example",
]


def lands_on_the_site(target: str) -> bool:
    """What a browser does with the target: drop tabs and newlines, read "\\" as "/"."""
    browser = target.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    parts = urlsplit(browser)
    return (not parts.scheme and not parts.netloc and browser.startswith("/")
            and not browser.startswith("//"))


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_targets_become_the_default(target):
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target, expected", [
    ("/users", "/users"),
    ("/users?q=kowal&page=2", "/users?q=kowal&page=2"),
    ("/companies/ąę", "/companies/%C4%85%C4%99"),
    ("/ok#fragment", "/ok"),
])
def test_own_paths_are_kept_and_encoded(target, expected):
    assert safe_next(target) == expected


@pytest.mark.parametrize("target", HOSTILE)
@pytest.mark.parametrize("htmx", [False, True])
async def test_sign_in_never_sends_the_person_elsewhere(client, target, htmx):
    await factories.identity("osoba@example.com")
    response = await client.post_form(
        "/login", {"email": "osoba@example.com", "password": factories.PASSWORD, "next": target},
        htmx=htmx)
    assert response.status_code in (200, 303), response.text
    location = response.headers["HX-Redirect" if htmx else "location"]
    assert location == "/" or (lands_on_the_site(location) and location.isascii())


async def test_the_login_page_keeps_only_a_safe_next(client):
    page = await client.get("/login", params={"next": "/\t/evil.example/x"})
    assert "evil.example" not in page.text
    kept = await client.get("/login", params={"next": "/users?q=a"})
    assert 'value="/users?q=a"' in kept.text


@pytest.mark.parametrize("htmx", [False, True])
async def test_declining_an_invitation_never_sends_the_person_elsewhere(client, settings, htmx):
    from dataclasses import replace
    from datetime import UTC, datetime

    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner, name="Konto Szefa")
    scope = replace(await scope_for(owner, account, "owner"), reauth_at=datetime.now(UTC))
    await invitations.create(settings, scope, "gosc@example.com", "member", {}, CLIENT)
    guest = await factories.identity("gosc@example.com")
    await client.sign_in("gosc@example.com", factories.PASSWORD)
    invitation = (await invitations.pending_for(await scope_for(guest)))[0]
    response = await client.post_form(f"/accounts/invitations/{invitation['id']}/decline",
                                      {"next": "/\t/evil.example/x"}, htmx=htmx)
    location = response.headers["HX-Redirect" if htmx else "location"]
    assert location == "/"
