"""The provider's rules through HTTP: redirect URIs, PKCE, single-use codes, refresh rotation
with reuse detection, client authentication, consent, MFA, accounts, logout."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pyotp
from joserfc import jwt
from joserfc.jwk import RSAKey

from portal.security import totp
from portal.services import oidc_logout
from portal.tables import AuditEvent, Identity, OAuthGrant, Session
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
    signed_in,
)


async def test_a_wrong_redirect_uri_is_refused_without_redirecting(client, app_client):
    await signed_in(client)
    _, challenge = pkce()
    app_client.redirect_uri = "https://app.example.com/callback/../evil"
    response = await client.get(authorize_url(app_client, challenge))
    assert response.status_code == 400
    assert "location" not in response.headers
    app_client.redirect_uri = REDIRECT + "?x=1"
    assert (await client.get(authorize_url(app_client, challenge))).status_code == 400


async def test_pkce_is_required_and_only_s256(client, app_client):
    await signed_in(client)
    _, challenge = pkce()
    for extra in ({"code_challenge": None}, {"code_challenge_method": "plain"},
                  {"code_challenge_method": None}):
        response = await client.get(authorize_url(app_client, challenge, **extra))
        assert response.status_code == 302
        query = query_of(response.headers["location"])
        assert query["error"] == "invalid_request" and query["state"] == "st-123"
        assert "code" not in query


async def test_a_wrong_or_missing_verifier_is_refused(client, app_client):
    await signed_in(client)
    code, _ = await code_for(client, app_client)
    response = await exchange(client, app_client, code, "x" * 50)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    code, _ = await code_for(client, app_client)
    response = await exchange(client, app_client, code, "")
    assert response.json()["error"] == "invalid_grant"


async def test_a_code_works_once_and_its_reuse_revokes_what_it_issued(client, app_client):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    first = await exchange(client, app_client, code, verifier)
    assert first.status_code == 200
    again = await exchange(client, app_client, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    refreshed = await client.raw.post("/oauth/token", auth=app_client.basic(), data={
        "grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]})
    assert refreshed.status_code == 400
    assert await AuditEvent.exists().where(AuditEvent.tag == "oauth:code:reuse")


async def test_refresh_tokens_rotate_and_a_replayed_one_revokes_the_family(client, app_client):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    tokens = (await exchange(client, app_client, code, verifier)).json()

    async def use(refresh_token):
        return await client.raw.post("/oauth/token", auth=app_client.basic(), data={
            "grant_type": "refresh_token", "refresh_token": refresh_token})

    second = await use(tokens["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != tokens["refresh_token"]
    assert "nonce" not in (await decode(client, second.json()["id_token"])).claims
    replay = await use(tokens["refresh_token"])  # the old one again: theft suspected
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    latest = await use(second.json()["refresh_token"])
    assert latest.status_code == 400  # the whole family is revoked
    assert await AuditEvent.exists().where(AuditEvent.tag == "oauth:refresh:reuse")


async def test_a_refresh_grant_is_one_statement(client, app_client):
    """Issue 20: authenticating the client by its secret, rotating the token, checking the
    grant and reading the claims is one statement."""
    from tests.conftest import counting_queries

    await signed_in(client)
    code, verifier = await code_for(client, app_client, scope="openid email profile accounts")
    tokens = (await exchange(client, app_client, code, verifier)).json()
    client.raw.cookies.clear()  # an application's server calls without the person's cookies
    wrong = await client.raw.post("/oauth/token", auth=(app_client.client_id, "not-it"), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    with counting_queries() as queries:  # the token was not spent by the refused request
        refreshed = await client.raw.post("/oauth/token", auth=app_client.basic(), data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert queries["count"] == 1
    claims = (await decode(client, refreshed.json()["id_token"])).claims
    assert claims["email"] == "sso@example.com" and claims["accounts"][0]["role"] == "owner"


async def test_client_authentication(client, app_client):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    wrong = await client.raw.post("/oauth/token", auth=(app_client.client_id, "zle"), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    other = await register(name="Inna aplikacja")
    stolen = await exchange(client, other, code, verifier)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    # The secret in the form body works too (client_secret_post).
    code, verifier = await code_for(client, app_client)
    posted = await client.raw.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier, "client_id": app_client.client_id,
        "client_secret": app_client.secret})
    assert posted.status_code == 200


async def test_private_key_jwt_clients_and_single_use_assertions(client, settings):
    key = RSAKey.generate_key(2048, parameters={"kid": "rp-1", "alg": "RS256"})
    app = await register(name="e-Płace", auth_method="private_key_jwt",
                         jwks={"keys": [key.as_dict(private=False)]})
    assert app.secret is None
    await signed_in(client)

    def assertion(jti: str) -> str:
        now = int(time.time())
        return jwt.encode({"alg": "RS256", "kid": "rp-1"}, {
            "iss": app.client_id, "sub": app.client_id, "jti": jti,
            "aud": settings.base_url + "/oauth/token", "iat": now, "exp": now + 60}, key)

    async def token_request(signed: str):
        code, verifier = await code_for(client, app)
        return await client.raw.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed})

    signed = assertion("jti-1")
    assert (await token_request(signed)).status_code == 200
    replay = await token_request(signed)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    stranger = RSAKey.generate_key(2048, parameters={"kid": "rp-1"})
    now = int(time.time())
    forged = jwt.encode({"alg": "RS256", "kid": "rp-1"}, {
        "iss": app.client_id, "sub": app.client_id, "jti": "jti-2",
        "aud": settings.base_url + "/oauth/token", "exp": now + 60}, stranger)
    assert (await token_request(forged)).status_code == 401


async def test_third_party_apps_ask_for_consent_once(client):
    app = await register(name="Aplikacja partnera", first_party=False)
    await signed_in(client)
    _, challenge = pkce()
    page = await client.get(authorize_url(app, challenge))
    assert page.status_code == 200 and "Aplikacja partnera" in page.text
    assert "Adres e-mail" in page.text  # what is shared
    form = {"client_id": app.client_id, "redirect_uri": REDIRECT, "response_type": "code",
            "scope": "openid email profile", "state": "st-123", "nonce": "n",
            "code_challenge": challenge, "code_challenge_method": "S256"}
    denied = await client.post_form("/oauth/consent", {**form, "decision": "deny"})
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    allowed = await client.post_form("/oauth/consent", {**form, "decision": "allow"})
    assert "code" in query_of(allowed.headers["location"])
    again = await client.get(authorize_url(app, challenge))
    assert again.status_code == 302 and "code" in query_of(again.headers["location"])


async def test_prompt_none_without_a_session_answers_login_required(client, app_client):
    _, challenge = pkce()
    response = await client.get(authorize_url(app_client, challenge, prompt="none"))
    assert query_of(response.headers["location"])["error"] == "login_required"
    asked = await client.get(authorize_url(app_client, challenge))
    assert asked.status_code == 303 and asked.headers["location"].startswith("/login?next=")


async def test_the_accounts_claim_lists_accounts_in_polish_order_after_a_rename(
        client, app_client):
    """Issue 20: the claim orders by the stored ``account.sort_name``, which follows the name."""
    from portal.tables import Account

    identity_id, first = await signed_in(client)
    for name in ("Żabka", "Zebra", "Ąkacja"):
        await factories.account(identity_id, name=name, role="member")
    await Account.update({Account.name: "Alfa"}).where(Account.id == first["id"])
    code, verifier = await code_for(client, app_client, scope="openid accounts")
    claims = (await decode(client, (await exchange(client, app_client, code, verifier)
                                    ).json()["id_token"])).claims
    assert [a["name"] for a in claims["accounts"]] == ["Alfa", "Ąkacja", "Zebra", "Żabka"]


async def test_the_token_statements_alone_commit_without_waiting_for_the_flush():
    """Issue 20 (migration 2026-12-04T12:20): the refresh and exchange functions set
    ``synchronous_commit = off`` for their own transaction only; everything else keeps the
    server's setting."""
    from portal.db import ENGINE

    async def setting() -> str:
        return (await OAuthGrant.raw("SHOW synchronous_commit"))[0]["synchronous_commit"]

    before = await setting()
    for call in ("oauth_refresh_for_secret('x', 'y', 'z', 'w', now())",
                 "oauth_exchange_for_secret('x', 'y', 'z', 'u', 'c', 'w', now(), '', '')"):
        async with ENGINE.transaction():
            assert await OAuthGrant.raw(f"SELECT * FROM {call}") == []  # noqa: S608
            assert await setting() == "off"
        assert await setting() == before


