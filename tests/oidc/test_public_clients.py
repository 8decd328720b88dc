"""Browser-based applications (issue 12, item 7): a public client (no secret, PKCE) running on
its registered origin calls discovery, JWKS, token, userinfo and revocation itself, with CORS
for its origins only; discovery and the JWKS may be cached for less than a retired key stays
published."""

from __future__ import annotations

import re

from portal.services import oidc_keys
from tests.oidc.conftest import authorize_url, code_for, pkce, query_of, register, signed_in

SPA = "https://spa.example.org"
EVIL = "https://evil.example.net"


async def spa_client():
    return await register(name="Panel SPA", auth_method="none", first_party=True,
                          redirect_uris=[f"{SPA}/callback"],
                          post_logout_redirect_uris=[f"{SPA}/"])


def max_age(response) -> int:
    match = re.fullmatch(r"public, max-age=(\d+)", response.headers["cache-control"])
    assert match, response.headers["cache-control"]
    return int(match.group(1))


async def test_discovery_and_jwks_answer_the_registered_origins_and_may_be_cached(client):
    await spa_client()
    for path in ("/.well-known/openid-configuration", "/oauth/jwks"):
        mine = await client.get(path, headers={"Origin": SPA})
        assert mine.headers["access-control-allow-origin"] == SPA
        assert "Origin" in mine.headers["vary"]
        assert "access-control-allow-credentials" not in mine.headers
        assert 0 < max_age(mine) < oidc_keys.PUBLISH_AFTER_RETIRE.total_seconds()
        assert "pragma" not in mine.headers
        other = await client.get(path, headers={"Origin": EVIL})
        assert "access-control-allow-origin" not in other.headers


async def test_a_preflight_is_answered_for_registered_origins_only(client):
    await spa_client()
    asked = {"Origin": SPA, "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization"}
    answer = await client.options("/oauth/userinfo", headers=asked)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == SPA
    assert "authorization" in answer.headers["access-control-allow-headers"].lower()
    refused = await client.options("/oauth/userinfo", headers={**asked, "Origin": EVIL})
    assert "access-control-allow-origin" not in refused.headers


async def test_a_single_page_app_signs_in_refreshes_and_reads_userinfo_with_cors(client):
    app = await spa_client()
    assert app.secret is None
    await signed_in(client)
    code, verifier = await code_for(client, app)
    from_spa = {"Origin": SPA}
    tokens = await client.raw.post("/oauth/token", headers=from_spa, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
        "code_verifier": verifier, "client_id": app.client_id})
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["access-control-allow-origin"] == SPA
    refreshed = await client.raw.post("/oauth/token", headers=from_spa, data={
        "grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"],
        "client_id": app.client_id})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != tokens.json()["refresh_token"]  # rotated
    info = await client.raw.get("/oauth/userinfo", headers={
        **from_spa, "Authorization": "Bearer " + refreshed.json()["access_token"]})
    assert info.status_code == 200 and info.headers["access-control-allow-origin"] == SPA
    revoked = await client.raw.post("/oauth/revoke", headers=from_spa, data={
        "token": refreshed.json()["refresh_token"], "client_id": app.client_id})
    assert revoked.status_code == 200 and revoked.headers["access-control-allow-origin"] == SPA
    again = await client.raw.post("/oauth/token", headers=from_spa, data={
        "grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"],
        "client_id": app.client_id})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert again.headers["access-control-allow-origin"] == SPA  # the app can read why


async def test_a_public_client_needs_pkce_and_cannot_use_a_secret(client):
    app = await spa_client()
    await signed_in(client)
    _, challenge = pkce()
    no_pkce = await client.get(authorize_url(app, challenge, code_challenge=None))
    assert query_of(no_pkce.headers["location"])["error"] == "invalid_request"
    code, verifier = await code_for(client, app)
    with_secret = await client.raw.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
        "code_verifier": verifier, "client_id": app.client_id, "client_secret": "guess"})
    assert with_secret.status_code == 401 and with_secret.json()["error"] == "invalid_client"


async def test_a_confidential_client_gets_no_cors_even_from_a_registered_origin(client):
    await spa_client()
    confidential = await register(name="Serwer", redirect_uris=[f"{SPA}/server-callback"])
    await signed_in(client)
    code, verifier = await code_for(client, confidential)
    tokens = await client.raw.post("/oauth/token", auth=confidential.basic(),
                                   headers={"Origin": SPA}, data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": confidential.redirect_uri, "code_verifier": verifier})
    assert tokens.status_code == 200
    assert "access-control-allow-origin" not in tokens.headers
