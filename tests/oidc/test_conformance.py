"""OpenID Connect conformance-style checks: discovery, JWKS, id_token claims and signature,
nonce, at_hash, expiry and audience."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from joserfc import jwt
from joserfc.errors import JoseError

from portal.services import oidc_keys
from tests.oidc.conftest import code_for, decode, exchange, jwks, signed_in


async def test_discovery_names_the_issuer_endpoints_and_what_is_supported(client, settings):
    response = await client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == settings.base_url
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint",
                     "jwks_uri", "end_session_endpoint"):
        assert meta[endpoint].startswith(settings.base_url + "/oauth/")
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert {"openid", "email", "profile", "accounts"} <= set(meta["scopes_supported"])
    assert meta["backchannel_logout_supported"] is True
    assert {"client_secret_basic", "private_key_jwt"} <= set(
        meta["token_endpoint_auth_methods_supported"])
    # Issue 12, item 6: what the provider does, said exactly.
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["revocation_endpoint_auth_methods_supported"] == meta[
        "token_endpoint_auth_methods_supported"]
    assert meta["token_endpoint_auth_signing_alg_values_supported"] == [
        "RS256", "PS256", "ES256"]
    assert {"account", "accounts"} <= set(meta["claims_supported"])


async def test_jwks_publishes_public_signing_keys_only(client):
    keys = (await client.get("/oauth/jwks")).json()["keys"]
    assert sorted((key["alg"], key["kty"]) for key in keys) == [("ES256", "EC"), ("RS256", "RSA")]
    for key in keys:
        assert key["use"] == "sig" and key["kid"]
        assert key.get("crv", "P-256") == "P-256"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_the_id_token_is_signed_and_carries_the_required_claims(
        client, app_client, settings):
    identity_id, _ = await signed_in(client)
    code, verifier = await code_for(client, app_client)
    response = await exchange(client, app_client, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    token = await decode(client, body["id_token"])  # the signature verifies against JWKS
    claims = token.claims
    assert token.header["alg"] == "RS256" and token.header["kid"]
    assert claims["iss"] == settings.base_url
    assert claims["aud"] == app_client.client_id
    assert claims["sub"] == str(identity_id)
    assert claims["nonce"] == "n-456"
    now = time.time()
    assert claims["iat"] <= now + 5 and now < claims["exp"] <= now + 11 * 60
    assert claims["auth_time"] <= now + 5
    assert claims["amr"] == ["pwd"]
    assert claims["email"] == "sso@example.com" and claims["email_verified"] is True
    assert claims["name"] == "Anna Nowak"
    digest = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_claims_checks_fail_for_another_audience_or_an_expired_token(client, app_client):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    id_token = (await exchange(client, app_client, code, verifier)).json()["id_token"]
    claims = (await decode(client, id_token)).claims
    with pytest.raises(JoseError):
        jwt.JWTClaimsRegistry(aud={"essential": True, "value": "another-app"}).validate(claims)
    with pytest.raises(JoseError):
        jwt.JWTClaimsRegistry(now=claims["exp"] + 1, leeway=0).validate(claims)


async def test_a_tampered_token_does_not_verify(client, app_client):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    id_token = (await exchange(client, app_client, code, verifier)).json()["id_token"]
    head, payload, signature = id_token.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    with pytest.raises((JoseError, ValueError)):
        jwt.decode(f"{head}.{forged}.{signature}", await jwks(client))


async def test_rotated_keys_keep_old_tokens_verifiable(client, app_client, settings):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    old = (await exchange(client, app_client, code, verifier)).json()["id_token"]
    old_kid = (await decode(client, old)).header["kid"]
    new_kid = await oidc_keys.rotate(settings.secret_key)
    keys = (await client.get("/oauth/jwks")).json()["keys"]
    assert {k["kid"] for k in keys if k["alg"] == "RS256"} == {old_kid, new_kid}
    assert {k["kty"] for k in keys if k["alg"] == "ES256"} == {"EC"}  # rotated alike
    await decode(client, old)
    code, verifier = await code_for(client, app_client)
    fresh = (await exchange(client, app_client, code, verifier)).json()["id_token"]
    assert (await decode(client, fresh)).header["kid"] == new_kid


async def test_userinfo_keeps_the_key_set_but_knows_a_key_made_elsewhere(client, app_client,
                                                                         settings):
    """Issue 20: userinfo and introspection keep the verifying key set for a while instead of
    reading it per call; a token naming a key the kept set lacks (another process rotated a
    moment ago) reloads it at once."""
    from tests.conftest import counting_queries

    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    access = (await exchange(client, app_client, code, verifier)).json()["access_token"]
    bearer = {"Authorization": f"Bearer {access}"}
    assert (await client.get("/oauth/userinfo", headers=bearer)).status_code == 200
    with counting_queries() as kept:
        assert (await client.get("/oauth/userinfo", headers=bearer)).status_code == 200
    oidc_keys._verifying.clear()
    with counting_queries() as loaded:
        assert (await client.get("/oauth/userinfo", headers=bearer)).status_code == 200
    assert loaded["count"] == kept["count"] + 1  # the kept set saves reading the keys
    stale = list(oidc_keys._verifying)
    await oidc_keys.rotate(settings.secret_key)
    oidc_keys._verifying[:] = stale  # as another process's kept set would be
    code, verifier = await code_for(client, app_client)
    fresh = (await exchange(client, app_client, code, verifier)).json()["access_token"]
    info = await client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {fresh}"})
    assert info.status_code == 200
    assert (await client.get("/oauth/userinfo", headers=bearer)).status_code == 200  # old key


async def test_userinfo_answers_for_a_valid_access_token_only(client, app_client):
    identity_id, _ = await signed_in(client)
    code, verifier = await code_for(client, app_client)
    access = (await exchange(client, app_client, code, verifier)).json()["access_token"]
    info = await client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert info.status_code == 200
    assert info.json()["sub"] == str(identity_id) and info.json()["email"] == "sso@example.com"
    bad = await client.get("/oauth/userinfo", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "invalid_token" in bad.headers["www-authenticate"]
    missing = await client.get("/oauth/userinfo")
    assert missing.status_code == 401
