"""The ID, end to end: register with an email only, verify, set a password, sign in and out,
reset a forgotten password, end other sessions."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from e2e import axe, mailbox
from e2e.data import unique_email
from e2e.pages import LoginPage, path_of, tab_to
from e2e.server import Server

PASSWORD = "cztery słonie idą przez most"
NEW_PASSWORD = "pięć żółwi płynie pod mostem"


async def type_into(page: Page, text: str) -> None:
    await page.keyboard.type(text)


async def test_keyboard_only_register_verify_sign_out_and_in(page: Page, engine):
    email = unique_email("rejestracja")
    await page.goto("/register")
    await axe.assert_no_serious_violations(page)
    await tab_to(page, page.get_by_label("E-mail", exact=True))
    await type_into(page, email)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Sprawdź skrzynkę").first).to_be_visible()

    await page.goto(await mailbox.link(email, "/verify/"))
    await expect(page.get_by_role("heading", name="Ustaw hasło")).to_be_visible()
    await axe.assert_no_serious_violations(page)
    await tab_to(page, page.get_by_label("Nowe hasło", exact=True))
    await type_into(page, "password1234")
    await page.keyboard.press("Tab")  # the show/hide toggle
    await page.keyboard.press("Tab")
    await type_into(page, "password1234")
    await page.keyboard.press("Enter")
    new_password = page.get_by_label("Nowe hasło", exact=True)
    await expect(new_password).to_have_attribute("aria-invalid", "true")
    await expect(new_password).to_be_focused()  # focus goes to the first error
    await expect(page.locator("#error-password")).to_contain_text("popularne")

    await type_into(page, PASSWORD)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await type_into(page, PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/accounts/new$"))  # no account yet

    await tab_to(page, page.get_by_role("button", name="Wyloguj"))
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await expect(page.get_by_role("status")).to_contain_text("Wylogowano")

    await tab_to(page, page.get_by_label("E-mail", exact=True))
    await type_into(page, email)
    await page.keyboard.press("Tab")
    await type_into(page, PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/accounts/new$"))


async def test_wrong_password_is_refused_with_a_message(page: Page, make_person):
    person = await make_person(label="zle-haslo")
    login = await LoginPage(page).open()
    await login.email.fill(person.email)
    await login.password.fill("to nie jest moje hasło")
    await login.submit.click()
    await expect(login.form_error).to_contain_text("Nieprawidłowy e-mail lub hasło")
    await expect(login.email).to_have_value(person.email)
    assert path_of(page) == "/login"
    await axe.assert_no_serious_violations(page)


async def test_password_reset_old_password_refused_link_single_use(page: Page, make_person):
    person = await make_person(label="reset")
    await page.goto("/login")
    await page.get_by_role("link", name="Nie pamiętasz hasła?").click()
    await axe.assert_no_serious_violations(page)
    await page.get_by_label("E-mail", exact=True).fill(person.email)
    await page.get_by_role("button", name="Wyślij link").click()
    await expect(page.get_by_role("heading", name="Sprawdź skrzynkę").first).to_be_visible()

    link = await mailbox.link(person.email, "/password/reset/")
    await page.goto(link)
    await page.get_by_label("Nowe hasło", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Powtórz hasło", exact=True).fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Ustaw hasło").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await expect(page.get_by_role("status")).to_contain_text("Hasło zostało zmienione")

    login = LoginPage(page)
    await login.email.fill(person.email)
    await login.password.fill(person.password)
    await login.submit.click()
    await expect(login.form_error).to_be_visible()  # the old password no longer works

    await page.goto(link)
    await expect(page.get_by_role("heading", name="Link nieważny")).to_be_visible()
    await LoginPage(page).sign_in(person.email, NEW_PASSWORD)


async def test_log_out_elsewhere_ends_the_other_browser_and_not_this_one(
    page: Page, browser: Browser, server: Server, make_person
):
    person = await make_person(label="sesje")
    other_context = await browser.new_context(base_url=server.base_url, locale="pl-PL")
    try:
        other = await other_context.new_page()
        await LoginPage(other).sign_in(person.email, person.password)
        await LoginPage(page).sign_in(person.email, person.password)
        await page.goto("/security")
        await axe.assert_no_serious_violations(page)
        await page.get_by_role("button", name="Wyloguj wszystkie inne sesje").click()
        await expect(page.get_by_role("status")).to_contain_text("Wylogowano pozostałe sesje")
        await page.goto("/profile")
        assert path_of(page) == "/profile"
        await other.goto("/profile")
        await expect(other).to_have_url(re.compile(r"/login\?next="))
    finally:
        await other_context.close()


async def test_registering_a_known_email_looks_identical(page: Page, make_person):
    person = await make_person(label="znany")
    unknown = unique_email("nowy")
    shown = []
    for email in (person.email, unknown):
        await page.goto("/register")
        await page.get_by_label("E-mail", exact=True).fill(email)
        await page.get_by_role("button", name="Załóż Konto ID").click()
        main = page.get_by_role("main")
        await expect(main.get_by_role("heading", name="Sprawdź skrzynkę").first).to_be_visible()
        shown.append((await main.inner_text()).replace(email, "EMAIL"))
    assert shown[0] == shown[1]
    assert "już je masz" in await mailbox.latest(person.email)
    assert "/verify/" in await mailbox.latest(unknown)


async def test_profile_screen_is_accessible_and_saves(page: Page, make_person):
    person = await make_person(label="profil")
    await LoginPage(page).sign_in(person.email, person.password)
    await page.goto("/profile")
    await axe.assert_no_serious_violations(page)
    await page.get_by_label("Telefon").fill("zły numer")
    await page.get_by_role("button", name="Zapisz profil").click()
    phone = page.get_by_label("Telefon")
    await expect(phone).to_have_attribute("aria-invalid", "true")
    await expect(phone).to_be_focused()
    await axe.assert_no_serious_violations(page)
    await phone.fill("+48 600 100 200")
    await page.get_by_label("Język").select_option("en")
    await page.get_by_role("button", name="Zapisz profil").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("User profile")
