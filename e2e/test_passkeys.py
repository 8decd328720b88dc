"""Passkeys in the browser, with Chromium's virtual authenticator (CDP WebAuthn: ctap2,
internal transport, resident keys, user verification): register one in /security, sign out,
sign in with it and no password; password + passkey as the second factor; the account policy
"klucz dostępu" sends a person without one to /security; a removed passkey no longer signs
in. axe on every new screen and state, 320 px without sideways scroll, one flow by keyboard.

The server here runs on http://localhost:PORT (WebAuthn refuses an IP address as relying
party id). Replayed assertions and assertions for another origin are refused in
tests/views/test_passkeys.py and tests/services/test_passkeys.py (HTTP and service level).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from e2e.axe import assert_no_serious_violations
from e2e.data import Person
from e2e.pages import LoginPage, tab_to
from e2e.server import Server, running_server
from portal.tables import Account, Passkey, Session


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[Server]:
    """This file's server, on localhost: conftest's context and page fixtures use it."""
    with running_server(database_url, tmp_path_factory.mktemp("e2e-passkeys"),
                        host_name="localhost") as running:
        yield running


async def with_authenticator(context: BrowserContext, page: Page) -> str:
    """A virtual platform authenticator for this page (as a phone's or laptop's own)."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    return added["authenticatorId"]


#: Chromium's virtual authenticator answers a conditional (autofill) request at once with its
#: first passkey; flows that press the button turn autofill off for their page first.
NO_AUTOFILL = ("if (window.PublicKeyCredential) PublicKeyCredential"
               ".isConditionalMediationAvailable = () => Promise.resolve(false);")


async def add_passkey(page: Page, name: str) -> None:
    await page.goto("/security")
    await page.get_by_label("Nazwa klucza", exact=True).fill(name)
    await page.get_by_role("button", name="Dodaj klucz dostępu", exact=True).click()
    await expect(page.get_by_role("heading", name=name, level=3)).to_be_visible()


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Wyloguj", exact=True).first.click()
    await expect(page).to_have_url(re.compile(r"/login"))


async def no_sideways_scroll(page: Page, path: str, *, only: str | None = None) -> None:
    """At 320 px the page (or, with ``only``, the page with just that part of main shown)
    scrolls no wider than the viewport."""
    await page.set_viewport_size({"width": 320, "height": 800})
    await page.goto(path)
    if only:
        # /security's older tables (sessions, history) are the phone restyling's to fix;
        # this measures the passkey part on its own.
        await page.evaluate("""(keep) => document.querySelectorAll('main > *').forEach((e) => {
            if (!e.querySelector(keep) && !e.matches('h1')) e.hidden = true; })""", only)
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    wide = await page.evaluate("""() => [...document.querySelectorAll('main *')]
        .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth)
        .slice(0, 8).map((e) => e.tagName + '.' + e.className + '#' + e.id)""")
    assert overflow <= 0, (path, overflow, wide)
    await page.set_viewport_size({"width": 1280, "height": 800})


async def test_register_by_keyboard_then_sign_in_with_the_passkey_and_no_password(
        context: BrowserContext, page: Page, owner: Person):
    await with_authenticator(context, page)
    await page.add_init_script(NO_AUTOFILL)
    await LoginPage(page).sign_in(owner.email, owner.password)
    await page.goto("/security")
    await expect(page.get_by_text("Nie masz jeszcze kluczy dostępu.")).to_be_visible()
    await assert_no_serious_violations(page)

    # Keyboard only: Tab to the name, type it, Tab to the button, Enter.
    await tab_to(page, page.get_by_label("Nazwa klucza", exact=True), max_presses=120)
    await page.keyboard.type("Laptop służbowy")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Dodaj klucz dostępu",
                                  exact=True)).to_be_focused()
    await page.keyboard.press("Enter")
    # The first second factor: the recovery codes are shown once.
    await expect(page.get_by_test_id("recovery-codes")).to_be_visible()
    await expect(page.get_by_role("heading", name="Laptop służbowy", level=3)).to_be_visible()
    await expect(page.get_by_text("zapisany na jednym urządzeniu").first).to_be_visible()
    await assert_no_serious_violations(page)
    rows = await Passkey.select(Passkey.name, Passkey.transports).where(
        Passkey.identity == owner.identity_id)
    assert rows == [{"name": "Laptop służbowy", "transports": ["internal"]}]
    await no_sideways_scroll(page, "/security", only="#passkey-settings")

    await sign_out(page)
    await assert_no_serious_violations(page)
    await no_sideways_scroll(page, "/login")
    await page.goto("/login?next=/security")
    await tab_to(page, page.get_by_role("button", name="Zaloguj się kluczem dostępu",
                                        exact=True))
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"^http://localhost:\d+/security$"))
    session = await Session.select(Session.amr).where(
        Session.identity == owner.identity_id).first()
    assert session["amr"] == ["hwk", "user"]
    await page.goto("/security")
    await expect(page.get_by_text("Ostatnio użyty")).to_be_visible()
    await expect(page.get_by_text("jeszcze nie")).to_have_count(0)


