"""Passkeys through HTTP: registration in /security, sign-in without a password, the passkey
as a second factor, rename and removal, without JavaScript, replay and another origin."""

from __future__ import annotations

import json

from portal.tables import Passkey, Session
from portal.testing import factories
from portal.testing.authenticator import SoftAuthenticator
from tests.conftest import HTMX

EMAIL = "passkey@example.com"


def device(settings) -> SoftAuthenticator:
    return SoftAuthenticator(origin=settings.origin, rp_id=settings.webauthn_rp_id)


async def add_passkey(client, settings, name="Telefon") -> SoftAuthenticator:
    options = await client.post_form("/security/passkeys/options", {})
    assert options.status_code == 201 or options.status_code == 200, options.text
    body = options.json()
    assert body["rp"]["id"] == settings.webauthn_rp_id
    assert body["authenticatorSelection"]["residentKey"] == "required"
    assert body["authenticatorSelection"]["userVerification"] == "required"
    authenticator = device(settings)
    done = await client.post_form("/security/passkeys", {
        "credential": authenticator.register(options.text), "name": name})
    assert done.status_code in (200, 303), done.text[:500]
    return authenticator


async def test_register_sign_out_and_sign_in_with_the_passkey_alone(client, settings):
    identity_id = await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    page = await client.get("/security")
    assert "Dodaj klucz dostępu" in page.text and "/static/js/passkeys.js" in page.text
    authenticator = await add_passkey(client, settings)
    listed = await client.get("/security")
    assert "Telefon" in listed.text and "jeszcze nie" in listed.text
    await client.post_form("/logout", {})

    options = await client.post_form("/login/passkey/options", {})
    assert options.json()["allowCredentials"] == []
    signed = await client.post_form("/login/passkey", {
        "credential": authenticator.assertion(options.text), "next": "/security"})
    assert signed.status_code == 303 and signed.headers["location"] == "/security"
    session = await Session.select(Session.amr, Session.mfa_at).where(
        Session.identity == identity_id).first()
    assert session["amr"] == ["hwk", "user"] and session["mfa_at"] is not None
    assert (await client.get("/security")).status_code == 200


async def test_a_replayed_or_foreign_assertion_does_not_sign_in(client, settings):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    authenticator = await add_passkey(client, settings)
    await client.post_form("/logout", {})
    options = await client.post_form("/login/passkey/options", {})
    assertion = authenticator.assertion(options.text)
    assert (await client.post_form("/login/passkey", {"credential": assertion})).status_code == 303
    await client.post_form("/logout", {})
    replay = await client.post_form("/login/passkey", {"credential": assertion})
    assert replay.status_code == 422
    assert "Minęło zbyt dużo czasu" in replay.text
    options = await client.post_form("/login/passkey/options", {})
    foreign = await client.post_form("/login/passkey", {"credential": authenticator.assertion(
        options.text, origin="https://portal.evil.example")})
    assert foreign.status_code == 422 and "Nie udało się potwierdzić" in foreign.text
    assert (await client.get("/security")).status_code in (302, 303)


async def test_without_javascript_the_page_says_so_and_nothing_is_added(client):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    page = await client.get("/security")
    assert "data-passkey-needs-js" in page.text
    response = await client.post_form("/security/passkeys", {"credential": "", "name": "X"})
    assert response.status_code == 422
    assert "tylko z włączonym JavaScriptem" in response.text
    assert 'aria-describedby="error-credential-register"' in response.text
    assert not await Passkey.exists()
    fragment = await client.post_form("/security/passkeys", {"credential": "{}"}, htmx=True)
    assert fragment.status_code == 422 and fragment.text.lstrip().startswith(
        '<div id="passkey-settings"')
    login = await client.get("/login")
    assert 'autocomplete="username webauthn"' in login.text
    assert "Zaloguj się kluczem dostępu" in login.text


async def test_password_then_passkey_as_the_second_factor(client, settings):
    identity_id = await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    authenticator = await add_passkey(client, settings)
    await client.post_form("/logout", {})
    step = await client.post_form("/login", {"email": EMAIL, "password": factories.PASSWORD})
    assert step.headers["location"] == "/login/mfa"
    page = await client.get("/login/mfa")
    assert "Użyj klucza dostępu" in page.text
    options = await client.post_form("/login/mfa/passkey/options", {})
    assert [c["id"] for c in options.json()["allowCredentials"]]
    done = await client.post_form("/login/mfa", {
        "method": "passkey", "credential": authenticator.assertion(options.text)})
    assert done.status_code == 303, done.text[:300]
    session = await Session.select(Session.amr).where(Session.identity == identity_id).first()
    assert session["amr"] == ["pwd", "hwk", "user", "mfa"]


async def test_a_second_factor_options_need_a_sign_in_attempt(client):
    response = await client.post_form("/login/mfa/passkey/options", {})
    assert response.status_code == 409


async def test_rename_and_remove_with_reauthentication(client, settings):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    await add_passkey(client, settings)
    passkey = await Passkey.select(Passkey.id).first()
    bad = await client.post_form(f"/security/passkeys/{passkey['id']}/rename", {"name": " "},
                                 htmx=True)
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    renamed = await client.post_form(f"/security/passkeys/{passkey['id']}/rename",
                                     {"name": "Laptop"})
    assert renamed.status_code == 303
    assert (await Passkey.select(Passkey.name).first())["name"] == "Laptop"
    # The sign-in is no longer fresh: removal asks for the password.
    await Session.update({Session.reauth_at: None}).where(Session.id.is_not_null())
    refused = await client.post_form(f"/security/passkeys/{passkey['id']}/remove", {},
                                     htmx=True)
    assert refused.status_code == 422 and "Potwierdź, że to Ty" in refused.text
    wrong = await client.post_form(f"/security/passkeys/{passkey['id']}/remove",
                                   {"password": "nie to hasło"}, htmx=True)
    assert wrong.status_code == 422 and await Passkey.exists()
    removed = await client.post_form(f"/security/passkeys/{passkey['id']}/remove",
                                     {"password": factories.PASSWORD})
    assert removed.status_code == 303 and not await Passkey.exists()


async def test_someone_elses_passkey_is_not_found(client, settings):
    other = await factories.identity("inny@example.com")
    await Passkey.insert(Passkey(identity=other, credential_id=b"x" * 16, public_key=b"k",
                                 name="Cudzy"))
    theirs = await Passkey.select(Passkey.id).first()
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    for action, data in (("rename", {"name": "Mój"}), ("remove", {})):
        response = await client.post_form(f"/security/passkeys/{theirs['id']}/{action}", data)
        assert response.status_code == 404
    assert (await Passkey.select(Passkey.name).first())["name"] == "Cudzy"


async def test_options_are_json_and_not_stored(client, settings):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    response = await client.post_form("/security/passkeys/options", {}, headers=HTMX)
    assert response.headers["cache-control"] == "no-store"
    assert json.loads(response.text)["challenge"]
