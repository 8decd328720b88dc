"""MFA through HTTP: enrolment, the second step of sign-in, recovery, removal, limits."""

from __future__ import annotations

import re
import time

import pyotp

from portal.services import mfa
from portal.tables import AuditEvent, Identity, OneTimeToken, RecoveryCode, Session
from portal.testing import factories
from tests.conftest import field_error, last_mail, link_in

EMAIL = "mfa@example.com"


async def enrol_app(client) -> tuple[str, list[str]]:
    """Turn the authenticator app on through the UI; return the secret and recovery codes."""
    page = await client.post_form("/security/mfa/app/start", {})
    assert page.status_code == 200
    shown = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page.text).group(1)
    secret = shown.replace(" ", "")
    assert len(secret) == 32 and shown.count(" ") == 7  # grouped by four
    done = await client.post_form("/security/mfa/app/confirm",
                                  {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    assert len(codes) == 10
    return secret, codes


async def signed_in_with_app(client):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    secret, codes = await enrol_app(client)
    await client.post_form("/logout", {})
    return secret, codes


async def password_step(client, email=EMAIL, password=factories.PASSWORD):
    response = await client.post_form("/login", {"email": email, "password": password})
    assert response.status_code == 303
    assert response.headers["location"] == "/login/mfa"
    return response


def previous_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time() - 30)


def next_code(secret: str) -> str:
    """The code of the next time step: enrolment just used the current one (a code works
    once), and the window accepts one step of clock drift."""
    return pyotp.TOTP(secret).at(time.time() + 30)


async def test_enrolment_shows_a_qr_code_and_the_key_and_needs_a_current_code(client):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    page = await client.post_form("/security/mfa/app/start", {}, htmx=True)
    assert page.text.lstrip().startswith('<div id="mfa-settings"')  # the fragment
    assert "<svg" in page.text and 'role="img"' in page.text
    wrong = await client.post_form("/security/mfa/app/confirm", {"code": "000000"})
    assert wrong.status_code == 422
    assert field_error(wrong.text, "code")
    assert (await mfa.status(await _id())).app is False  # not on until a code confirms it
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', wrong.text).group(1)
    ok = await client.post_form("/security/mfa/app/confirm",
                                {"code": pyotp.TOTP(secret.replace(" ", "")).now()})
    assert ok.status_code == 200 and "kody-odzyskiwania.txt" in ok.text
    assert (await mfa.status(await _id())).app is True
    assert "aplikację uwierzytelniającą" in (await last_mail(EMAIL))["text_body"]
    row = await Identity.select(Identity.totp_secret_encrypted).where(
        Identity.email == EMAIL).first()
    assert secret.replace(" ", "") not in row["totp_secret_encrypted"]  # encrypted at rest


async def _id():
    return (await Identity.select(Identity.id).where(Identity.email == EMAIL).first())["id"]


async def test_sign_in_asks_for_the_code_and_starts_the_session_only_after_it(client):
    secret, _ = await signed_in_with_app(client)
    await password_step(client)
    assert await Session.count() == 0
    form = await client.get("/login/mfa")
    assert 'autocomplete="one-time-code"' in form.text and 'inputmode="numeric"' in form.text
    done = await client.post_form("/login/mfa", {"method": "app", "code": next_code(secret)})
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert await Session.count() == 1
    assert (await client.get("/security")).status_code == 200


async def test_a_code_works_once(client):
    secret, _ = await signed_in_with_app(client)
    code = next_code(secret)
    await password_step(client)
    first = await client.post_form("/login/mfa", {"method": "app", "code": code})
    assert first.status_code == 303
    await client.post_form("/logout", {})
    await password_step(client)
    again = await client.post_form("/login/mfa", {"method": "app", "code": code})
    assert again.status_code == 422
    assert field_error(again.text, "code") == "Kod jest nieprawidłowy albo wygasł."
    # An older code (the previous step) is refused too once a later one was accepted.
    old = await client.post_form("/login/mfa", {"method": "app", "code": previous_code(secret)})
    assert old.status_code == 422


async def test_recovery_codes_work_once_and_their_use_is_mailed(client):
    _, codes = await signed_in_with_app(client)
    await password_step(client)
    done = await client.post_form("/login/mfa", {"method": "recovery",
                                                 "code": codes[3].upper()})
    assert done.status_code == 303
    assert "kodów odzyskiwania" in (await last_mail(EMAIL))["text_body"]
    assert await AuditEvent.exists().where(AuditEvent.tag == "identity:mfa:recovery_used")
    await client.post_form("/logout", {})
    await password_step(client)
    again = await client.post_form("/login/mfa", {"method": "recovery", "code": codes[3]})
    assert again.status_code == 422
    assert await RecoveryCode.count().where(RecoveryCode.used_at.is_null()) == 9


async def test_email_codes(client):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    started = await client.post_form("/security/mfa/email/start", {})
    assert started.status_code == 200
    setup_mail = (await last_mail(EMAIL))["text_body"]
    code = re.search(r"\b(\d{8})\b", setup_mail).group(1)
    # Nobody is signing in: the mail says what the code is for.
    assert "logujesz się teraz" not in setup_mail and "włączasz teraz kody e-mail" in setup_mail
    assert (await client.post_form("/security/mfa/email/confirm", {"code": "12345678"})
            ).status_code == 422
    done = await client.post_form("/security/mfa/email/confirm", {"code": code})
    assert done.status_code == 200 and len(re.findall(r"<li><code>", done.text)) == 10
    await client.post_form("/logout", {})

    await password_step(client)
    page = await client.get("/login/mfa")
    assert "Wyślij kod e-mailem" in page.text  # nothing is mailed by a GET
    sent = await client.post_form("/login/mfa/email-code", {})
    assert sent.status_code == 200
    code = re.search(r"\b(\d{8})\b", (await last_mail(EMAIL))["text_body"]).group(1)
    stored = await OneTimeToken.select(OneTimeToken.data).where(
        OneTimeToken.purpose == mfa.LOGIN).first()
    assert code not in str(stored["data"])  # hashed at rest
    done = await client.post_form("/login/mfa", {"method": "email", "code": code})
    assert done.status_code == 303


async def test_email_code_resends_are_limited_per_attempt(client):
    await factories.identity(EMAIL)
    await Identity.update({Identity.mfa_email_enabled: True}, force=True)
    await password_step(client)
    statuses = [(await client.post_form("/login/mfa/email-code", {})).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 422]


async def test_twelve_wrong_codes_block_further_tries_even_the_right_one(client):
    secret, _ = await signed_in_with_app(client)
    await password_step(client)
    for _ in range(12):
        response = await client.post_form("/login/mfa", {"method": "app", "code": "123456"})
        assert response.status_code == 422
    assert "Zbyt wiele" in response.text
    # A fresh password step does not reset the count.
    await password_step(client)
    right = await client.post_form("/login/mfa", {"method": "app", "code": next_code(secret)})
    assert right.status_code == 422 and "Zbyt wiele" in right.text
    assert await Session.count() == 0


async def test_a_password_reset_does_not_bypass_mfa(client):
    await signed_in_with_app(client)
    await client.post_form("/password/forgot", {"email": EMAIL})
    link = link_in(await last_mail(EMAIL), "/password/reset/")
    new = "nowe hasło po resecie konta"
    await client.post_form(link, {"password": new, "password_confirm": new})
    await password_step(client, password=new)
    assert await Session.count() == 0


async def test_no_attempt_means_back_to_the_password(client):
    response = await client.get("/login/mfa")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    response = await client.post_form("/login/mfa", {"method": "app", "code": "123456"})
    assert response.status_code == 303


async def test_turning_mfa_off_needs_a_fresh_password(client):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    await enrol_app(client)
    await Session.raw("UPDATE session SET reauth_at = now() - interval '11 minutes'")
    refused = await client.post_form("/security/mfa/app/disable", {})
    assert refused.status_code == 422
    assert field_error(refused.text, "password")
    assert (await mfa.status(await _id())).app is True
    wrong = await client.post_form("/security/mfa/app/disable", {"password": "nie to"})
    assert wrong.status_code == 422
    ok = await client.post_form("/security/mfa/app/disable", {"password": factories.PASSWORD})
    assert ok.status_code == 303
    status = await mfa.status(await _id())
    assert status.app is False and status.recovery_left == 0


async def test_regenerating_recovery_codes_replaces_them(client):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    _, old = await enrol_app(client)
    response = await client.post_form("/security/mfa/recovery", {})  # fresh: just signed in
    new = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", response.text)
    assert len(new) == 10 and not set(new) & set(old)


async def test_an_account_that_demands_the_app_leads_its_people_to_enrol(client):
    from portal.tables import Account

    identity_id = await factories.identity(EMAIL)
    account = await factories.account(identity_id)
    await client.sign_in(EMAIL, factories.PASSWORD)
    assert (await client.get("/")).status_code == 200
    await Account.update({Account.mfa_policy: "app"}).where(Account.id == account["id"])
    blocked = await client.get("/")
    assert blocked.status_code == 303 and blocked.headers["location"] == "/security"
    assert "aplikacją uwierzytelniającą" in (await client.get("/security")).text
    await Identity.update({Identity.mfa_email_enabled: True}).where(Identity.id == identity_id)
    assert (await client.get("/")).status_code == 303  # email codes are not enough here
    await Account.update({Account.mfa_policy: "any"}).where(Account.id == account["id"])
    assert (await client.get("/")).status_code == 200


async def test_turning_mfa_on_gives_the_session_a_new_id(client):
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    before = client.cookies["portal_session"]
    await enrol_app(client)
    after = client.cookies["portal_session"]
    assert before != after
    assert await Session.count() == 1
    assert (await client.get("/security")).status_code == 200
    client.cookies.clear()
    client.cookies.set("portal_session", before)
    assert (await client.get("/security")).status_code == 303  # the old id is dead
