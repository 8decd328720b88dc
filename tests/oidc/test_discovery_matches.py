"""The discovery document says exactly what the endpoints accept (issue 12, "Done when"): each
advertised authentication method, signing algorithm, grant, response type, PKCE method,
scope and language works, things not advertised are refused, and the claims the provider
gives are exactly ``claims_supported``. A change on either side fails here."""

from __future__ import annotations

import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from portal.services.errors import InvalidInput
from portal.testing import factories
from tests.oidc.conftest import (
    REDIRECT,
    authorize_url,
    code_for,
    decode,
    exchange,
    pkce,
    query_of,
    register,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEYS = {"RS256": lambda: RSAKey.generate_key(2048, parameters={"kid": "rs"}),
        "PS256": lambda: RSAKey.generate_key(2048, parameters={"kid": "ps"}),
        "ES256": lambda: ECKey.generate_key("P-256", parameters={"kid": "es"})}


@pytest.fixture
async def meta(client) -> dict:
    return (await client.get("/.well-known/openid-configuration")).json()


async def person(client) -> None:
    identity_id = await factories.identity("sso@example.com", language="en",
                                           first_name="Anna", last_name="Nowak")
    await factories.account(identity_id)
    await client.sign_in("sso@example.com", factories.PASSWORD)


def signed_assertion(client_id: str, key, alg: str, aud: str) -> str:
    now = int(time.time())
    return jwt.encode({"alg": alg, "kid": key.kid}, {
        "iss": client_id, "sub": client_id, "aud": aud, "jti": secrets.token_hex(8),
        "iat": now, "exp": now + 60}, key, algorithms=[alg])


async def credentials_for(method: str, **register_kwargs):
    """A client registered with ``method``, and a function giving the request parts
    (``auth`` and extra form fields) that authenticate it at ``endpoint``."""
    if method != "private_key_jwt":
        app = await register(auth_method=method, **register_kwargs)

        def parts(endpoint: str) -> dict:
            if method == "client_secret_basic":
                return {"auth": app.basic(), "data": {}}
            if method == "client_secret_post":
                return {"data": {"client_id": app.client_id, "client_secret": app.secret}}
            return {"data": {"client_id": app.client_id}}

        return app, parts
    key = KEYS["RS256"]()
    app = await register(auth_method=method, jwks={"keys": [key.as_dict(private=False)]},
                         **register_kwargs)

    def parts(endpoint: str) -> dict:
        return {"data": {"client_assertion_type": ASSERTION_TYPE, "client_assertion":
                         signed_assertion(app.client_id, key, "RS256",
                                          "http://testserver.local" + endpoint)}}

    return app, parts


async def test_every_advertised_token_endpoint_auth_method_works(client, meta):
    await person(client)
    for method in meta["token_endpoint_auth_methods_supported"]:
        app, parts = await credentials_for(method, name=f"Aplikacja {method}")
        code, verifier = await code_for(client, app)
        sent = parts("/oauth/token")
        response = await client.raw.post("/oauth/token", auth=sent.get("auth"), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, **sent["data"]})
        assert response.status_code == 200, (method, response.text)


async def test_every_advertised_assertion_algorithm_works_and_no_other(client, meta):
    await person(client)
    advertised = meta["token_endpoint_auth_signing_alg_values_supported"]
    assert advertised == meta["revocation_endpoint_auth_signing_alg_values_supported"]
    assert advertised == meta["introspection_endpoint_auth_signing_alg_values_supported"]
    keys = {alg: KEYS[alg]() for alg in advertised}
    app = await register(name="e-Płace", auth_method="private_key_jwt", jwks={
        "keys": [key.as_dict(private=False) for key in keys.values()]})

    async def token_with(assertion: str):
        code, verifier = await code_for(client, app)
        return await client.raw.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion})

    for alg, key in keys.items():
        response = await token_with(signed_assertion(app.client_id, key, alg,
                                                     meta["token_endpoint"]))
        assert response.status_code == 200, (alg, response.text)
    rs384 = signed_assertion(app.client_id, keys["RS256"], "RS384", meta["token_endpoint"])
    assert (await token_with(rs384)).status_code == 401
    hs256 = signed_assertion(app.client_id, OctKey.generate_key(256, parameters={"kid": "rs"}),
                             "HS256", meta["token_endpoint"])
    assert (await token_with(hs256)).status_code == 401


async def test_every_advertised_revocation_and_introspection_method_works(client, meta):
    await person(client)
    for method in meta["revocation_endpoint_auth_methods_supported"]:
        _, parts = await credentials_for(method, name=f"Aplikacja {method}")
        sent = parts("/oauth/revoke")
        response = await client.raw.post(meta["revocation_endpoint"], auth=sent.get("auth"),
                                         data={"token": "unknown", **sent["data"]})
        assert response.status_code == 200, (method, response.text)
    for method in ("client_secret_basic", "client_secret_post", "private_key_jwt", "none"):
        _, parts = await credentials_for(method, name=f"Serwer {method}")
        sent = parts("/oauth/introspect")
        response = await client.raw.post(meta["introspection_endpoint"],
                                         auth=sent.get("auth"),
                                         data={"token": "unknown", **sent["data"]})
        advertised = method in meta["introspection_endpoint_auth_methods_supported"]
        assert response.status_code == (200 if advertised else 401), (method, response.text)


