"""MFA, end to end: enrol the authenticator app by its setup key, sign in with codes from the
app, by email and from the recovery list, turn it off after re-authenticating, and the limit on
wrong codes."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.async_api import Page, expect

from e2e import axe, mailbox
from e2e.pages import LoginPage, path_of, tab_to
from portal.tables import Identity, Session


def code_at(secret: str, offset_steps: int) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


async def password_step(page: Page, email: str, password: str) -> None:
    login = await LoginPage(page).open()
    await login.email.fill(email)
    await login.password.fill(password)
    await login.submit.click()
    await expect(page.get_by_role("heading", name="Weryfikacja dwuetapowa")).to_be_visible()


async def enrol_app_by_keyboard(page: Page) -> tuple[str, list[str]]:
    await page.goto("/security")
    start = page.get_by_role("button", name="Włącz aplikację uwierzytelniającą")
    await tab_to(page, start, max_presses=80)
    await page.keyboard.press("Enter")
    key = page.get_by_test_id("totp-secret")
    await expect(key).to_be_visible()
    await axe.assert_no_serious_violations(page)
    secret = (await key.inner_text()).replace(" ", "")
    code_field = page.get_by_label("Kod z aplikacji")
    await tab_to(page, code_field)
    await page.keyboard.type(pyotp.TOTP(secret).now())
    await page.keyboard.press("Enter")
    codes_list = page.get_by_test_id("recovery-codes")
    await expect(codes_list).to_be_visible()
    await axe.assert_no_serious_violations(page)
    codes = [c.strip() for c in await codes_list.get_by_role("listitem").all_inner_texts()]
    assert len(codes) == 10
    await expect(page.get_by_role("link", name="Pobierz jako plik tekstowy")).to_have_attribute(
        "download", "kody-odzyskiwania.txt")
    return secret, codes


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Wyloguj").click()
    await expect(page).to_have_url(re.compile(r"/login$"))


async def test_keyboard_only_enrol_the_app_and_sign_in_with_its_codes(page: Page, make_person):
    person = await make_person(label="mfa-app")
    await LoginPage(page).sign_in(person.email, person.password)
    secret, _ = await enrol_app_by_keyboard(page)
    await sign_out(page)

    await password_step(page, person.email, person.password)
    await axe.assert_no_serious_violations(page)
    code = code_at(secret, 1)  # the current step was used by the enrolment
    field = page.get_by_label("Kod", exact=True)
    await expect(field).to_have_attribute("autocomplete", "one-time-code")
    await tab_to(page, field)
    await page.keyboard.type(code)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/$"))
    await sign_out(page)

    # The same code a second time is refused.
    await password_step(page, person.email, person.password)
    await page.get_by_label("Kod", exact=True).fill(code)
    await page.get_by_role("button", name="Potwierdź").click()
    field = page.get_by_label("Kod", exact=True)
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#error-code")).to_have_text("Kod jest nieprawidłowy albo wygasł.")
    assert path_of(page) == "/login/mfa"


async def test_recovery_code_works_once(page: Page, make_person):
    person = await make_person(label="mfa-odzysk")
    await LoginPage(page).sign_in(person.email, person.password)
    _, codes = await enrol_app_by_keyboard(page)
    await sign_out(page)

    await password_step(page, person.email, person.password)
    await page.get_by_role("link", name="Użyj kodu odzyskiwania").click()
    await page.get_by_label("Kod odzyskiwania").fill(codes[0])
    await page.get_by_role("button", name="Potwierdź").click()
    await expect(page).to_have_url(re.compile(r"/$"))
    assert "kodów odzyskiwania" in await mailbox.latest(person.email)
    await sign_out(page)

    await password_step(page, person.email, person.password)
    await page.get_by_role("link", name="Użyj kodu odzyskiwania").click()
    await page.get_by_label("Kod odzyskiwania").fill(codes[0])
    await page.get_by_role("button", name="Potwierdź").click()
    await expect(page.get_by_label("Kod odzyskiwania")).to_have_attribute("aria-invalid", "true")


async def test_sign_in_with_an_emailed_code(page: Page, make_person):
    person = await make_person(label="mfa-email")
    await Identity.update({Identity.mfa_email_enabled: True}).where(
        Identity.id == person.identity_id)
    await password_step(page, person.email, person.password)
    await page.get_by_role("button", name="Wyślij kod e-mailem").click()
    await expect(page.get_by_role("status").filter(has_text="Wysłaliśmy kod")).to_be_visible()
    await page.get_by_label("Kod", exact=True).fill(await mailbox.code(person.email))
    await page.get_by_role("button", name="Potwierdź").click()
    await expect(page).to_have_url(re.compile(r"/$"))


async def test_turning_the_app_off_needs_the_password_again(page: Page, make_person):
    person = await make_person(label="mfa-wylacz")
    await LoginPage(page).sign_in(person.email, person.password)
    await enrol_app_by_keyboard(page)
    # Ten minutes later the session is no longer fresh.
    await Session.raw("UPDATE session SET reauth_at = now() - interval '11 minutes' "
                      "WHERE identity = {}", person.identity_id)
    await page.goto("/security")
    await page.get_by_role("button", name="Wyłącz aplikację").click()
    password = page.locator("#field-password-app")
    await expect(password).to_have_attribute("aria-invalid", "true")
    await axe.assert_no_serious_violations(page)
    await password.fill(person.password)
    await page.get_by_role("button", name="Wyłącz aplikację").click()
    await expect(page.get_by_role("status")).to_contain_text("Wyłączono")
    await expect(page.get_by_role("button", name="Włącz aplikację uwierzytelniającą")
                 ).to_be_visible()


async def test_twelve_wrong_codes_block_further_tries(page: Page, make_person):
    person = await make_person(label="mfa-limit")
    await LoginPage(page).sign_in(person.email, person.password)
    secret, _ = await enrol_app_by_keyboard(page)
    await sign_out(page)
    await password_step(page, person.email, person.password)
    for _ in range(12):
        await page.get_by_label("Kod", exact=True).fill("000000")
        await page.get_by_role("button", name="Potwierdź").click()
        await expect(page.locator("#error-code")).to_be_visible()
    await expect(page.locator("#error-code")).to_contain_text("Zbyt wiele")
    await page.get_by_label("Kod", exact=True).fill(code_at(secret, 1))
    await page.get_by_role("button", name="Potwierdź").click()
    await expect(page.locator("#error-code")).to_contain_text("Zbyt wiele")
