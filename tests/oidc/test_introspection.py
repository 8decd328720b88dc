"""Token introspection (RFC 7662) for the vendor's APIs and client_credentials for
service-to-service calls (issue 12, item 8), and revocation of access tokens (RFC 7009)."""

from __future__ import annotations

from portal.testing import factories
from tests.conftest import field_error
from tests.oidc.conftest import REDIRECT, code_for, decode, exchange, register, signed_in

INACTIVE = {"active": False}


async def introspect(client, caller, token: str, **extra):
    return await client.raw.post("/oauth/introspect", auth=caller.basic(),
                                 data={"token": token, **extra})


async def test_a_resource_server_sees_whether_an_access_token_is_live(client, app_client):
    api = await register(name="API e-Faktur")
    identity_id, _ = await signed_in(client)
    code, verifier = await code_for(client, app_client, scope="openid email accounts")
    tokens = (await exchange(client, app_client, code, verifier)).json()
    answer = await introspect(client, api, tokens["access_token"],
                              token_type_hint="access_token")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["active"] is True and body["sub"] == str(identity_id)
    assert body["client_id"] == app_client.client_id and body["scope"] == "openid email accounts"
    assert body["token_type"] == "Bearer" and body["exp"] > body["iat"]
    assert "email" not in body  # the person's data is for userinfo, not for introspection
    # A reuse of the refresh token revokes the grant: its access token is dead at once.
    for _ in range(2):
        await client.raw.post("/oauth/token", auth=app_client.basic(), data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert (await introspect(client, api, tokens["access_token"])).json() == INACTIVE
    for junk in ("x.y.z", "nope", "a" * 3000):
        assert (await introspect(client, api, junk)).json() == INACTIVE


async def test_refresh_tokens_are_seen_only_by_their_own_client(client, app_client):
    api = await register(name="API e-Faktur")
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    tokens = (await exchange(client, app_client, code, verifier)).json()
    own = (await introspect(client, app_client, tokens["refresh_token"])).json()
    assert own["active"] is True and own["token_type"] == "refresh_token"
    assert (await introspect(client, api, tokens["refresh_token"])).json() == INACTIVE


async def test_introspection_needs_a_confidential_client(client, app_client):
    anonymous = await client.raw.post("/oauth/introspect", data={"token": "x"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    spa = await register(name="SPA", auth_method="none",
                         redirect_uris=["https://spa.example.org/cb"])
    public = await client.raw.post("/oauth/introspect", data={"token": "x",
                                                               "client_id": spa.client_id})
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    missing = await client.raw.post("/oauth/introspect", auth=app_client.basic(), data={})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


async def test_client_credentials_get_the_scopes_staff_chose(client):
    service = await register(name="Księgowanie", service_scopes=["faktury:odczyt",
                                                                  "faktury:zapis"])
    api = await register(name="API e-Faktur")

    async def token(caller, **data):
        return await client.raw.post("/oauth/token", auth=caller.basic(),
                                     data={"grant_type": "client_credentials", **data})

    issued = await token(service, scope="faktury:odczyt")
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["scope"] == "faktury:odczyt" and body["token_type"] == "Bearer"
    assert "refresh_token" not in body and "id_token" not in body
    claims = (await decode(client, body["access_token"])).claims
    assert claims["sub"] == service.client_id and claims["client_id"] == service.client_id
    everything = (await token(service)).json()
    assert everything["scope"] == "faktury:odczyt faktury:zapis"
    assert (await token(service, scope="faktury:usuwanie")).json()["error"] == "invalid_scope"
    refused = await token(api)
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    seen = (await introspect(client, api, body["access_token"])).json()
    assert seen["active"] is True and seen["sub"] == service.client_id
    userinfo = await client.raw.get("/oauth/userinfo", headers={
        "Authorization": "Bearer " + body["access_token"]})
    assert userinfo.status_code == 401  # no person behind it


async def test_staff_choose_service_scopes_for_confidential_clients_only(client):
    await factories.identity("obsluga@example.com", is_staff=True)
    await client.sign_in("obsluga@example.com", factories.PASSWORD)
    public = await client.post_form("/staff/clients", {
        "name": "SPA", "redirect_uris": REDIRECT, "auth_method": "none",
        "service_scopes": "faktury:odczyt"})
    assert public.status_code == 422
    assert "publiczna" in (field_error(public.text, "service_scopes") or "")
    bad = await client.post_form("/staff/clients", {
        "name": "Usługa", "redirect_uris": REDIRECT, "auth_method": "client_secret_basic",
        "service_scopes": "openid Faktury!"})
    assert bad.status_code == 422 and field_error(bad.text, "service_scopes")
    ok = await client.post_form("/staff/clients", {
        "name": "Usługa", "redirect_uris": REDIRECT, "auth_method": "client_secret_basic",
        "service_scopes": "faktury:odczyt faktury:zapis"})
    assert ok.status_code == 200 and "client_credentials: faktury:odczyt faktury:zapis" in ok.text


async def test_revoking_an_access_token_ends_its_grant(client, app_client):
    await signed_in(client)
    code, verifier = await code_for(client, app_client)
    tokens = (await exchange(client, app_client, code, verifier)).json()
    other = await register(name="Inna")
    await client.raw.post("/oauth/revoke", auth=other.basic(),
                          data={"token": tokens["access_token"]})
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    assert (await client.raw.get("/oauth/userinfo", headers=bearer)).status_code == 200
    revoked = await client.raw.post("/oauth/revoke", auth=app_client.basic(),
                                    data={"token": tokens["access_token"],
                                          "token_type_hint": "access_token"})
    assert revoked.status_code == 200
    assert (await client.raw.get("/oauth/userinfo", headers=bearer)).status_code == 401
    refreshed = await client.raw.post("/oauth/token", auth=app_client.basic(), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400
