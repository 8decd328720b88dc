"""A new person's first day (issue 17), in the browser: an empty sign-in form says which field
is missing, at the field, while a filled wrong form keeps its one answer whatever the email;
and a password that resembles the person's own address is refused as such, while the same
password for someone else, or a phrase that merely contains a word of the address, is fine."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Locator, Page, expect

from e2e import axe, mailbox
from e2e.data import unique_email
from e2e.pages import LoginPage, path_of, tab_to
from e2e.server import Server

MISSING_EMAIL = "Podaj adres e-mail."
MISSING_PASSWORD = "Podaj hasło."
INVALID = 422
ONE_ANSWER = "Nieprawidłowy e-mail lub hasło, albo zbyt wiele prób."
RESEMBLES = "Hasło przypomina Twój adres e-mail."
#: Guessable when built on the address "jan.zastepca-…", strong for anyone else (zxcvbn).
BUILT_ON_ZASTEPCA = "Zastepca2026!"
#: A phrase with the address's word in it: a word is a word.
PHRASE_WITH_ZASTEPCA = "mój zastepca lubi zielone pomidory"


async def assert_says_at_the_field(field: Locator, message: str) -> None:
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(field).to_have_accessible_description(message)
    described = await field.get_attribute("aria-describedby")
    assert described, "the message is not tied to the field"
    await expect(field.page.locator(f"#{described.split()[-1]}")).to_have_text(message)


async def assert_fine_at_the_field(field: Locator) -> None:
    await expect(field).not_to_have_attribute("aria-invalid", "true")
    await expect(field).not_to_have_accessible_description(re.compile("Podaj"))


def posted_to(path: str):
    return lambda r: r.request.method == "POST" and r.url.endswith(path)


async def submit_by_keyboard(page: Page, button: Locator, *, htmx: bool) -> int:
    """Tab to ``button`` and press Enter; the status of the sign-in form's answer. With
    ``htmx`` the answer must be a fragment swapped into this very page (no navigation)."""
    await tab_to(page, button)
    async with page.expect_response(posted_to("/login")) as answer:
        await page.keyboard.press("Enter")
    response = await answer.value
    assert (response.request.headers.get("hx-request") == "true") is htmx
    return response.status


async def test_keyboard_only_an_empty_sign_in_form_names_the_missing_fields_with_htmx(
        page: Page, make_person):
    person = await make_person(label="pusty-formularz")
    login = await LoginPage(page).open()
    await expect(login.email).to_be_focused()  # the page opens in the email field
    await page.evaluate("window.notReloaded = true")

    assert await submit_by_keyboard(page, login.submit, htmx=True) == INVALID
    await assert_says_at_the_field(login.email, MISSING_EMAIL)
    await assert_says_at_the_field(login.password, MISSING_PASSWORD)
    await expect(login.email).to_be_focused()  # focus goes to the first error
    await expect(login.form_error).to_have_count(0)  # no vague answer for an empty form
    await axe.assert_no_serious_violations(page)

    await page.keyboard.type(person.email)  # the password still missing
    assert await submit_by_keyboard(page, login.submit, htmx=True) == INVALID
    await assert_fine_at_the_field(login.email)
    await expect(login.email).to_have_value(person.email)
    await assert_says_at_the_field(login.password, MISSING_PASSWORD)
    await expect(login.password).to_be_focused()

    await page.keyboard.type("to nie jest moje hasło")  # filled and wrong: the one answer
    assert await submit_by_keyboard(page, login.submit, htmx=True) == INVALID
    await expect(login.form_error).to_contain_text(ONE_ANSWER)
    await assert_fine_at_the_field(login.email)
    await assert_fine_at_the_field(login.password)
    await axe.assert_no_serious_violations(page)
    assert await page.evaluate("window.notReloaded === true"), "the form was not swapped"

    await tab_to(page, login.password)
    await page.keyboard.type(person.password)
    await page.keyboard.press("Enter")
    await expect(page).not_to_have_url(re.compile(r"/login"))


async def test_without_javascript_the_same_messages_and_one_answer_for_known_and_unknown(
        browser: Browser, server: Server, make_person):
    person = await make_person(label="bez-js-logowanie")
    context = await browser.new_context(base_url=server.base_url, locale="pl-PL",
                                        java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = await context.new_page()
        login = await LoginPage(page).open()
        async with page.expect_navigation():
            await login.submit.click()
        assert path_of(page) == "/login"
        await assert_says_at_the_field(login.email, MISSING_EMAIL)
        await assert_says_at_the_field(login.password, MISSING_PASSWORD)
        await expect(login.form_error).to_have_count(0)
        # (axe needs JavaScript in the page: the htmx flow above checks the same partial.)

        await login.password.fill("jakieś hasło")  # only the email missing
        async with page.expect_navigation():
            await login.submit.click()
        await assert_says_at_the_field(login.email, MISSING_EMAIL)
        await assert_fine_at_the_field(login.password)

        shown = []
        for email in (person.email, unique_email("nie-ma-takiego")):
            await login.email.fill(email)
            await login.password.fill("to nie jest moje hasło")
            async with page.expect_navigation() as answer:
                await login.submit.click()
            await expect(login.form_error).to_contain_text(ONE_ANSWER)
            await assert_fine_at_the_field(login.email)
            await assert_fine_at_the_field(login.password)
            main = page.get_by_role("main")
            shown.append(((await answer.value).status,
                          (await main.inner_text()).replace(email, "EMAIL")))
        assert shown[0] == shown[1], "a known and an unknown email are told apart"
    finally:
        await context.close()


async def test_setting_a_password_built_on_the_address_says_it_resembles_the_address(
        page: Page, engine):
    email = unique_email("jan.zastepca")
    await page.goto("/register")
    await page.get_by_label("E-mail", exact=True).fill(email)
    await page.get_by_role("button", name="Załóż Konto ID").click()
    await expect(page.get_by_role("heading", name="Sprawdź skrzynkę").first).to_be_visible()
    await page.goto(await mailbox.link(email, "/verify/"))
    await expect(page.get_by_role("heading", name="Ustaw hasło")).to_be_visible()

    new_password = page.get_by_label("Nowe hasło", exact=True)
    confirm = page.get_by_label("Powtórz hasło", exact=True)
    await new_password.fill(BUILT_ON_ZASTEPCA)
    await confirm.fill(BUILT_ON_ZASTEPCA)
    await page.get_by_role("button", name="Ustaw hasło").click()
    await expect(new_password).to_have_attribute("aria-invalid", "true")
    await expect(new_password).to_have_accessible_description(re.compile(re.escape(RESEMBLES)))
    await expect(new_password).not_to_have_accessible_description(re.compile("zawierać"))
    await expect(new_password).to_be_focused()
    await axe.assert_no_serious_violations(page)

    await new_password.fill(PHRASE_WITH_ZASTEPCA)  # a word of the address is a word
    await confirm.fill(PHRASE_WITH_ZASTEPCA)
    await page.get_by_role("button", name="Ustaw hasło").click()
    await expect(page).to_have_url(re.compile(r"/accounts/new$"))


async def change_password(page: Page, current: str, new: str) -> Locator:
    """Fill "Zmiana hasła" in /security and press "Zmień hasło"; the "Nowe hasło" field."""
    new_password = page.get_by_label("Nowe hasło", exact=True)
    await page.get_by_label("Obecne hasło", exact=True).fill(current)
    await new_password.fill(new)
    await page.get_by_label("Powtórz nowe hasło", exact=True).fill(new)
    await page.get_by_role("button", name="Zmień hasło").click()
    return new_password


async def test_changing_the_password_the_rule_is_the_persons_own_address(page: Page, make_person):
    # jan.zastepca-…: the whole address is refused as contained, a password built on it as
    # resembling it, a phrase with the word in it is fine.
    zastepca = await make_person(label="jan.zastepca")
    await LoginPage(page).sign_in(zastepca.email, zastepca.password)
    await page.goto("/security")
    for password, message in (
            (f"moje hasło to {zastepca.email}", "Hasło nie może zawierać Twojego adresu e-mail."),
            (BUILT_ON_ZASTEPCA, RESEMBLES)):
        new_password = await change_password(page, zastepca.password, password)
        await expect(new_password).to_have_attribute("aria-invalid", "true")
        await expect(new_password).to_have_accessible_description(
            re.compile(re.escape(message)))
        await axe.assert_no_serious_violations(page)
    await change_password(page, zastepca.password, PHRASE_WITH_ZASTEPCA)
    await expect(page.get_by_role("status")).to_contain_text("Hasło zostało zmienione")

    # anna.nowak-…: the very password refused above is nothing like her address.
    await page.get_by_role("button", name="Wyloguj").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    other = await make_person(label="anna.nowak")
    await LoginPage(page).sign_in(other.email, other.password)
    await page.goto("/security")
    await change_password(page, other.password, BUILT_ON_ZASTEPCA)
    await expect(page.get_by_role("status")).to_contain_text("Hasło zostało zmienione")
    await page.get_by_role("button", name="Wyloguj").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await LoginPage(page).sign_in(other.email, BUILT_ON_ZASTEPCA)
