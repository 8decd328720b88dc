"""Accounts and companies, as people use them: creating an account (its main company appears),
a refused NIP, the same NIP twice, adding companies, switching accounts by keyboard, and one
account's companies never reaching another's people. The database is checked after the UI."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from e2e import axe
from e2e.data import Person
from e2e.pages import (
    AccountPage,
    AccountSwitcher,
    CompaniesPage,
    LoginPage,
    NewAccountPage,
    is_focused,
    path_of,
    tab_to,
)
from e2e.server import Server
from portal.tables import Account, AuditEvent, Company, Identity, Membership
from portal.testing import factories

DASH = "\N{EN DASH}"  # the UI writes ranges with an en dash

GOOD_NIP = "774-000-14-54"
GOOD_NIP_STORED = "7740001454"


async def accounts_of(person: Person) -> list[dict]:
    return await (
        Account.select(Account.id, Account.name, Account.nip, Account.public_id)
        .where(Account.id.is_in(
            Membership.select(Membership.account).where(Membership.identity == person.identity_id)
        ))
        .order_by(Account.name)
    )


async def test_a_newcomer_creates_an_account_and_its_main_company_appears(page: Page,
                                                                           make_person):
    newcomer: Person = await make_person(label="nowa-firma", with_account=False)
    await LoginPage(page).sign_in(newcomer.email, newcomer.password)
    await expect(page).to_have_url(re.compile(r"/accounts/new$"))
    new_account = NewAccountPage(page)
    await expect(new_account.heading).to_be_visible()

    card = await new_account.create("Kwiaciarnia Róża sp. z o.o.", GOOD_NIP,
                                    accounting_office=True)
    await expect(page.get_by_role("status")).to_contain_text("Utworzono konto firmy.")
    assert await card.fact("NIP") == GOOD_NIP_STORED
    assert await card.fact("Firma główna") == "Kwiaciarnia Róża sp. z o.o."
    assert await card.fact("Prowadzę biuro rachunkowe") == "Tak"
    assert await card.fact("Liczba firm") == "1"
    public_id = await card.fact("ID konta")
    assert re.fullmatch(r"[0-9a-f]{12}", public_id)
    assert await AccountSwitcher(page).current() == "Kwiaciarnia Róża sp. z o.o."

    companies = await CompaniesPage(page).open()
    assert await companies.names() == ["Kwiaciarnia Róża sp. z o.o."]
    row = companies.table.get_by_role("row", name=re.compile("Kwiaciarnia"))
    await expect(row.get_by_text("Firma główna")).to_be_visible()
    await expect(row.get_by_test_id("company-key")).to_have_text(re.compile(r"^[0-9a-f]{16}$"))
    await expect(row.get_by_role("button", name=re.compile("^Kopiuj"))).to_be_visible()

    (account,) = await accounts_of(newcomer)
    assert (account["public_id"], account["nip"]) == (public_id, GOOD_NIP_STORED)
    main = await Company.select().where(Company.account == account["id"])
    assert [(c["name"], c["nip"], c["is_main"]) for c in main] == [
        ("Kwiaciarnia Róża sp. z o.o.", GOOD_NIP_STORED, True)]
    assert await AuditEvent.exists().where(
        (AuditEvent.tag == "account:account:create") & (AuditEvent.account_id == account["id"]))


async def test_a_bad_nip_is_refused_with_the_field_marked_and_nothing_created(page: Page,
                                                                               make_person):
    person: Person = await make_person(label="zly-nip", with_account=False)
    await LoginPage(page).sign_in(person.email, person.password)
    new_account = NewAccountPage(page)
    await new_account.form.fill(name="Błędny NIP s.c.", nip="123-456-78-90")
    await new_account.submit.click()

    nip = new_account.form.nip
    await expect(nip).to_have_attribute("aria-invalid", "true")
    await expect(nip).to_be_focused()
    await expect(nip).to_have_accessible_description(re.compile("To nie jest poprawny NIP"))
    await expect(nip).to_have_value("123-456-78-90")
    await expect(new_account.form.name).to_have_value("Błędny NIP s.c.")
    assert path_of(page) == "/accounts/new"
    assert await accounts_of(person) == []


async def test_two_accounts_may_carry_the_same_nip(page: Page, make_person):
    person: Person = await make_person(label="dwa-konta", with_account=False)
    await LoginPage(page).sign_in(person.email, person.password)
    await (await NewAccountPage(page).open()).create("Pierwsze Konto", GOOD_NIP)
    await AccountPage(page).new_account.click()
    card = await NewAccountPage(page).create("Drugie Konto", GOOD_NIP)
    assert await card.fact("NIP") == GOOD_NIP_STORED
    accounts = await accounts_of(person)
    assert [(a["name"], a["nip"]) for a in accounts] == [
        ("Drugie Konto", GOOD_NIP_STORED), ("Pierwsze Konto", GOOD_NIP_STORED)]
    switcher = AccountSwitcher(page)
    await switcher.open()
    await expect(switcher.options).to_have_count(2)


async def test_an_owner_adds_companies_and_finds_them_as_they_type(page: Page,
                                                                  signed_in, owner: Person):
    companies = await CompaniesPage(page).open()
    await companies.add_company("Piekarnia Pod Lipą", nip="5260250274")
    await expect(page.get_by_role("status")).to_contain_text("Dodano firmę.")
    await companies.open()
    await companies.add_company("Auto-Serwis Kowalski")
    await companies.open()
    assert await companies.names() == [
        "Auto-Serwis Kowalski", "Firma Testowa sp. z o.o.", "Piekarnia Pod Lipą"]

    await companies.search.press_sequentially("piek", delay=40)
    await expect(companies.summary).to_have_text(f"Firmy 1{DASH}1 z 1")
    assert await companies.names() == ["Piekarnia Pod Lipą"]
    await expect(page).to_have_url(re.compile(r"q=piek"))
    await companies.search.fill("526-025")
    await expect(companies.summary).to_have_text(f"Firmy 1{DASH}2 z 2")  # by NIP: the main one too

    stored = await Company.select(Company.name, Company.is_main).where(
        Company.account == owner.account["id"]).order_by(Company.name)
    assert [(c["name"], c["is_main"]) for c in stored] == [
        ("Auto-Serwis Kowalski", False), ("Firma Testowa sp. z o.o.", True),
        ("Piekarnia Pod Lipą", False)]


async def test_a_bad_company_nip_keeps_the_inline_form_and_adds_nothing(page: Page, signed_in,
                                                                        owner: Person):
    companies = await CompaniesPage(page).open()
    await companies.add.click()
    form = companies.new_form
    await form.get_by_label("Nazwa", exact=True).fill("Zły NIP")
    await form.get_by_label("NIP", exact=True).fill("1234567891")
    await form.get_by_role("button", name="Zapisz firmę").click()
    nip = companies.new_form.get_by_label("NIP", exact=True)
    await expect(nip).to_have_attribute("aria-invalid", "true")
    await expect(nip).to_be_focused()
    assert path_of(page) == "/companies"
    assert await Company.count().where(Company.account == owner.account["id"]) == 1


async def test_switching_accounts_by_keyboard_only(page: Page, make_person, server: Server):
    person: Person = await make_person(label="klawiatura", account_name="Alfa Konto")
    second = await factories.account(person.identity_id, name="Beta Konto")
    await factories.company(person.account["id"], name="Spółka Alfy")
    await factories.company(second["id"], name="Spółka Bety")
    await LoginPage(page).sign_in(person.email, person.password)
    companies = await CompaniesPage(page).open()
    assert "Spółka Alfy" in await companies.names()

    switcher = AccountSwitcher(page)
    await tab_to(page, switcher.toggle)
    await expect(switcher.toggle).to_have_attribute("aria-expanded", "false")
    await expect(switcher.panel).to_be_hidden()

    # Open, look, close with Escape: focus returns to the button.
    await page.keyboard.press("Enter")
    await expect(switcher.toggle).to_have_attribute("aria-expanded", "true")
    await expect(switcher.option("Alfa Konto")).to_be_focused()
    await expect(switcher.option("Alfa Konto")).to_have_attribute("aria-current", "true")
    await expect(switcher.option("Beta Konto")).to_have_accessible_name(
        re.compile(r"Beta Konto.*Właściciel"))
    await page.keyboard.press("Escape")
    await expect(switcher.panel).to_be_hidden()
    await expect(switcher.toggle).to_be_focused()
    await expect(switcher.toggle).to_have_attribute("aria-expanded", "false")

    # Open again, arrow down to the other account, choose it.
    await page.keyboard.press("Space")
    await expect(switcher.option("Alfa Konto")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(switcher.option("Beta Konto")).to_be_focused()
    await page.keyboard.press("ArrowUp")
    await expect(switcher.option("Alfa Konto")).to_be_focused()
    await page.keyboard.press("End")
    await expect(switcher.option("Beta Konto")).to_be_focused()
    await page.keyboard.press("Enter")

    # The same screen, now in the other account.
    await expect(page).to_have_url(server.base_url + "/companies")
    await expect(switcher.toggle).to_contain_text("Beta Konto")
    await expect(page.get_by_role("status")).to_contain_text("Zmieniono konto firmy.")
    names = await companies.names()
    assert "Spółka Bety" in names and "Spółka Alfy" not in names
    identity = await Identity.select().where(Identity.id == person.identity_id).first()
    assert identity["last_account_id"] == second["public_id"]


async def test_the_switcher_filters_as_you_type_when_there_are_many_accounts(page: Page,
                                                                            make_person):
    person: Person = await make_person(label="biuro", account_name="Biuro Rachunkowe")
    for i in range(9):
        await factories.account(person.identity_id, name=f"Klient {i:02d}")
    await LoginPage(page).sign_in(person.email, person.password)
    switcher = AccountSwitcher(page)
    await switcher.open()
    await expect(switcher.filter).to_be_focused()
    await expect(switcher.options).to_have_count(10)
    await page.keyboard.type("klient 0")
    await expect(switcher.options).to_have_count(9)
    await page.keyboard.type("7")
    await expect(switcher.options).to_have_count(1)
    await expect(switcher.panel.get_by_role("status")).to_have_text("Pasujące konta: 1")
    await page.keyboard.press("ArrowDown")
    await expect(switcher.option("Klient 07")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(switcher.toggle).to_contain_text("Klient 07")


async def test_a_company_page_switched_away_from_leads_home(page: Page, make_person,
                                                           server: Server):
    person: Person = await make_person(label="szczegoly", account_name="Konto A")
    await factories.account(person.identity_id, name="Konto B")
    await LoginPage(page).sign_in(person.email, person.password)
    await page.goto(f"/companies/{person.account['main_company_id']}")
    switcher = AccountSwitcher(page)
    await switcher.open()
    await switcher.option("Konto B").click()
    await expect(page).to_have_url(server.base_url + "/")
    await expect(switcher.toggle).to_contain_text("Konto B")


async def test_companies_of_one_account_never_reach_another(page: Page, make_person):
    alice: Person = await make_person(label="alicja", account_name="Konto Alicji")
    secret = await factories.company(alice.account["id"], name="Tajna Spółka Alicji",
                                     nip="7740001454")
    bob: Person = await make_person(label="bogdan", account_name="Konto Bogdana")
    await LoginPage(page).sign_in(bob.email, bob.password)

    companies = await CompaniesPage(page).open()
    assert await companies.names() == ["Konto Bogdana"]
    await companies.search.fill("Tajna")
    await expect(companies.summary).to_have_text("Żadna firma nie pasuje do wyszukiwania.")
    await companies.search.fill("7740001454")
    await expect(companies.summary).to_have_text("Żadna firma nie pasuje do wyszukiwania.")

    for path in (f"/companies/{secret}", f"/companies/{secret}/edit",
                 f"/companies/{alice.account['main_company_id']}"):
        response = await page.goto(path)
        assert response is not None and response.status == 404, path
        await expect(page.get_by_role("heading", level=1)).to_have_text("Nie znaleziono")
        await expect(page.get_by_text("Tajna Spółka Alicji")).to_have_count(0)
    # Posting to another account's company changes nothing either.
    token = await page.evaluate(
        "() => JSON.parse(document.body.getAttribute('hx-headers'))['x-csrftoken']")
    response = await page.request.post(f"/companies/{secret}", form={"name": "Przejęta"},
                                       headers={"x-csrftoken": token}, max_redirects=0)
    assert response.status == 404
    switcher = AccountSwitcher(page)
    await switcher.open()
    await expect(switcher.option("Konto Alicji")).to_have_count(0)
    assert (await Company.select(Company.name).where(Company.id == secret).first())["name"] == (
        "Tajna Spółka Alicji")


async def test_accessibility_of_the_account_and_company_screens(page: Page, make_person):
    person: Person = await make_person(label="axe", account_name="Konto Dostępne")
    await factories.company(person.account["id"], name="Druga Spółka", nip="7740001454")
    await LoginPage(page).sign_in(person.email, person.password)
    for path in ("/accounts/new", "/account", "/account/edit", "/companies", "/companies/new",
                 f"/companies/{person.account['main_company_id']}", "/accounts"):
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await axe.assert_no_serious_violations(page)
    # The inline forms and the switcher, open.
    await page.goto("/companies")
    await CompaniesPage(page).add.click()
    await expect(CompaniesPage(page).new_form).to_be_visible()
    await axe.assert_no_serious_violations(page)
    await page.goto("/account")
    await AccountPage(page).edit.click()
    await expect(page.get_by_role("form", name="Edytuj dane konta")).to_be_visible()
    await axe.assert_no_serious_violations(page)
    switcher = AccountSwitcher(page)
    await switcher.open()
    await axe.assert_no_serious_violations(page)
    assert await is_focused(switcher.option("Konto Dostępne"))


async def test_a_second_company_with_the_same_name_and_nip_is_confirmed_first(
        page: Page, signed_in, owner: Person):
    await factories.company(owner.account["id"], name="Piekarnia Pod Lipą", nip="7740001454")
    companies = await CompaniesPage(page).open()
    await companies.add.click()
    form = companies.new_form
    await form.get_by_label("Nazwa", exact=True).fill("Piekarnia pod Lipą")
    await form.get_by_label("NIP", exact=True).fill("774-000-14-54")
    await form.get_by_role("button", name="Zapisz firmę").click()
    warning = companies.new_form.get_by_role("alert")
    await expect(warning).to_contain_text("W tym koncie jest już firma o tej nazwie i tym NIP-ie")
    await expect(warning).to_be_focused()
    await axe.assert_no_serious_violations(page)
    assert await Company.count().where(Company.account == owner.account["id"]) == 2
    # Keyboard only: from the warning to "Dodaj mimo to".
    add_anyway = companies.new_form.get_by_role("button", name="Dodaj mimo to")
    for _ in range(12):
        await page.keyboard.press("Tab")
        if await add_anyway.evaluate("button => button === document.activeElement"):
            break
    await expect(add_anyway).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Piekarnia pod Lipą", level=1)).to_be_visible()
    assert await Company.count().where(Company.account == owner.account["id"]) == 3
