"""OpenID Connect and passkeys: amr hwk/user (RFC 8176) for a passkey sign-in, and
acr_values=urn:portal:acr:phr (advertised in discovery) stepping a session up to a passkey."""

from __future__ import annotations

from portal.services import oidc
from portal.testing.authenticator import SoftAuthenticator
from tests.oidc.conftest import authorize_url, decode, exchange, pkce, query_of, signed_in


async def test_discovery_advertises_the_phishing_resistant_class(client):
    meta = (await client.get("/.well-known/openid-configuration")).json()
    assert oidc.ACR_PHR == "urn:portal:acr:phr"
    assert oidc.ACR_PHR in meta["acr_values_supported"]


async def test_a_password_session_is_stepped_up_to_a_passkey(client, settings, app_client):
    await signed_in(client)
    _, challenge = pkce()
    asked = authorize_url(app_client, challenge, acr_values=oidc.ACR_PHR)
    response = await client.get(asked)
    assert response.headers["location"] == "/security"  # no passkey yet
    options = await client.post_form("/security/passkeys/options", {})
    device = SoftAuthenticator(origin=settings.origin, rp_id=settings.webauthn_rp_id)
    await client.post_form("/security/passkeys", {"credential": device.register(options.text)})

    response = await client.get(asked)
    assert response.headers["location"] == "/login/mfa"
    page = await client.get("/login/mfa?method=app")  # only the passkey is offered
    assert "Użyj klucza dostępu" in page.text and "Użyj kodu odzyskiwania" not in page.text
    options = await client.post_form("/login/mfa/passkey/options", {})
    done = await client.post_form("/login/mfa", {"method": "passkey",
                                                 "credential": device.assertion(options.text)})
    assert done.headers["location"].startswith("/oauth/authorize?")

    verifier, challenge = pkce()
    code_response = await client.get(authorize_url(app_client, challenge,
                                                   acr_values=oidc.ACR_PHR))
    code = query_of(code_response.headers["location"])["code"]
    claims = (await decode(client, (await exchange(client, app_client, code, verifier)
                                    ).json()["id_token"])).claims
    assert {"hwk", "user"} <= set(claims["amr"]) and claims["acr"] == oidc.ACR_PHR


async def test_prompt_none_without_a_passkey_session_is_interaction_required(client,
                                                                            app_client):
    await signed_in(client)
    _, challenge = pkce()
    response = await client.get(authorize_url(app_client, challenge, acr_values=oidc.ACR_PHR,
                                              prompt="none"))
    assert query_of(response.headers["location"])["error"] == "interaction_required"
