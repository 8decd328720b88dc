"""``ui_locales`` (issue 12, item 6): an application asking for English gets the sign-in,
second step, consent and logout pages in English, even in a Polish browser."""

from __future__ import annotations

from tests.oidc.conftest import authorize_url, code_for, exchange, pkce, register, signed_in

POLISH_BROWSER = {"Accept-Language": "pl-PL,pl;q=0.9"}


async def test_consent_and_logout_speak_it_too(client):
    app = await register(name="Aplikacja partnera", first_party=False)
    await signed_in(client)
    _, challenge = pkce()
    consent = await client.get(authorize_url(app, challenge, ui_locales="en"),
                               headers=POLISH_BROWSER)
    assert consent.status_code == 200
    assert "Consent to share data" in consent.text and "Allow" in consent.text
    assert 'name="ui_locales" value="en"' in consent.text  # kept through the decision
    first_party = await register(name="e-Faktury")
    code, verifier = await code_for(client, first_party)
    id_token = (await exchange(client, first_party, code, verifier)).json()["id_token"]
    logout = await client.get("/oauth/logout", params={"id_token_hint": id_token,
                                                       "ui_locales": "en"},
                              headers=POLISH_BROWSER)
    assert logout.status_code == 200 and "Signing out" in logout.text