async def test_the_email_fields_autofill_signs_in_with_the_passkey(
        context: BrowserContext, page: Page, owner: Person):
    await with_authenticator(context, page)
    await LoginPage(page).sign_in(owner.email, owner.password)
    await add_passkey(page, "Telefon")
    # Signed out on /login, the email field's autofill request is answered by the
    # authenticator (as a person picking the passkey there): signed in again, no password.
    await page.get_by_role("button", name="Wyloguj", exact=True).first.click()
    await expect(page).to_have_url(re.compile(r"/$"))
    session = await Session.select(Session.amr).where(
        Session.identity == owner.identity_id).first()
    assert session["amr"] == ["hwk", "user"]


async def test_password_then_passkey_as_the_second_factor(
        context: BrowserContext, page: Page, owner: Person):
    await with_authenticator(context, page)
    await page.add_init_script(NO_AUTOFILL)
    await LoginPage(page).sign_in(owner.email, owner.password)
    await add_passkey(page, "Telefon")
    await sign_out(page)

    login = LoginPage(page)
    await login.open()
    await login.email.fill(owner.email)
    await login.password.fill(owner.password)
    await login.submit.click()
    await expect(page).to_have_url(re.compile(r"/login/mfa"))
    await expect(page.get_by_role("heading", name="Weryfikacja dwuetapowa")).to_be_visible()
    await assert_no_serious_violations(page)
    await no_sideways_scroll(page, "/login/mfa")
    await page.get_by_role("button", name="Użyj klucza dostępu", exact=True).click()
    await expect(page).not_to_have_url(re.compile(r"/login"))
    session = await Session.select(Session.amr).where(
        Session.identity == owner.identity_id).first()
    assert session["amr"] == ["pwd", "hwk", "user", "mfa"]


async def test_the_passkey_policy_sends_a_person_without_one_to_security(
        context: BrowserContext, page: Page, owner: Person, make_person):
    await with_authenticator(context, page)
    await page.add_init_script(NO_AUTOFILL)
    await LoginPage(page).sign_in(owner.email, owner.password)
    await page.goto("/account")
    policy = page.get_by_role("radio", name="Wymagany klucz dostępu (logowanie odporne na "
                                            "phishing)")
    await policy.check()
    await page.get_by_role("button", name="Zapisz wymóg", exact=True).click()
    await expect(page.get_by_text("Najpierw sam włącz taką metodę")).to_be_visible()
    await add_passkey(page, "Klucz właściciela")
    await page.goto("/account")
    await policy.check()
    async with page.expect_response("**/account/mfa-policy") as saved:
        await page.get_by_role("button", name="Zapisz wymóg", exact=True).click()
    assert (await saved.value).status == 200
    await expect(page.get_by_text("Najpierw sam włącz taką metodę")).to_have_count(0)
    await page.goto("/account")
    await expect(policy).to_be_checked()
    await assert_no_serious_violations(page)
    row = await Account.select(Account.mfa_policy).where(
        Account.id == owner.account["id"]).first()
    assert row["mfa_policy"] == "passkey"

    # A member without a passkey: the users grid says so, and they are led to /security.
    from portal.testing import factories

    member = await make_person(label="bezklucza", with_account=False)
    await factories.membership(member.identity_id, owner.account["id"], "member")
    await page.goto("/users?mfa=missing")
    row = page.get_by_role("row").filter(has_text=member.email)
    await expect(row.get_by_text("nie spełnia wymogu konta")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text=owner.email)).to_have_count(0)
    await sign_out(page)
    await LoginPage(page).sign_in(member.email, member.password)
    await page.goto("/companies")
    await expect(page).to_have_url(re.compile(r"/security$"))
    await expect(page.get_by_text("wymaga logowania kluczem dostępu").first).to_be_visible()
    await assert_no_serious_violations(page)
    await add_passkey(page, "Mój klucz")
    await page.goto("/companies")
    await expect(page).to_have_url(re.compile(r"/companies$"))


