"""Security headers on every kind of response: page, fragment, error, static, signed in or not."""

import pytest

from portal.testing import factories

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def assert_secure(response):
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    for name, value in EXPECTED.items():
        assert response.headers[name] == value


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/login", {}, 200),
        ("/login", {"HX-Request": "true"}, 200),
        ("/no-such-page", {}, 404),
        ("/static/css/portal.css", {}, 200),
        ("/healthz", {}, 200),
        ("/verify/not-a-token", {}, 410),
    ],
)
async def test_public_responses_carry_security_headers(client, path, headers, status):
    response = await client.get(path, headers=headers)
    assert response.status_code == status
    assert_secure(response)


async def test_signed_in_pages_are_never_cached(client):
    await factories.identity("cache@example.com")
    await client.sign_in("cache@example.com", factories.PASSWORD)
    for path in ("/profile", "/security"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert_secure(response)


async def test_the_session_cookie_is_httponly_and_samesite(client):
    await factories.identity("cookie@example.com")
    response = await client.sign_in("cookie@example.com", factories.PASSWORD)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie


async def test_no_inline_script_in_any_page(client):
    await factories.identity("inline@example.com")
    pages = ["/login", "/register", "/password/forgot"]
    await client.sign_in("inline@example.com", factories.PASSWORD)
    pages += ["/profile", "/security"]
    for path in pages:
        html = (await client.get(path)).text
        assert "<script>" not in html and " on" + "click=" not in html, path
        assert all('src="/static/' in tag for tag in html.split("<script")[1:]), path


async def test_get_never_changes_state(client):
    await factories.identity("get@example.com")
    await client.sign_in("get@example.com", factories.PASSWORD)
    response = await client.get("/logout")
    assert response.status_code == 405
    assert (await client.get("/profile")).status_code == 200
