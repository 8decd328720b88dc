"""Accounting offices, as the office, its people and the client live it: the office admin asks
(keyboard only), the client's owner approves with a lower ceiling, the office admin assigns an
employee to two companies (above the ceiling refused), the employee switches to the client and
edits one company and is refused the other, the client sees the employee named in its audit
log, a removed office employee loses the client at the next click, and the client ends it.
axe-core checks every new screen and state; both screens fit 320 px without sideways scroll.
The database is checked after the UI."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Browser, Page, expect

from e2e import axe
from e2e.data import Person
from e2e.pages import AccountSwitcher, LoginPage, path_of, tab_to
from e2e.server import Server
from portal.tables import Account, Delegation, DelegationAssignment, DelegationCompany, Membership
from portal.testing import factories


async def new_page(browser: Browser, server: Server) -> Page:
    context = await browser.new_context(base_url=server.base_url, locale="pl-PL",
                                        viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    return await context.new_page()


async def no_sideways_scroll(page: Page) -> None:
    await page.set_viewport_size({"width": 320, "height": 800})
    await page.reload()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, (page.url, width)
    await page.set_viewport_size({"width": 1280, "height": 800})


async def test_an_office_gets_a_clients_approval_assigns_people_and_loses_it(
    page: Page, browser: Browser, server: Server, make_person
):
    tag = uuid.uuid4().hex[:6]
    office_name = f"Biuro Rachunkowe X {tag}"
    admin: Person = await make_person(label="biuro", account_name=office_name,
                                      first_name="Ewa", last_name="Biurowa")
    await Account.update({Account.is_accounting_office: True}).where(
        Account.id == admin.account["id"])
    anna: Person = await make_person(label="anna", with_account=False, first_name="Anna",
                                     last_name="Nowak")
    jan: Person = await make_person(label="jan", with_account=False, first_name="Jan",
                                    last_name="Odchodzący")
    await factories.membership(anna.identity_id, admin.account["id"])
    jan_membership = await factories.membership(jan.identity_id, admin.account["id"])
    owner: Person = await make_person(label="klient", account_name=f"Piekarnia {tag}")
    client = owner.account
    shop = await factories.company(client["id"], name=f"Sklep {tag}")
    store = await factories.company(client["id"], name=f"Magazyn {tag}")

    # --- the office admin asks, with the keyboard only --------------------------------------
    await LoginPage(page).sign_in(admin.email, admin.password)
    navigation = page.get_by_role("navigation", name="Nawigacja główna")
    await tab_to(page, navigation.get_by_role("link", name="Klienci biura", exact=True))
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/office/clients$"))
    await expect(page.get_by_role("heading", name="Klienci biura", level=1)).to_be_visible()
    await axe.assert_no_serious_violations(page)

    field = page.get_by_label("ID konta lub NIP klienta", exact=True)
    send = page.get_by_role("button", name="Wyślij prośbę", exact=True)
    await tab_to(page, send)
    await page.keyboard.press("Enter")  # nothing typed: the field says what is missing
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(field).to_have_accessible_description(re.compile("Podaj ID konta klienta"))
    await axe.assert_no_serious_violations(page)
    assert await Delegation.count().where(Delegation.office == admin.account["id"]) == 0

    await tab_to(page, field)
    await page.keyboard.type(client["public_id"])
    await tab_to(page, page.get_by_label("Najwyższy poziom dostępu", exact=True))
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")  # Podgląd → Edycja → Zarządzanie
    await tab_to(page, send)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Jeśli takie konto istnieje")
    pending = page.get_by_role("article", name=client["public_id"])
    await expect(pending).to_be_visible()
    await expect(pending).not_to_contain_text(f"Piekarnia {tag}")  # not named before approval
    await axe.assert_no_serious_violations(page)
    delegation = await Delegation.select().where(Delegation.client == client["id"]).first()
    assert delegation["state"] == "pending" and delegation["level"] == "manage"

    # --- the client's owner approves two companies at a lower ceiling ----------------------
    owner_page = await new_page(browser, server)
    await LoginPage(owner_page).sign_in(owner.email, owner.password)
    await owner_page.goto("/account")
    await owner_page.get_by_role("link", name="Dostęp biura rachunkowego", exact=True).click()
    await expect(owner_page.get_by_role("heading", name="Dostęp biura rachunkowego",
                                        level=1)).to_be_visible()
    await axe.assert_no_serious_violations(owner_page)
    request = owner_page.get_by_role("article", name=office_name)
    await request.get_by_label(f"Piekarnia {tag}", exact=True).uncheck()
    await request.get_by_label("Najwyższy poziom dostępu", exact=True).select_option(
        label="Edycja")
    await request.get_by_role("button", name=re.compile("^Zgódź się")).click()
    await expect(owner_page.get_by_role("status")).to_contain_text("Zgodzono się")
    active = owner_page.get_by_role("article", name=office_name)
    await expect(active).to_contain_text(f"Sklep {tag} — Edycja")
    await axe.assert_no_serious_violations(owner_page)
    await no_sideways_scroll(owner_page)
    ceilings = {r["company"]: r["level"] for r in await DelegationCompany.select(
        DelegationCompany.company, DelegationCompany.level).where(
        DelegationCompany.delegation == delegation["id"])}
    assert ceilings == {shop: "edit", store: "edit"}

    # --- the office admin assigns Anna to two companies; above the ceiling is refused ------
    await page.reload()
    clients = page.get_by_role("article", name=f"Piekarnia {tag}")
    await expect(clients).to_contain_text("Nikt z biura nie ma jeszcze dostępu")
    form = clients.get_by_role("form", name="Przydziel osobę biura")
    await form.get_by_label("Osoba biura", exact=True).select_option(label=anna.email)
    await form.get_by_label(re.compile(f"Sklep {tag}")).check()
    await form.get_by_label("Poziom dostępu", exact=True).select_option(label="Zarządzanie")
    await form.get_by_role("button", name=re.compile("^Przydziel")).click()
    level = page.get_by_role("form", name="Przydziel osobę biura").get_by_label(
        "Poziom dostępu", exact=True)
    await expect(level).to_have_attribute("aria-invalid", "true")
    await expect(level).to_have_accessible_description(
        re.compile("Klient pozwolił na niższy poziom"))
    await axe.assert_no_serious_violations(page)
    assert await DelegationAssignment.count().where(
        DelegationAssignment.delegation == delegation["id"]) == 0
    for person, company, level_label in ((anna, "Sklep", "Edycja"),
                                         (anna, "Magazyn", "Podgląd"),
                                         (jan, "Sklep", "Podgląd")):
        form = page.get_by_role("article", name=f"Piekarnia {tag}").get_by_role(
            "form", name="Przydziel osobę biura")
        await form.get_by_label("Osoba biura", exact=True).select_option(label=person.email)
        await form.get_by_label(re.compile(f"{company} {tag}")).check()
        await form.get_by_label("Poziom dostępu", exact=True).select_option(label=level_label)
        await form.get_by_role("button", name=re.compile("^Przydziel")).click()
        await expect(page.get_by_role("status")).to_contain_text("Zapisano przydział firm.")
    await expect(page.get_by_role("article", name=f"Piekarnia {tag}")).to_contain_text(
        f"Anna Nowak · Magazyn {tag} — Podgląd")
    await axe.assert_no_serious_violations(page)
    await no_sideways_scroll(page)

    # --- Anna switches to the client, edits the shop, is refused the store -----------------
    anna_page = await new_page(browser, server)
    await LoginPage(anna_page).sign_in(anna.email, anna.password)
    switcher = AccountSwitcher(anna_page)
    await switcher.toggle.click()
    group = switcher.panel.get_by_role("list", name=f"Klienci biura {office_name}")
    await expect(group).to_be_visible()
    await axe.assert_no_serious_violations(anna_page)
    await group.get_by_role("button", name=re.compile(f"^Piekarnia {tag}")).click()
    await expect(switcher.toggle).to_contain_text(f"Piekarnia {tag}")
    await expect(switcher.toggle).to_contain_text(f"przez biuro {office_name}")
    await anna_page.get_by_role("navigation", name="Nawigacja główna").get_by_role(
        "link", name="Firmy", exact=True).click()
    main = anna_page.get_by_role("main")
    await expect(main.get_by_role("link", name=f"Sklep {tag}")).to_be_visible()
    await expect(main.get_by_role("link", name=f"Magazyn {tag}")).to_be_visible()
    await expect(main.get_by_role("link", name=f"Piekarnia {tag}")).to_have_count(0)
    await axe.assert_no_serious_violations(anna_page)
    await main.get_by_role("link", name=f"Sklep {tag}").click()
    await anna_page.get_by_role("link", name="Edytuj dane firmy", exact=True).click()
    await anna_page.get_by_label("Nazwa", exact=True).fill(f"Sklep {tag} Nowy")
    await anna_page.get_by_role("button", name="Zapisz zmiany", exact=True).click()
    await expect(anna_page.get_by_role("heading", name=f"Sklep {tag} Nowy",
                                       level=1)).to_be_visible()
    await anna_page.goto(f"/companies/{store}")
    await expect(anna_page.get_by_role("link", name="Edytuj dane firmy")).to_have_count(0)
    response = await anna_page.goto(f"/companies/{store}/edit")
    assert response is not None and response.status == 403
    for path in ("/users", "/api-keys", "/billing"):
        refused = await anna_page.goto(path)
        assert refused is not None and refused.status == 403, path

    # --- the client sees Anna named with the office in its audit log -----------------------
    await owner_page.goto("/users/audit")
    await expect(owner_page.get_by_role("main")).to_contain_text(
        f"Anna Nowak ({office_name})")
    await axe.assert_no_serious_violations(owner_page)

    # --- Jan is removed from the office: his next click finds nothing of the client --------
    jan_page = await new_page(browser, server)
    await LoginPage(jan_page).sign_in(jan.email, jan.password)
    jan_switcher = AccountSwitcher(jan_page)
    await jan_switcher.toggle.click()
    await jan_switcher.panel.get_by_role("button", name=re.compile(f"^Piekarnia {tag}")).click()
    await expect(jan_switcher.toggle).to_contain_text(f"Piekarnia {tag}")
    await jan_page.goto(f"/companies/{shop}")
    await expect(jan_page.get_by_role("heading", name=f"Sklep {tag} Nowy")).to_be_visible()
    await Membership.delete().where(Membership.id == jan_membership)
    gone = await jan_page.goto(f"/companies/{shop}")
    # No account left at all: he is led to create one; the shop is nowhere.
    assert gone is not None and gone.status == 200 and path_of(jan_page) == "/accounts/new"
    await expect(jan_page.get_by_role("main")).not_to_contain_text(f"Sklep {tag}")

    # --- the client ends it: Anna's next click is refused ----------------------------------
    await owner_page.goto("/account/offices")
    await owner_page.get_by_role("article", name=office_name).get_by_role(
        "button", name=re.compile("^Zakończ dostęp")).click()
    await expect(owner_page.get_by_role("status")).to_contain_text("Zakończono dostęp biura.")
    await expect(owner_page.get_by_role("main")).to_contain_text("Zakończone i odrzucone")
    await axe.assert_no_serious_violations(owner_page)
    refused = await anna_page.goto(f"/companies/{shop}")
    assert refused is not None and refused.status == 404
    assert (await Delegation.select(Delegation.state).where(
        Delegation.id == delegation["id"]).first())["state"] == "ended"
    for other in (owner_page, anna_page, jan_page):
        await other.context.close()