async def test_the_accounts_scope_carries_accounts_and_the_chosen_accounts_companies(
        client, app_client):
    identity_id, account = await signed_in(client)
    other = await factories.account(identity_id, name="Druga Firma", role="member")
    code, verifier = await code_for(client, app_client, scope="openid accounts",
                                    account=other["public_id"])
    claims = (await decode(client, (await exchange(client, app_client, code, verifier)
                                    ).json()["id_token"])).claims
    assert claims["account"] == other["public_id"]
    by_id = {a["id"]: a for a in claims["accounts"]}
    assert by_id[account["public_id"]]["role"] == "owner"
    assert by_id[other["public_id"]]["role"] == "member"
    assert "companies" in by_id[other["public_id"]]
    assert "companies" not in by_id[account["public_id"]]
    # An account the person is not in is ignored, never granted.
    stranger = await factories.account(None, name="Obca")
    code, verifier = await code_for(client, app_client, scope="openid accounts",
                                    account=stranger["public_id"])
    claims = (await decode(client, (await exchange(client, app_client, code, verifier)
                                    ).json()["id_token"])).claims
    assert stranger["public_id"] not in {a["id"] for a in claims["accounts"]}
    assert claims.get("account") != stranger["public_id"]


async def test_an_app_that_requires_mfa_steps_up_the_session(client, settings):
    app = await register(name="e-Deklaracje", require_mfa=True)
    identity_id, _ = await signed_in(client)
    _, challenge = pkce()
    response = await client.get(authorize_url(app, challenge))
    assert response.headers["location"] == "/security"  # no second factor yet
    secret = totp.new_secret()
    await Identity.update({Identity.totp_secret_encrypted: totp.encrypt(secret,
                                                                        settings.secret_key),
                           Identity.totp_confirmed_at: Identity.created_at}).where(
        Identity.id == identity_id)
    response = await client.get(authorize_url(app, challenge))
    assert response.headers["location"] == "/login/mfa"
    done = await client.post_form("/login/mfa", {"method": "app",
                                                 "code": pyotp.TOTP(secret).now()})
    assert done.headers["location"].startswith("/oauth/authorize?")
    verifier, challenge = pkce()
    code_response = await client.get(authorize_url(app, challenge))
    code = query_of(code_response.headers["location"])["code"]
    claims = (await decode(client, (await exchange(client, app, code, verifier)
                                    ).json()["id_token"])).claims
    assert "otp" in claims["amr"] and claims["acr"] == "urn:portal:acr:mfa"


