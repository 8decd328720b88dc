"""Authorization and logout requests sent as forms (issue 12, items 2 and 3): a relying party
may POST them from its own site (OpenID Connect Core 3.1.2.1, RP-Initiated Logout 1.0 §2),
without our CSRF token; they take the same path as GET. The person's own answers — consent
and the logout confirmation — stay CSRF-checked."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from portal.tables import Session
from tests.oidc.conftest import (
    REDIRECT,
    code_for,
    exchange,
    pkce,
    query_of,
    register,
    signed_in,
)

#: What a browser sends with a form posted from the application's own site.
FROM_THE_APPLICATION = {"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example.com"}


def request_form(app, challenge: str, **extra) -> dict[str, str]:
    return {"client_id": app.client_id, "redirect_uri": REDIRECT, "response_type": "code",
            "scope": "openid email", "state": "st-post", "nonce": "n-post",
            "code_challenge": challenge, "code_challenge_method": "S256", **extra}


async def test_a_posted_authorization_request_gets_a_code_like_get(client, app_client):
    await signed_in(client)
    verifier, challenge = pkce()
    response = await client.raw.post("/oauth/authorize", data=request_form(
        app_client, challenge), headers=FROM_THE_APPLICATION)
    assert response.status_code == 303, response.text[:300]
    assert response.headers["location"].startswith(REDIRECT + "?")
    query = query_of(response.headers["location"])
    assert query["state"] == "st-post" and query["iss"] == "http://testserver.local"
    tokens = await exchange(client, app_client, query["code"], verifier)
    assert tokens.status_code == 200


async def test_a_posted_request_keeps_the_error_rules_of_get(client, app_client):
    await signed_in(client)
    _, challenge = pkce()
    wrong_uri = await client.raw.post("/oauth/authorize", data=request_form(
        app_client, challenge, redirect_uri="https://evil.example.com/cb"),
        headers=FROM_THE_APPLICATION)
    assert wrong_uri.status_code == 400 and "location" not in wrong_uri.headers
    no_pkce = await client.raw.post("/oauth/authorize", data=request_form(
        app_client, challenge, code_challenge_method="plain"), headers=FROM_THE_APPLICATION)
    query = query_of(no_pkce.headers["location"])
    assert query["error"] == "invalid_request" and query["state"] == "st-post"


async def test_a_posted_request_without_a_session_goes_to_sign_in_and_back_by_get(
        client, app_client):
    _, challenge = pkce()
    response = await client.raw.post("/oauth/authorize", data=request_form(
        app_client, challenge), headers=FROM_THE_APPLICATION)
    assert response.status_code == 303
    location = urlparse(response.headers["location"])
    assert location.path == "/login"
    back = parse_qs(location.query)["next"][0]
    assert back.startswith("/oauth/authorize?") and "state=st-post" in back


async def test_consent_for_a_posted_request_is_asked_on_a_get_page_and_stays_csrf_checked(
        client):
    app = await register(name="Aplikacja partnera", first_party=False)
    await signed_in(client)
    _, challenge = pkce()
    form = request_form(app, challenge)
    response = await client.raw.post("/oauth/authorize", data=form,
                                     headers=FROM_THE_APPLICATION)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/oauth/authorize?")
    page = await client.get(response.headers["location"])
    assert page.status_code == 200 and 'action="/oauth/consent"' in page.text
    forged = await client.raw.post("/oauth/consent", data={**form, "decision": "allow"},
                                   headers=FROM_THE_APPLICATION)
    assert forged.status_code == 403
    allowed = await client.post_form("/oauth/consent", {**form, "decision": "allow"})
    assert allowed.status_code == 303 and "code" in query_of(allowed.headers["location"])


async def test_rp_initiated_logout_by_post_asks_then_logs_out(client, app_client):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    id_token = (await exchange(client, app_client, code, verifier)).json()["id_token"]
    logout = {"id_token_hint": id_token,
              "post_logout_redirect_uri": "https://app.example.com/bye", "state": "s2"}
    bad = await client.raw.post("/oauth/logout", data={**logout, "id_token_hint": "x.y.z"},
                                headers=FROM_THE_APPLICATION)
    assert bad.status_code == 400
    asked = await client.raw.post("/oauth/logout", data=logout, headers=FROM_THE_APPLICATION)
    assert asked.status_code == 303 and asked.headers["location"].startswith("/oauth/logout?")
    assert await Session.count() == 1  # nothing ends before the person confirms
    page = await client.get(asked.headers["location"])
    assert page.status_code == 200 and 'action="/oauth/end-session"' in page.text
    assert "form-action 'self' https://app.example.com" in page.headers[
        "content-security-policy"]
    forged = await client.raw.post("/oauth/end-session", data=logout,
                                   headers=FROM_THE_APPLICATION)
    assert forged.status_code == 403 and await Session.count() == 1
    done = await client.post_form("/oauth/end-session", logout)
    assert done.status_code == 303
    assert done.headers["location"] == "https://app.example.com/bye?state=s2"
    assert await Session.count() == 0
