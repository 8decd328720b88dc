"""Nothing is lost for keyboard and screen-reader users (issue 18): where focus lands after
every swap, messages that reach the live region, the profile menu, the language of parts,
page titles, heading order, the password toggle and the session warning. Keyboard only
wherever a person would use the keyboard."""

from __future__ import annotations

import re
from itertools import pairwise

from playwright.async_api import Page, expect

from e2e import axe
from e2e.data import Person
from e2e.pages import LoginPage, tab_to
from e2e.test_mfa import enrol_app_by_keyboard, password_step, sign_out
from portal.tables import Identity, Membership
from portal.testing import factories

#: Records every text the live region is given after the page has loaded (what a screen
#: reader announces), in window.__announced.
RECORD_LIVE = """
window.__announced = [];
document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (!live) return;
  new MutationObserver(() => {
    const text = live.textContent.trim();
    if (text) window.__announced.push(text);
  }).observe(live, { childList: true, subtree: true, characterData: true });
});
"""


async def focused(page: Page) -> dict:
    return await page.evaluate("""() => {
      const e = document.activeElement;
      return { tag: e.tagName.toLowerCase(), id: e.id, name: e.getAttribute("name"),
               text: (e.textContent || "").trim().slice(0, 80),
               label: e.labels && e.labels[0] ? e.labels[0].textContent.trim() : "" };
    }""")


async def announced(page: Page) -> list[str]:
    return await page.evaluate("() => window.__announced")


async def assert_announced(page: Page, text: str) -> None:
    """The live region was given ``text`` (after the page loaded) within five seconds."""
    import asyncio

    for _ in range(50):
        if text in await announced(page):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} was not announced; announced: {await announced(page)}")


