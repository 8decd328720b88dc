"""A long company list as a Polish reader uses it (issues 17 and 20): names in Polish
alphabetical order, and "Następna strona" / "Poprzednia strona" by keyboard only, each link
carrying its keyset cursor in the address, as htmx swaps and as whole pages."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Page, expect

from e2e import axe
from e2e.data import Person
from e2e.pages import CompaniesPage, tab_to
from portal.tables import Company

DASH = "\N{EN DASH}"
POLISH = ["Szkoła", "Ślusarstwo Kowalski", "Zakład Fryzjerski", "Łódź Hurt", "Lucyna Kwiaty"]


async def test_companies_in_polish_order_paged_by_key_with_the_keyboard(page: Page, signed_in,
                                                                        owner: Person):
    account_id = owner.account["id"]
    await Company.insert(*[
        Company(account=account_id, key=uuid.uuid4().hex[:16], name=name)
        for name in POLISH + [f"Apteka {n:02d}" for n in range(55)]
    ])  # 61 with the main company "Firma Testowa sp. z o.o.": 3 pages
    companies = await CompaniesPage(page).open("sort=-name")
    assert (await companies.names())[:5] == [
        "Zakład Fryzjerski", "Ślusarstwo Kowalski", "Szkoła", "Łódź Hurt", "Lucyna Kwiaty"]
    await companies.open()
    await expect(companies.summary).to_have_text(f"Firmy 1{DASH}25 z 61")

    following = page.get_by_role("link", name="Następna strona")
    await tab_to(page, following, max_presses=200)
    await page.keyboard.press("Enter")
    await expect(companies.summary).to_have_text(f"Firmy 26{DASH}50 z 61")
    await expect(page).to_have_url(re.compile(r"page=2&after=[\w-]+"))
    assert (await companies.names())[0] == "Apteka 25"
    await axe.assert_no_serious_violations(page)

    await tab_to(page, following, max_presses=200)
    await page.keyboard.press("Enter")
    await expect(companies.summary).to_have_text(f"Firmy 51{DASH}61 z 61")
    assert await companies.names() == [
        "Apteka 50", "Apteka 51", "Apteka 52", "Apteka 53", "Apteka 54",
        "Firma Testowa sp. z o.o.", "Lucyna Kwiaty", "Łódź Hurt", "Szkoła",
        "Ślusarstwo Kowalski", "Zakład Fryzjerski"]

    back = page.get_by_role("link", name="Poprzednia strona")
    await tab_to(page, back, max_presses=200)
    await page.keyboard.press("Enter")
    await expect(companies.summary).to_have_text(f"Firmy 26{DASH}50 z 61")
    await expect(page).to_have_url(re.compile(r"page=2&before=[\w-]+"))

    # The address of a keyed page, opened anew (a bookmark, no htmx): the same rows.
    await page.goto(page.url)
    await expect(companies.summary).to_have_text(f"Firmy 26{DASH}50 z 61")
    assert (await companies.names())[0] == "Apteka 25"


async def test_a_ticket_names_a_company_found_by_the_forms_search_with_the_keyboard(
        page: Page, signed_in, owner: Person):
    """Issue 20: an account with more companies than the ticket form lists (an accounting
    office) finds one with "Szukaj firmy" (the form's other fields kept) and sends the ticket
    about it, keyboard only; then checks the ticket in the database."""
    from portal.services.companies import PICKER_LIMIT
    from portal.tables import Ticket

    account_id = owner.account["id"]
    await Company.insert(*[
        Company(account=account_id, key=uuid.uuid4().hex[:16], name=f"Apteka Łąkowa {n:03d}")
        for n in range(PICKER_LIMIT + 30)])
    await page.goto("/support")
    subject = page.get_by_role("textbox", name="Temat")
    await tab_to(page, subject, max_presses=200)
    await page.keyboard.type("Faktura za grudzień")
    search = page.get_by_role("searchbox", name="Szukaj firmy")
    await tab_to(page, search)
    await page.keyboard.type("łąkowa 127")
    await page.keyboard.press("Enter")  # new text in the search box: Enter searches
    company = page.get_by_role("combobox", name="Firma (nieobowiązkowo)")
    await expect(company.locator("option")).to_have_count(2)
    await expect(subject).to_have_value("Faktura za grudzień")
    await axe.assert_no_serious_violations(page)
    for width in (390, 320):  # phones: no sideways scroll
        await page.set_viewport_size({"width": width, "height": 800})
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await expect(search).to_be_visible()
    await page.set_viewport_size({"width": 1280, "height": 800})
    await tab_to(page, company)
    await page.keyboard.press("ArrowDown")
    await expect(company).to_have_value(re.compile(r"[0-9a-f-]{36}"))
    await tab_to(page, page.get_by_role("textbox", name="Wiadomość"))
    await page.keyboard.type("Proszę o korektę.")
    # Enter in the subject sends the ticket: the search was already made, so the form's
    # hidden default button is not taken for "Szukaj firmy".
    await tab_to(page, subject, max_presses=200)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/support/tickets/"))
    ticket = await Ticket.select(Ticket.subject, Ticket.company.name).where(
        Ticket.account == account_id).first()
    assert ticket == {"subject": "Faktura za grudzień", "company.name": "Apteka Łąkowa 127"}


async def test_an_api_key_limited_to_a_company_found_by_the_forms_search_with_the_keyboard(
        page: Page, signed_in, owner: Person):
    """Issue 20: the API key form of an account with more companies than it lists finds one
    by its NIP (Enter in the search box), checks it, and Enter in the name field makes the
    key limited to that company, keyboard only; axe and a phone's width on the way."""
    from portal.services.companies import PICKER_LIMIT
    from portal.tables import ApiKey

    account_id = owner.account["id"]
    await Company.insert(*[
        Company(account=account_id, key=uuid.uuid4().hex[:16], name=f"Apteka Łąkowa {n:03d}",
                nip=f"{7740000000 + n}") for n in range(PICKER_LIMIT + 30)])
    await page.goto("/api-keys")
    name = page.get_by_role("textbox", name="Nazwa klucza")
    await tab_to(page, name, max_presses=200)
    await page.keyboard.type("Księgowość jednej apteki")
    boxes = page.get_by_role("checkbox", name=re.compile("^Apteka"))
    await expect(boxes).to_have_count(PICKER_LIMIT)
    search = page.get_by_role("searchbox", name="Szukaj firmy")
    await tab_to(page, search)
    await page.keyboard.type("7740000117")
    await page.keyboard.press("Enter")
    await expect(boxes).to_have_count(1)
    await expect(boxes).to_have_accessible_name("Apteka Łąkowa 117")
    await expect(name).to_have_value("Księgowość jednej apteki")
    await axe.assert_no_serious_violations(page)
    for width in (390, 320):
        await page.set_viewport_size({"width": width, "height": 800})
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await expect(search).to_be_visible()
    await page.set_viewport_size({"width": 1280, "height": 800})
    await tab_to(page, boxes)
    await page.keyboard.press("Space")
    await tab_to(page, name, max_presses=200)
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("api-key-secret")).to_be_visible()
    key = await ApiKey.select(ApiKey.name, ApiKey.company_ids).where(
        ApiKey.account == account_id).first()
    chosen = await Company.select(Company.id).where(Company.nip == "7740000117").first()
    assert key == {"name": "Księgowość jednej apteki", "company_ids": [chosen["id"]]}