async def test_end_session_asks_then_logs_out_and_returns_to_a_registered_uri(
        client, app_client):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    id_token = (await exchange(client, app_client, code, verifier)).json()["id_token"]
    bad = await client.get("/oauth/logout", params={
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://evil.example.com/"})
    assert bad.status_code == 400
    page = await client.get("/oauth/logout", params={
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://app.example.com/bye",
        "state": "s1"})
    assert page.status_code == 200 and await Session.count() == 1  # nothing ends on GET
    done = await client.post_form("/oauth/end-session", {
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://app.example.com/bye",
        "state": "s1"})
    assert done.status_code == 303
    assert done.headers["location"] == "https://app.example.com/bye?state=s1"
    assert await Session.count() == 0


class _Catcher(BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = parse_qs(self.rfile.read(length).decode())
        self.received.append(body["logout_token"][0])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


async def test_signing_out_of_the_portal_tells_every_app_over_the_back_channel(client, settings):
    server = HTTPServer(("127.0.0.1", 0), _Catcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Catcher.received = []
    try:
        uri = f"http://127.0.0.1:{server.server_port}/backchannel"
        one = await register(name="Jedna", backchannel_logout_uri=uri)
        two = await register(name="Druga", backchannel_logout_uri=uri)
        identity_id, _ = await signed_in(client)
        sids = set()
        for app in (one, two):
            code, verifier = await code_for(client, app, scope="openid")
            body = (await exchange(client, app, code, verifier)).json()
            sids.add((await decode(client, body["id_token"])).claims["sid"])
        assert len(sids) == 1  # one portal session, one sid
        await client.post_form("/logout", {})
        await oidc_logout.settle(settings)
        for _ in range(20):
            if len(_Catcher.received) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(_Catcher.received) == 2
        audiences = set()
        for token in _Catcher.received:
            claims = (await decode(client, token)).claims
            assert claims["sub"] == str(identity_id) and claims["sid"] in sids
            assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
            assert "nonce" not in claims
            audiences.add(claims["aud"])
        assert audiences == {one.client_id, two.client_id}
        assert await OAuthGrant.count().where(OAuthGrant.revoked_at.is_null()) == 0
    finally:
        server.shutdown()


async def test_bad_token_requests_get_json_errors_never_500(client, app_client):
    for data in ({}, {"grant_type": "password"}, {"grant_type": "authorization_code"},
                 {"grant_type": "refresh_token", "refresh_token": "x" * 5000}):
        response = await client.raw.post("/oauth/token", data=data, auth=app_client.basic())
        assert response.status_code in (400, 401)
        assert "error" in json.loads(response.text)
    garbage = await client.raw.post("/oauth/token", data={"grant_type": "refresh_token"},
                                    headers={"Authorization": "Basic !!!"})
    assert garbage.status_code == 401


async def test_a_person_sees_and_revokes_applications_in_security(client, app_client):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    tokens = (await exchange(client, app_client, code, verifier)).json()
    page = await client.get("/security")
    assert "e-Faktury" in page.text
    done = await client.post_form(f"/security/applications/{app_client.client_id}/revoke", {})
    assert done.status_code == 303
    refreshed = await client.raw.post("/oauth/token", auth=app_client.basic(), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400
    assert "e-Faktury" not in (await client.get("/security")).text
    missing = await client.post_form("/security/applications/app_nope/revoke", {})
    assert missing.status_code == 404


async def test_staff_register_clients_in_the_back_office_and_others_cannot(client):
    from tests.conftest import field_error

    await factories.identity("obsluga@example.com", is_staff=True)
    await factories.identity("zwykly@example.com")
    await client.sign_in("zwykly@example.com", factories.PASSWORD)
    assert (await client.get("/staff/clients")).status_code == 403
    refused = await client.post_form("/staff/clients", {"name": "X", "redirect_uris": REDIRECT})
    assert refused.status_code == 403
    await client.post_form("/logout", {})

    await client.sign_in("obsluga@example.com", factories.PASSWORD)
    bad = await client.post_form("/staff/clients", {"name": "Sklep", "redirect_uris":
                                                    "http://evil.example.com/cb",
                                                    "auth_method": "client_secret_basic"})
    assert bad.status_code == 422 and field_error(bad.text, "redirect_uris")
    ok = await client.post_form("/staff/clients", {
        "name": "Sklep", "redirect_uris": "https://sklep.example.com/cb",
        "auth_method": "client_secret_basic", "allowed_scopes": ["openid", "email"],
        "first_party": "on"})
    assert ok.status_code == 200
    assert 'data-testid="client-secret"' in ok.text
    from portal.tables import OAuthClient

    row = await OAuthClient.select().where(OAuthClient.name == "Sklep").first()
    assert row["first_party"] and row["allowed_scopes"] == ["openid", "email"]
    assert row["secret_hash"] and row["secret_hash"] not in ok.text
    assert row["id_token_signed_response_alg"] == "RS256"  # the default
    bad_alg = await client.post_form("/staff/clients", {
        "name": "Kasa", "redirect_uris": "https://kasa.example.com/cb",
        "auth_method": "client_secret_basic", "id_token_signed_response_alg": "none"})
    assert bad_alg.status_code == 422
    assert field_error(bad_alg.text, "id_token_signed_response_alg")
    es = await client.post_form("/staff/clients", {
        "name": "Kasa", "redirect_uris": "https://kasa.example.com/cb",
        "auth_method": "client_secret_basic", "id_token_signed_response_alg": "ES256"})
    assert es.status_code == 200
    assert await OAuthClient.select(OAuthClient.id_token_signed_response_alg).where(
        OAuthClient.name == "Kasa").first() == {"id_token_signed_response_alg": "ES256"}


async def test_a_code_exchange_with_a_wrong_secret_leaves_the_code_alone(client, app_client):
    """Issue 20: the client's check is part of the exchange statement; a refused client
    spends nothing, and the exchange by the right one is one statement, its audit row
    included."""
    from tests.conftest import counting_queries

    await signed_in(client)
    first, first_verifier = await code_for(client, app_client)  # the signing key is made
    assert (await exchange(client, app_client, first, first_verifier)).status_code == 200
    code, verifier = await code_for(client, app_client)
    client.raw.cookies.clear()
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": app_client.redirect_uri, "code_verifier": verifier}
    wrong = await client.raw.post("/oauth/token", data=form,
                                  auth=(app_client.client_id, "not-it"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    with counting_queries() as queries:
        right = await client.raw.post("/oauth/token", data=form, auth=app_client.basic())
    assert right.status_code == 200 and right.json()["id_token"]
    assert queries["count"] == 1  # the exchange, the audit event with it
    event = await AuditEvent.select().where(AuditEvent.tag == "oauth:token:issue").order_by(
        AuditEvent.created_at, ascending=False).output(load_json=True).first()
    assert event["data"] == {"client_id": app_client.client_id}
    assert event["identity_id"] is not None and event["ip"]