async def test_second_factor_methods_by_keyboard_keep_focus_and_announce_the_code(
        page: Page, make_person):
    person: Person = await make_person(label="a11y-mfa")
    await LoginPage(page).sign_in(person.email, person.password)
    await enrol_app_by_keyboard(page)
    await Identity.update({Identity.mfa_email_enabled: True}).where(
        Identity.id == person.identity_id)
    await sign_out(page)
    await page.add_init_script(RECORD_LIVE)

    # The sign-in page opens with the email field focused; the code step with the code field.
    await LoginPage(page).open()
    assert (await focused(page))["name"] == "email"
    await password_step(page, person.email, person.password)
    assert (await focused(page))["name"] == "code"

    await tab_to(page, page.get_by_role("link", name="Użyj kodu odzyskiwania"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Kod odzyskiwania")).to_be_focused()

    await tab_to(page, page.get_by_role("link", name="Wyślij kod e-mailem"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Kod", exact=True)).to_be_focused()

    await tab_to(page, page.get_by_role("button", name="Wyślij kod e-mailem"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Kod", exact=True)).to_be_focused()
    await assert_announced(page, "Wysłaliśmy kod. Sprawdź skrzynkę (kod działa 10 minut).")
    assert (await focused(page))["tag"] != "body"


async def test_cancel_in_the_in_place_editors_returns_focus_to_the_card(page: Page,
                                                                        owner: Person):
    await LoginPage(page).sign_in(owner.email, owner.password)
    company = owner.account["main_company_id"]
    for path, edit, heading, card in [
        ("/account", "Edytuj dane konta", "Dane konta firmy", "account-card"),
        ("/billing", "Edytuj dane do faktury", "Dane nabywcy na fakturach", "billing-card"),
        (f"/companies/{company}", "Edytuj dane firmy", "Dane firmy", "company-card"),
    ]:
        await page.goto(path)
        await tab_to(page, page.get_by_role("link", name=edit), max_presses=80)
        await page.keyboard.press("Enter")
        cancel = page.get_by_role("main").get_by_role("link", name="Anuluj", exact=True)
        await tab_to(page, cancel, max_presses=40)
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_focused()
        # The next Tab goes on inside the card, not back to the start of the page.
        await page.keyboard.press("Tab")
        assert await page.evaluate(
            f"() => document.getElementById('{card}').contains(document.activeElement)"), path


async def test_the_profile_menu_closes_with_escape_and_stays_on_a_narrow_screen(
        page: Page, owner: Person):
    await LoginPage(page).sign_in(owner.email, owner.password)
    summary = page.locator("details.profile-menu > summary")
    menu = page.locator("details.profile-menu")
    await tab_to(page, summary)
    await page.keyboard.press("Enter")
    await expect(menu).to_have_attribute("open", "")
    await page.keyboard.press("Escape")
    await expect(menu).not_to_have_attribute("open", "")
    await expect(summary).to_be_focused()

    # Moving focus out of it closes it.
    await page.keyboard.press("Enter")
    await tab_to(page, page.get_by_role("link", name="Bezpieczeństwo logowania"))
    await page.keyboard.press("Tab")
    await expect(menu).not_to_have_attribute("open", "")

    for width in (320, 390, 480):
        await page.set_viewport_size({"width": width, "height": 800})
        await page.goto("/")
        await page.locator("details.profile-menu > summary").click()
        profile = page.get_by_role("link", name="Profil", exact=True)
        box = await profile.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (
            width, box)
        await profile.focus()
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(re.compile(r"/profile$"))


async def test_a_confirmation_after_a_redirect_is_announced(page: Page, owner: Person):
    await page.add_init_script(RECORD_LIVE)
    await LoginPage(page).sign_in(owner.email, owner.password)
    await page.goto("/companies/new")
    await page.get_by_label("Nazwa", exact=True).fill("Piekarnia Pod Lipą")
    await page.get_by_role("button", name=re.compile("^(Dodaj|Zapisz)")).first.click()
    await expect(page.get_by_role("heading", name="Piekarnia Pod Lipą", level=1)).to_be_visible()
    await assert_announced(page, "Dodano firmę.")


async def test_language_of_parts(page: Page, owner: Person, browser, server):
    from portal.services import catalogue
    from portal.tables import Application, ApplicationTranslation

    await catalogue.seed()  # the migration seeds it; the tests/ suite may have emptied it
    await LoginPage(page).sign_in(owner.email, owner.password)
    await page.goto("/profile")
    await expect(page.locator('option[value="en"]')).to_have_attribute("lang", "en")
    await expect(page.locator('option[value="pl"]')).not_to_have_attribute("lang", "pl")

    english = await browser.new_context(base_url=server.base_url, locale="en-GB")
    try:
        other = await english.new_page()
        await LoginPage(other).open()
        await other.get_by_label("Email", exact=True).fill(owner.email)
        await other.get_by_label("Password", exact=True).fill(owner.password)
        await other.get_by_role("button", name="Sign in", exact=True).click()
        await expect(other).not_to_have_url(re.compile("/login"))
        # The catalogue speaks English; an entry without its English text stays Polish,
        # marked as such (the community's translation is taken away for this test).
        await ApplicationTranslation.delete().where(
            ApplicationTranslation.application.is_in(
                Application.select(Application.id).where(Application.slug == "spolecznosc")))
        await other.goto("/apps")
        await expect(other.get_by_role("heading", name="e-Invoices", level=2)).to_be_visible()
        descriptions = other.locator("main article p[lang]")
        assert await descriptions.evaluate_all("els => els.map(e => [e.lang, e.textContent])"
                                                ) == [["pl", "Forum, na którym użytkownicy i "
                                                       "eksperci dzielą się wiedzą."]]
        await other.goto("/support")
        assert await other.locator('main section p[lang="pl"]').count() == 1
        await expect(other.get_by_text("User manuals of the applications")).to_be_visible()
        await axe.assert_no_serious_violations(other)
    finally:
        await english.close()
        await catalogue.seed()  # gives the community its English back


async def test_detail_pages_have_their_own_titles_and_headings_in_order(page: Page,
                                                                        owner: Person):
    member_id = await factories.identity("tytul@example.com", first_name="Ewa",
                                         last_name="Tytułowa")
    await factories.membership(member_id, owner.account["id"], "member")
    membership = await Membership.select().where(Membership.identity == member_id).first()
    await LoginPage(page).sign_in(owner.email, owner.password)

    await page.goto(f"/companies/{owner.account['main_company_id']}")
    await expect(page).to_have_title(re.compile("^Firma Testowa sp. z o.o. · Firma"))
    await page.goto(f"/users/{membership['id']}")
    await expect(page).to_have_title(re.compile("^Ewa Tytułowa · Osoba"))

    await page.goto("/support")
    await page.get_by_label("Temat", exact=True).fill("Nie działa eksport JPK")
    await page.get_by_label("Wiadomość", exact=True).fill("Eksport kończy się błędem.")
    await page.get_by_role("button", name="Wyślij zgłoszenie").click()
    await expect(page).to_have_title(re.compile("^Nie działa eksport JPK · Zgłoszenie"))

    await page.goto(f"/users/{membership['id']}/remove")
    levels = await page.locator("main :is(h1, h2, h3, h4)").evaluate_all(
        "els => els.map(e => Number(e.tagName[1]))")
    assert levels[0] == 1 and all(b - a <= 1 for a, b in pairwise(levels)), levels


async def test_the_password_toggle_has_one_name_and_a_pressed_state(page: Page):
    await LoginPage(page).open()
    toggle = page.get_by_role("button", name="Pokaż hasło")
    await tab_to(page, toggle)
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await page.keyboard.press("Enter")
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(toggle).to_have_accessible_name("Pokaż hasło")
    await expect(page.get_by_label("Hasło", exact=True)).to_have_attribute("type", "text")


async def test_the_session_warning_leaves_at_least_twenty_seconds(page: Page, owner: Person):
    await page.clock.install()
    await LoginPage(page).sign_in(owner.email, owner.password)
    # As a deployment with a one-minute idle limit renders the page.
    async def short_idle(route):
        response = await route.fetch()
        body = (await response.text()).replace('data-idle-seconds="3600"',
                                               'data-idle-seconds="60"')
        await route.fulfill(response=response, body=body)

    await page.route("**/profile", short_idle)
    await page.goto("/profile")
    dialog = page.get_by_role("dialog")
    await page.clock.run_for(39_000)
    await expect(dialog).to_be_hidden()
    await page.clock.run_for(2_000)  # 41 s: the warning, 19+ s before the end
    await expect(dialog).to_be_visible()
    await expect(dialog).to_have_accessible_description(
        re.compile("Dla bezpieczeństwa wylogujemy Cię"))


async def test_a_success_message_does_not_stand_next_to_a_new_error(page: Page, owner: Person):
    await LoginPage(page).sign_in(owner.email, owner.password)
    await page.goto("/support")
    await page.get_by_label("Temat", exact=True).fill("Pytanie o fakturę")
    await page.get_by_label("Wiadomość", exact=True).fill("Gdzie jest faktura?")
    await page.get_by_role("button", name="Wyślij zgłoszenie").click()
    reply = page.get_by_label("Treść odpowiedzi")
    await reply.fill("Jeszcze jedno pytanie.")
    await page.get_by_role("button", name="Wyślij odpowiedź").click()
    live = page.locator("#live")
    await expect(live).to_contain_text("Wysłano odpowiedź.")
    await page.get_by_role("button", name="Wyślij odpowiedź").click()  # empty
    await expect(page.get_by_label("Treść odpowiedzi")).to_have_attribute("aria-invalid", "true")
    await expect(live).not_to_contain_text("Wysłano odpowiedź.")


SCREENS = ["/", "/apps", "/support", "/orders", "/products", "/billing", "/account",
           "/companies", "/users", "/users/new", "/api-keys", "/profile", "/security",
           "/users/audit"]


async def test_every_htmx_link_of_every_screen_leaves_focus_somewhere_sensible(
        page: Page, owner: Person):
    """Walk every visible control that swaps by GET (links, buttons that only read) on every
    screen: after the swap, focus is never on <body>."""
    member_id = await factories.identity("spacer@example.com")
    await factories.membership(member_id, owner.account["id"], "member")
    membership = await Membership.select().where(Membership.identity == member_id).first()
    await LoginPage(page).sign_in(owner.email, owner.password)
    screens = [*SCREENS, f"/companies/{owner.account['main_company_id']}",
               f"/users/{membership['id']}"]
    walked = 0
    for path in screens:
        await page.goto(path)
        count = await page.locator("main :is(a, button)[hx-get]:visible").count()
        for index in range(count):
            await page.goto(path)
            control = page.locator("main :is(a, button)[hx-get]:visible").nth(index)
            if not await control.count():
                continue
            what = (await control.get_attribute("hx-get")) or ""
            await control.focus()
            async with page.expect_response(lambda r: "HX-Request" in r.request.headers
                                            or r.request.headers.get("hx-request") == "true"):
                await page.keyboard.press("Enter")
            await page.wait_for_timeout(100)  # settle
            where = await focused(page)
            assert where["tag"] != "body", f"{path}: after {what} focus fell to <body>"
            walked += 1
    assert walked >= 5, walked  # the in-place editors, "Dodaj osobę", remove, …
