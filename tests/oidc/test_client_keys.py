"""private_key_jwt clients and their public keys (issue 12, item 1): keys pasted by staff or
published at a jwks_uri (fetched with a timeout, cached, fetched again for an unknown kid),
checked when staff save them; a client without usable keys gets a JSON invalid_client, and an
assertion may name the endpoint it is sent to as its audience (item 5)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from portal.services import oidc_clients
from portal.tables import OAuthClient
from portal.testing import factories
from tests.conftest import field_error
from tests.oidc.conftest import REDIRECT, code_for, register, signed_in

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


def assertion(settings, client_id: str, key, *, aud: str | None = None, alg: str = "RS256",
              kid: str | None = None) -> str:
    now = int(time.time())
    header = {"alg": alg, "kid": kid or key.kid}
    return jwt.encode(header, {
        "iss": client_id, "sub": client_id, "jti": secrets.token_hex(8),
        "aud": aud or settings.base_url + "/oauth/token", "iat": now, "exp": now + 60}, key,
        algorithms=[alg])


async def token_request(client, app, signed: str):
    code, verifier = await code_for(client, app)
    return await client.raw.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier, "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed})


class _Keys(BaseHTTPRequestHandler):
    document: dict = {"keys": []}
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        body = json.dumps(self.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def jwks_server():
    server = HTTPServer(("127.0.0.1", 0), _Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Keys.hits = 0
    oidc_clients.forget_fetched_keys()
    yield server, f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()
    oidc_clients.forget_fetched_keys()


async def test_a_private_key_jwt_client_without_keys_gets_json_invalid_client(client, settings):
    key = rsa("k1")
    app = await register(name="e-Płace", auth_method="private_key_jwt",
                         jwks={"keys": [key.as_dict(private=False)]})
    # A client stored before keys were required (as the staff form used to do).
    await OAuthClient.update({OAuthClient.jwks: {}}).where(
        OAuthClient.client_id == app.client_id)
    await signed_in(client)
    response = await token_request(client, app, assertion(settings, app.client_id, key))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "invalid_client"


async def test_pasted_keys_sign_in_with_rs256_ps256_and_es256(client, settings):
    rsa_key, ec_key = rsa("r1"), ECKey.generate_key("P-256", parameters={"kid": "e1"})
    app = await register(name="e-Płace", auth_method="private_key_jwt", jwks=json.dumps(
        {"keys": [rsa_key.as_dict(private=False), ec_key.as_dict(private=False)]}))
    await signed_in(client)
    for key, alg in ((rsa_key, "RS256"), (rsa_key, "PS256"), (ec_key, "ES256")):
        response = await token_request(client, app,
                                       assertion(settings, app.client_id, key, alg=alg))
        assert response.status_code == 200, (alg, response.text)
    hs = jwt.encode({"alg": "HS256"}, {"iss": app.client_id, "sub": app.client_id,
                                       "jti": "j", "aud": settings.base_url,
                                       "exp": int(time.time()) + 60},
                    OctKey.import_key(secrets.token_bytes(32)), algorithms=["HS256"])
    assert (await token_request(client, app, hs)).status_code == 401


async def test_keys_at_a_jwks_uri_are_cached_and_fetched_again_for_a_new_kid(
        client, settings, jwks_server):
    _, uri = jwks_server
    first = rsa("2026-1")
    _Keys.document = {"keys": [first.as_dict(private=False)]}
    app = await register(name="Dokumenty", auth_method="private_key_jwt", jwks_uri=uri)
    await signed_in(client)
    for _ in range(2):
        response = await token_request(client, app, assertion(settings, app.client_id, first))
        assert response.status_code == 200, response.text
    assert _Keys.hits == 1  # fetched when staff saved it, then from the cache
    second = rsa("2026-2")  # the application rotates its key
    _Keys.document = {"keys": [second.as_dict(private=False), first.as_dict(private=False)]}
    oidc_clients._fetched[uri] = (time.monotonic() - oidc_clients.REFETCH_AFTER - 1,
                                  oidc_clients._fetched[uri][1])
    response = await token_request(client, app, assertion(settings, app.client_id, second))
    assert response.status_code == 200, response.text
    assert _Keys.hits == 2
    # A made-up kid right after a fetch does not make the portal fetch again.
    stranger = rsa("made-up")
    response = await token_request(client, app, assertion(settings, app.client_id, stranger))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert _Keys.hits == 2


async def test_an_unreachable_jwks_uri_answers_invalid_client_not_500(client, settings,
                                                                       jwks_server):
    server, uri = jwks_server
    key = rsa("k")
    _Keys.document = {"keys": [key.as_dict(private=False)]}
    app = await register(name="Dokumenty", auth_method="private_key_jwt", jwks_uri=uri)
    oidc_clients.forget_fetched_keys()
    server.shutdown()
    server.server_close()
    await signed_in(client)
    response = await token_request(client, app, assertion(settings, app.client_id, key))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


async def test_an_assertion_may_name_the_endpoint_it_is_sent_to(client, settings):
    key = rsa("k1")
    app = await register(name="e-Płace", auth_method="private_key_jwt",
                         jwks={"keys": [key.as_dict(private=False)]})
    await signed_in(client)
    tokens = (await token_request(client, app, assertion(settings, app.client_id, key))).json()
    revoke_url = settings.base_url + "/oauth/revoke"
    revoked = await client.raw.post("/oauth/revoke", data={
        "token": tokens["refresh_token"], "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(settings, app.client_id, key, aud=revoke_url)})
    assert revoked.status_code == 200, revoked.text
    # The revocation endpoint's audience is not the token endpoint's.
    refused = await token_request(client, app, assertion(settings, app.client_id, key,
                                                         aud=revoke_url))
    assert refused.status_code == 401


@pytest.mark.filterwarnings("ignore:Key size should be")
@pytest.mark.parametrize(("jwks", "message"), [
    ("", "potrzebuje kluczy publicznych"),
    ("{nie json", "To nie jest JSON"),
    ('{"keys": []}', "z 1 do 20 kluczami"),
    ("PRIVATE", "tylko klucze publiczne"),
    ("SMALL", "co najmniej 2048 bitów"),
    ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "tylko klucze publiczne"),
    ("TWO_WITHOUT_KID", "własnego, innego kid"),
])
async def test_staff_get_a_field_message_for_keys_that_cannot_work(client, jwks, message):
    documents = {
        "PRIVATE": lambda: {"keys": [RSAKey.generate_key(2048).as_dict(private=True)]},
        "SMALL": lambda: {"keys": [RSAKey.generate_key(1024).as_dict(private=False)]},
        "TWO_WITHOUT_KID": lambda: {"keys": [
            {k: v for k, v in RSAKey.generate_key(2048).as_dict(private=False).items()
             if k != "kid"} for _ in range(2)]},
    }
    text = json.dumps(documents[jwks]()) if jwks in documents else jwks
    await factories.identity("obsluga@example.com", is_staff=True)
    await client.sign_in("obsluga@example.com", factories.PASSWORD)
    page = await client.post_form("/staff/clients", {
        "name": "e-Płace", "redirect_uris": REDIRECT, "auth_method": "private_key_jwt",
        "jwks": text, "jwks_uri": ""})
    assert page.status_code == 422
    assert message in (field_error(page.text, "jwks") or "")
    assert await OAuthClient.count() == 0


async def test_staff_set_up_a_private_key_jwt_client_by_pasting_keys_or_a_jwks_uri(
        client, jwks_server):
    _, uri = jwks_server
    await factories.identity("obsluga@example.com", is_staff=True)
    await client.sign_in("obsluga@example.com", factories.PASSWORD)
    key = rsa("k1")
    pasted = await client.post_form("/staff/clients", {
        "name": "e-Płace", "redirect_uris": REDIRECT, "auth_method": "private_key_jwt",
        "jwks": json.dumps({"keys": [key.as_dict(private=False)]}), "jwks_uri": ""})
    assert pasted.status_code == 200 and 'data-testid="client-id"' in pasted.text
    assert 'data-testid="client-secret"' not in pasted.text
    row = await OAuthClient.select().where(OAuthClient.name == "e-Płace").first()
    stored = row["jwks"] if isinstance(row["jwks"], dict) else json.loads(row["jwks"])
    assert stored["keys"][0]["kid"] == "k1" and "d" not in stored["keys"][0]

    down = await client.post_form("/staff/clients", {
        "name": "Dokumenty", "redirect_uris": REDIRECT, "auth_method": "private_key_jwt",
        "jwks": "", "jwks_uri": "http://127.0.0.1:9/nothing-here"})
    assert down.status_code == 422
    assert "nie odpowiada" in (field_error(down.text, "jwks_uri") or "")
    _Keys.document = {"keys": [key.as_dict(private=False)]}
    published = await client.post_form("/staff/clients", {
        "name": "Dokumenty", "redirect_uris": REDIRECT, "auth_method": "private_key_jwt",
        "jwks": "", "jwks_uri": uri})
    assert published.status_code == 200, published.text
    assert (await OAuthClient.select(OAuthClient.jwks_uri).where(
        OAuthClient.name == "Dokumenty").first())["jwks_uri"] == uri
    both = await client.post_form("/staff/clients", {
        "name": "X", "redirect_uris": REDIRECT, "auth_method": "client_secret_basic",
        "jwks": json.dumps({"keys": [key.as_dict(private=False)]}), "jwks_uri": ""})
    assert both.status_code == 422 and "tylko dla private_key_jwt" in (
        field_error(both.text, "jwks") or "")