async def test_a_removed_passkey_no_longer_signs_in(
        context: BrowserContext, page: Page, owner: Person):
    await with_authenticator(context, page)
    await page.add_init_script(NO_AUTOFILL)
    await LoginPage(page).sign_in(owner.email, owner.password)
    await add_passkey(page, "Stary klucz")
    await page.get_by_role("button", name="Usuń klucz dostępu Stary klucz").click()
    await expect(page.get_by_text("Usunięto klucz dostępu.").first).to_be_visible()
    assert not await Passkey.exists().where(Passkey.identity == owner.identity_id)
    await sign_out(page)

    # The authenticator still holds the credential; the portal no longer knows it.
    await page.goto("/login")
    await page.get_by_role("button", name="Zaloguj się kluczem dostępu", exact=True).click()
    await expect(page.get_by_role("alert").filter(
        has_text="Nie udało się potwierdzić klucza dostępu")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/login/passkey$"))
    await assert_no_serious_violations(page)
    # The password path stays.
    await expect(page.get_by_label("Hasło", exact=True)).to_be_visible()


async def test_without_javascript_the_pages_say_so_and_the_password_stays(
        browser: Browser, server: Server, owner: Person):
    context = await browser.new_context(base_url=server.base_url, locale="pl-PL",
                                        java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = await context.new_page()
        await page.goto("/login")
        await expect(page.get_by_text("Logowanie kluczem dostępu wymaga JavaScriptu.")
                     ).to_be_visible()
        await page.get_by_label("E-mail", exact=True).fill(owner.email)
        await page.get_by_label("Hasło", exact=True).fill(owner.password)
        await page.get_by_role("button", name="Zaloguj się", exact=True).click()
        await expect(page).not_to_have_url(re.compile(r"/login"))
        await page.goto("/security")
        await expect(page.get_by_text("Klucze dostępu wymagają włączonego JavaScriptu.")
                     ).to_be_visible()
        await page.get_by_role("button", name="Dodaj klucz dostępu", exact=True).click()
        error = page.get_by_text("Klucze dostępu działają tylko z włączonym JavaScriptem.")
        await expect(error).to_be_visible()
        await expect(page.get_by_role("button", name="Dodaj klucz dostępu", exact=True)
                     ).to_have_attribute("aria-describedby", "error-credential-register")
        assert not await Passkey.exists().where(Passkey.identity == owner.identity_id)
    finally:
        await context.close()


async def test_the_refused_registration_state_passes_axe(
        context: BrowserContext, page: Page, owner: Person):
    """The state a browser without JavaScript gets back (axe needs scripts to run, so the
    form is sent here as it would be without them: the passkey hook taken off)."""
    context.set_default_timeout(10_000)
    await LoginPage(page).sign_in(owner.email, owner.password)
    await page.goto("/security")
    await page.evaluate("() => document.getElementById('passkey-register')"
                        ".removeAttribute('data-passkey')")
    await page.get_by_role("button", name="Dodaj klucz dostępu", exact=True).click()
    await expect(page.get_by_text("Klucze dostępu działają tylko z włączonym JavaScriptem.")
                 ).to_be_visible()
    await assert_no_serious_violations(page)