async def test_every_advertised_grant_and_response_type_works_and_no_other(client, meta):
    await person(client)
    app = await register(name="Usługa", service_scopes=["faktury:odczyt"])
    code, verifier = await code_for(client, app)
    tokens = await exchange(client, app, code, verifier)
    by_grant = {
        "authorization_code": tokens,
        "refresh_token": await client.raw.post("/oauth/token", auth=app.basic(), data={
            "grant_type": "refresh_token",
            "refresh_token": tokens.json()["refresh_token"]}),
        "client_credentials": await client.raw.post("/oauth/token", auth=app.basic(),
                                                    data={"grant_type": "client_credentials"}),
    }
    assert set(meta["grant_types_supported"]) == set(by_grant)
    for grant, response in by_grant.items():
        assert response.status_code == 200, (grant, response.text)
    for grant in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code",
                  "urn:ietf:params:oauth:grant-type:jwt-bearer"):
        refused = await client.raw.post("/oauth/token", auth=app.basic(),
                                        data={"grant_type": grant})
        assert refused.json()["error"] == "unsupported_grant_type", grant

    assert meta["response_types_supported"] == ["code"]
    assert meta["response_modes_supported"] == ["query"]
    _, challenge = pkce()
    for response_type in ("token", "id_token", "code id_token", "code token"):
        answer = await client.get(authorize_url(app, challenge, response_type=response_type))
        assert query_of(answer.headers["location"])["error"] == "unsupported_response_type"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    plain = await client.get(authorize_url(app, challenge, code_challenge_method="plain"))
    assert query_of(plain.headers["location"])["error"] == "invalid_request"
    assert meta["request_parameter_supported"] is False
    with_request = await client.get(authorize_url(app, challenge, request="e30.e30."))
    assert query_of(with_request.headers["location"])["error"] == "request_not_supported"
    assert meta["authorization_response_iss_parameter_supported"] is True
    answer = query_of((await client.get(authorize_url(app, challenge))).headers["location"])
    assert answer["iss"] == meta["issuer"]


async def test_the_advertised_scopes_work_and_the_claims_given_are_claims_supported(
        client, meta):
    await person(client)
    app = await register(name="Wszystko", allowed_scopes=meta["scopes_supported"])
    scope = " ".join(meta["scopes_supported"])
    code, verifier = await code_for(client, app, scope=scope)
    tokens = (await exchange(client, app, code, verifier)).json()
    assert tokens["scope"] == scope
    token = await decode(client, tokens["id_token"])
    assert token.header["alg"] in meta["id_token_signing_alg_values_supported"]
    assert token.claims["acr"] in meta["acr_values_supported"]
    info = (await client.raw.get(meta["userinfo_endpoint"], headers={
        "Authorization": "Bearer " + tokens["access_token"]})).json()
    given = set(token.claims) | set(info)
    assert given == set(meta["claims_supported"])
    _, challenge = pkce()
    unknown = await client.get(authorize_url(app, challenge, scope="openid phone"))
    assert query_of(unknown.headers["location"])["error"] == "invalid_scope"


async def test_every_advertised_id_token_signing_algorithm_is_used_and_no_other(client, meta):
    """A client chooses one of id_token_signing_alg_values_supported at registration; its ID,
    access and back-channel logout tokens are signed with it by a key in the JWKS."""
    await person(client)
    advertised = meta["id_token_signing_alg_values_supported"]
    assert advertised == ["RS256", "ES256"]
    for alg in advertised:
        app = await register(name=f"Podpis {alg}", id_token_signed_response_alg=alg)
        code, verifier = await code_for(client, app)
        tokens = (await exchange(client, app, code, verifier)).json()
        for name in ("id_token", "access_token"):
            token = await decode(client, tokens[name])
            assert token.header["alg"] == alg, name
        refreshed = (await client.raw.post("/oauth/token", auth=app.basic(), data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})).json()
        assert (await decode(client, refreshed["id_token"])).header["alg"] == alg
        info = await client.raw.get(meta["userinfo_endpoint"], headers={
            "Authorization": "Bearer " + refreshed["access_token"]})
        assert info.status_code == 200
    published = {k["alg"]: k["kty"] for k in (await client.get(meta["jwks_uri"])).json()["keys"]}
    assert published == {"RS256": "RSA", "ES256": "EC"}
    with pytest.raises(InvalidInput) as refused:
        await register(name="Podpis HS256", id_token_signed_response_alg="HS256")
    assert "id_token_signed_response_alg" in refused.value.errors


async def test_every_advertised_ui_locale_is_spoken(client, meta, app_client):
    _, challenge = pkce()
    for language in meta["ui_locales_supported"]:
        page = await client.get(authorize_url(app_client, challenge, ui_locales=language))
        login = await client.get(page.headers["location"],
                                 headers={"Accept-Language": "de"})
        assert f'<html lang="{language}">' in login.text


async def test_every_advertised_endpoint_answers(client, meta):
    for name, method in (("authorization_endpoint", "GET"), ("token_endpoint", "POST"),
                         ("userinfo_endpoint", "GET"), ("jwks_uri", "GET"),
                         ("end_session_endpoint", "GET"), ("revocation_endpoint", "POST"),
                         ("introspection_endpoint", "POST")):
        url = meta[name]
        assert url.startswith(meta["issuer"] + "/")
        response = await client.raw.request(method, url.removeprefix(meta["issuer"]))
        assert response.status_code not in (404, 405, 500), (name, response.status_code)
