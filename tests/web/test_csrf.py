"""CSRF: the cookie-tossing attack from a sibling origin (another port of the same host, or a
sibling subdomain) against "add a person as owner", and what stops it: a token bound to the
session, the browser's Fetch Metadata, the __Host- cookie under https and re-authentication
for the owner and admin roles."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from portal.app import create_app
from portal.tables import Invitation, Membership
from portal.testing import factories
from portal.web import csrf
from tests.conftest import Client, http_client


async def owner_signed_in(client: Client) -> dict:
    owner = await factories.identity("ofiara@example.com")
    account = await factories.account(owner, name="Konto Ofiary")
    await client.sign_in("ofiara@example.com", factories.PASSWORD)
    return account


@pytest.fixture
async def attacker(app):
    """Another browser: the attacker's own, with the attacker's own valid token."""
    async with http_client(app) as raw:
        yield Client(raw)


def add_owner_form(token: str) -> dict[str, str]:
    return {"email": "napastnik@example.com", "role": "owner", "_csrf_token": token}


def toss(client: Client, token: str, *, replace_own: bool) -> None:
    """What the attacker's sibling page does with ``Set-Cookie: csrftoken=…; Path=/``: the
    browser then sends the planted cookie, alone or next to the real one."""
    if replace_own:
        client.cookies.delete("csrftoken")
    client.cookies.set("csrftoken", token, domain="testserver.local",
                       path="/" if replace_own else "/users")


async def assert_nothing_added() -> None:
    assert await Invitation.count() == 0
    assert await Membership.count() == 1


async def test_a_tossed_cookie_with_the_attackers_own_token_is_refused(client, attacker):
    await owner_signed_in(client)
    # The attacker's page on another port (or a sibling subdomain) plants its own valid
    # token as the victim's csrftoken cookie and auto-submits the form with that token.
    anonymous_token = await attacker.csrf()
    await factories.identity("napastnik@example.com")
    await attacker.sign_in("napastnik@example.com", factories.PASSWORD)
    signed_in_token = await attacker.csrf()
    for token, replace_own in [(anonymous_token, True), (signed_in_token, True),
                               (anonymous_token, False), (signed_in_token, False)]:
        toss(client, token, replace_own=replace_own)
        response = await client.post("/users/new", data=add_owner_form(token))
        assert response.status_code == 403, response.text
        response = await client.post("/users/new", data=add_owner_form(token),
                                     headers={"x-csrftoken": token, "HX-Request": "true"})
        assert response.status_code == 403
    await assert_nothing_added()


async def test_a_planted_cookie_does_not_lock_the_owner_out(client, attacker):
    await owner_signed_in(client)
    own = await client.csrf()
    planted = await attacker.csrf()
    toss(client, planted, replace_own=False)  # sent first: its path is the more specific
    assert (await client.post("/users/new", data=add_owner_form(planted))).status_code == 403
    added = await client.post("/users/new", data=add_owner_form(own))
    assert added.status_code == 303
    assert await Invitation.count() == 1


async def test_the_token_changes_with_the_session(client):
    anonymous = await client.csrf()
    await owner_signed_in(client)
    signed_in = await client.csrf()
    assert signed_in != anonymous  # the sign-in response set the new session's token
    session = client.cookies["portal_session"]
    secret = "test-secret-key-not-for-production"
    assert csrf.valid(secret, signed_in, session)
    assert not csrf.valid(secret, anonymous, session)
    await client.post("/logout", headers={"x-csrftoken": signed_in})
    assert not csrf.valid(secret, await client.csrf(), session)
    # A page rendered after sign-in carries the cookie's token, in the form and for htmx.
    await client.sign_in("ofiara@example.com", factories.PASSWORD)
    page = await client.get("/users/new")
    token = client.cookies["csrftoken"]
    assert f'value="{token}"' in page.text and f'"x-csrftoken": "{token}"' in page.text


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-site"},   # another port of the host, or a sibling subdomain
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "none"},
    {"Origin": "http://testserver.local:8081"},  # a browser without Fetch Metadata
    {"Origin": "http://evil.testserver.local"},
    {"Origin": "null"},
])
async def test_browsers_saying_the_request_comes_from_elsewhere_are_refused(client, headers):
    await owner_signed_in(client)
    token = await client.csrf()  # even with the right token
    response = await client.post("/users/new", data=add_owner_form(token), headers=headers)
    assert response.status_code == 403
    await assert_nothing_added()


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin"},
    {"Origin": "http://testserver.local"},
    {},
])
async def test_the_portals_own_pages_may_post(client, headers):
    await owner_signed_in(client)
    token = await client.csrf()
    response = await client.post("/users/new", data=add_owner_form(token), headers=headers)
    assert response.status_code == 303
    assert await Invitation.count() == 1


async def test_a_missing_or_forged_token_is_refused(client):
    await owner_signed_in(client)
    token = await client.csrf()
    forged = token[:32] + ("0" if token[32] != "0" else "1") + token[33:]
    for sent in ("", "x", forged, token.upper()):
        response = await client.post("/users/new", data=add_owner_form(sent))
        assert response.status_code == 403
    await assert_nothing_added()


async def test_under_https_the_cookie_has_the_host_prefix(settings, engine):
    app = create_app(replace(settings, base_url="https://portal.example"))
    async with http_client(app) as raw:
        response = await raw.get("https://portal.example/login")
    cookie = next(value for value in response.headers.get_list("set-cookie")
                  if "csrftoken" in value)
    assert re.match(r"__Host-csrftoken=[0-9a-f]{96}; HttpOnly; Path=/; SameSite=lax; Secure",
                    cookie), cookie
    assert "domain" not in cookie.lower()


async def test_granting_owner_needs_re_authentication_when_the_sign_in_is_old(client):
    from portal.tables import Session

    await owner_signed_in(client)
    await Session.raw("UPDATE session SET reauth_at = now() - interval '1 hour'")
    refused = await client.post_form("/users/new", {"email": "nowy@example.com",
                                                    "role": "owner"})
    assert refused.status_code == 422
    assert "Potwierdź, że to Ty" in refused.text
    await assert_nothing_added()
    wrong = await client.post_form("/users/new", {"email": "nowy@example.com", "role": "owner",
                                                  "password": "nie-to-haslo"})
    assert wrong.status_code == 422
    await assert_nothing_added()
    confirmed = await client.post_form("/users/new", {
        "email": "nowy@example.com", "role": "owner", "password": factories.PASSWORD})
    assert confirmed.status_code == 303
    assert await Invitation.count() == 1


async def test_a_new_session_id_in_a_fragment_brings_its_token(client):
    """Turning MFA on starts a new session id in an htmx fragment: the response carries the
    token of the new session (X-CSRF-Token, the cookie and the fragment's forms), so the page
    keeps working (static/js/portal.js takes the header)."""
    import pyotp

    from portal.security import totp
    from portal.settings import Settings

    await owner_signed_in(client)
    await client.post_form("/security/mfa/app/start", {}, htmx=True)
    secret_key = Settings.from_env().secret_key
    from portal.tables import Identity

    row = await Identity.select(Identity.totp_secret_encrypted).first()
    secret = totp.decrypt(row["totp_secret_encrypted"], secret_key)
    before = client.cookies["portal_session"]
    response = await client.post_form("/security/mfa/app/confirm",
                                      {"code": pyotp.TOTP(secret).now()}, htmx=True)
    assert response.status_code == 200, response.text
    assert client.cookies["portal_session"] != before
    token = response.headers["x-csrf-token"]
    assert token == client.cookies["csrftoken"]
    assert csrf.valid(secret_key, token, client.cookies["portal_session"])
    assert f'value="{token}"' in response.text
    signed_out = await client.post("/logout", data={"_csrf_token": token})
    assert signed_out.status_code == 303


async def test_pages_of_exempt_paths_still_carry_a_token(client):
    from portal import app as app_module

    assert any(path.startswith("/oauth/") for path in app_module.CSRF_EXEMPT)
    await owner_signed_in(client)
    response = await client.get("/oauth/logout")  # exempt: applications post to it
    token = re.search(r'name="_csrf_token" value="([0-9a-f]*)"', response.text)
    assert token and csrf.valid("test-secret-key-not-for-production", token.group(1),
                                client.cookies["portal_session"])
