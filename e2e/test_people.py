"""People of an account, as an admin and the people they add live it: adding an existing ID
and a new email (invitation → registration through the mailed link → the account is in the new
person's switcher), the same email refused, levels changed with the keyboard in the matrix,
removal reaching the other person's open browser at their next click, the last owner kept.
The database is checked after the UI; axe-core checks every screen of the area."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from playwright.async_api import Browser, Page, expect

from e2e import axe, mailbox
from e2e.data import Person, unique_email
from e2e.pages import (
    AccountSwitcher,
    LoginPage,
    PeoplePage,
    PersonPage,
    path_of,
    tab_to,
)
from e2e.server import Server
from portal.tables import CompanyAccess, Identity, Invitation, Membership
from portal.testing import factories

DASH = "\u2013"
NEW_PASSWORD = "siedem sów siedzi na starym dębie"


async def membership(person_id, account_id) -> dict | None:
    return await Membership.select().where(
        (Membership.identity == person_id) & (Membership.account == account_id)).first()


async def test_an_admin_invites_an_existing_id_and_a_new_email_alike(
    page: Page, browser: Browser, server: Server, make_person
):
    admin: Person = await make_person(label="admin", role="admin", account_name="Konto Zespołu")
    account = admin.account
    existing: Person = await make_person(label="istniejacy", with_account=False)
    newcomer = unique_email("nowy")
    await LoginPage(page).sign_in(admin.email, admin.password)

    people = await PeoplePage(page).open()
    await axe.assert_no_serious_violations(page)
    await people.add.click()
    await expect(people.add_form).to_be_visible()
    await axe.assert_no_serious_violations(page)

    # An existing ID: an invitation, exactly as for an email without one (the answer must
    # not tell who has an ID), with the level chosen in the matrix.
    await people.add_form.get_by_label("E-mail", exact=True).fill(existing.email.upper())
    await people.add_form.get_by_label("Rola", exact=True).select_option(label="Użytkownik")
    await people.add_form.get_by_role("radiogroup", name=re.compile("^Konto Zespołu")).get_by_role(
        "radio", name="Podgląd", exact=True).check()
    await people.add_form.get_by_role("button", name="Dodaj osobę", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("Wysłaliśmy zaproszenie")
    await expect(people.row(existing.email)).to_contain_text("Zaproszony")
    assert await membership(existing.identity_id, account["id"]) is None
    assert "Konto Zespołu" in await mailbox.latest(existing.email)

    # The same email again (any case): refused, the field marked and focused.
    await people.add.click()
    email = people.add_form.get_by_label("E-mail", exact=True)
    await email.fill(existing.email)
    await people.add_form.get_by_role("button", name="Dodaj osobę", exact=True).click()
    await expect(email).to_have_attribute("aria-invalid", "true")
    await expect(email).to_be_focused()
    await expect(email).to_have_accessible_description(
        re.compile("Ta osoba ma już zaproszenie do tego konta"))
    await axe.assert_no_serious_violations(page)
    assert await Invitation.count().where(Invitation.account == account["id"]) == 1

    # A new email: an invitation too.
    await email.fill(newcomer)
    await people.add_form.get_by_label("Rola", exact=True).select_option(label="Administrator")
    await people.add_form.get_by_role("button", name="Dodaj osobę", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("Wysłaliśmy zaproszenie")
    await expect(people.row(newcomer)).to_contain_text("Zaproszony")

    # The existing person signs in: the invitation waits in their switcher; they accept it.
    other_context = await browser.new_context(base_url=server.base_url, locale="pl-PL")
    try:
        other = await other_context.new_page()
        await LoginPage(other).sign_in(existing.email, existing.password)
        # No account of their own yet: /accounts/new offers the invitation.
        await expect(other).to_have_url(re.compile("/accounts/new$"))
        offers = other.get_by_role("region", name="Zaproszenia do kont")
        await expect(offers).to_contain_text("Konto Zespołu")
        await offers.get_by_role("button", name=re.compile("^Przyjmij")).click()
        assert await AccountSwitcher(other).current() == "Konto Zespołu"
        added = await membership(existing.identity_id, account["id"])
        assert added is not None and added["role"] == "member"
        assert [r["level"] for r in await CompanyAccess.select().where(
            CompanyAccess.membership == added["id"])] == ["view"]

        # The new person registers through the mailed link, in a browser of their own.
        await other_context.clear_cookies()
        link = await mailbox.link(newcomer, "/invitations/")
        await other.goto(link)
        await expect(other.get_by_role("heading", name="Zaproszenie do konta firmy")
                     ).to_be_visible()
        await expect(other.get_by_role("main")).to_contain_text("Konto Zespołu")
        await axe.assert_no_serious_violations(other)
        await other.get_by_label("Nowe hasło", exact=True).fill(NEW_PASSWORD)
        await other.get_by_label("Powtórz hasło", exact=True).fill(NEW_PASSWORD)
        await other.get_by_role("button", name="Przyjmij zaproszenie").click()
        await expect(other).to_have_url(server.base_url + "/")
        await expect(other.get_by_role("status")).to_contain_text("Dołączono do konta firmy.")
        switcher = AccountSwitcher(other)
        assert await switcher.current() == "Konto Zespołu"
        await switcher.open()
        await expect(switcher.option("Konto Zespołu")).to_have_accessible_name(
            re.compile("Administrator"))
        # The link worked once.
        await other.goto(link)
        await expect(other.get_by_role("heading", name="Zaproszenie nieważne")).to_be_visible()
    finally:
        await other_context.close()
    joined = await Identity.select().where(Identity.email == newcomer).first()
    assert joined["email_verified_at"] is not None
    assert (await membership(joined["id"], account["id"]))["role"] == "admin"
    assert (await Invitation.select().where(Invitation.email == newcomer).first())[
        "state"] == "accepted"


async def test_levels_are_changed_with_the_keyboard_in_the_matrix(page: Page, make_person):
    owner: Person = await make_person(label="klawiatura", account_name="Konto Klawiatury")
    account = owner.account
    bakery = await factories.company(account["id"], name="Piekarnia Pod Lipą")
    member: Person = await make_person(label="pracownik", with_account=False)
    membership_id = await factories.membership(member.identity_id, account["id"], "member",
                                               {bakery: "view"})
    await LoginPage(page).sign_in(owner.email, owner.password)
    people = await PeoplePage(page).open()

    # From the list to the person's page, by keyboard.
    manage = people.row(member.email).get_by_role("link", name=re.compile("^Zarządzaj"))
    await tab_to(page, manage, max_presses=80)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"/users/{membership_id}$"))
    person = PersonPage(page)
    await axe.assert_no_serious_violations(page)

    # Tab lands on each company's chosen level; the arrow keys move between levels.
    first = person.matrix.option("Konto Klawiatury", "Brak dostępu")
    await tab_to(page, first)
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("ArrowRight")
    await expect(person.matrix.option("Konto Klawiatury", "Edycja")).to_be_focused()
    await expect(person.matrix.option("Konto Klawiatury", "Edycja")).to_be_checked()
    await page.keyboard.press("Tab")
    await expect(person.matrix.option("Piekarnia Pod Lipą", "Podgląd")).to_be_focused()
    await page.keyboard.press("ArrowLeft")
    await expect(person.matrix.option("Piekarnia Pod Lipą", "Brak dostępu")).to_be_checked()
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("ArrowRight")
    await expect(person.matrix.option("Piekarnia Pod Lipą", "Zarządzanie")).to_be_checked()
    await page.keyboard.press("Tab")
    await expect(person.save_access).to_be_focused()
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("status")).to_contain_text("Zapisano dostęp do firm.")
    heading = page.get_by_role("heading", name="Dostęp do firm")
    await expect(heading).to_be_focused()
    assert await person.matrix.level("Konto Klawiatury") == "Edycja"
    assert await person.matrix.level("Piekarnia Pod Lipą") == "Zarządzanie"
    levels = {r["company"]: r["level"] for r in await CompanyAccess.select().where(
        CompanyAccess.membership == membership_id)}
    assert levels == {account["main_company_id"]: "edit", bakery: "manage"}
    await axe.assert_no_serious_violations(page)


async def test_removal_reaches_the_other_persons_open_browser_at_their_next_click(
    page: Page, browser: Browser, server: Server, make_person
):
    owner: Person = await make_person(label="usuwa", account_name="Konto Usuwającego")
    member: Person = await make_person(label="usuwany", with_account=False)
    membership_id = await factories.membership(member.identity_id, owner.account["id"], "member",
                                               {owner.account["main_company_id"]: "edit"})
    other_context = await browser.new_context(base_url=server.base_url, locale="pl-PL")
    try:
        other = await other_context.new_page()
        await LoginPage(other).sign_in(member.email, member.password)
        await other.goto("/companies")
        await expect(other.get_by_role("main")).to_contain_text("Konto Usuwającego")

        await LoginPage(page).sign_in(owner.email, owner.password)
        person = await PersonPage(page).open(membership_id)
        await person.remove.click()
        form = page.get_by_role("form", name=re.compile("^Usunąć"))
        await expect(form).to_be_visible()
        await axe.assert_no_serious_violations(page)
        await person.confirm_remove.click()
        await expect(page).to_have_url(re.compile(r"/users$"))
        await expect(page.get_by_role("status")).to_contain_text("Usunięto osobę z konta.")
        await expect(page.get_by_role("main")).not_to_contain_text(member.email)

        # The removed person's browser is still open on the company list: the next click.
        await other.get_by_role("navigation", name="Nawigacja główna").get_by_role(
            "link", name="Firmy", exact=True).click()
        await expect(other).to_have_url(re.compile(r"/accounts/new$"))
        await expect(other.get_by_role("main")).not_to_contain_text("Konto Usuwającego")
    finally:
        await other_context.close()
    assert await membership(member.identity_id, owner.account["id"]) is None


async def test_the_last_owner_can_be_neither_removed_nor_demoted(page: Page, browser: Browser,
                                                                 server: Server, make_person):
    owner: Person = await make_person(label="jedyny", account_name="Konto Jedynego")
    admin: Person = await make_person(label="admin-jedynego", with_account=False)
    await factories.membership(admin.identity_id, owner.account["id"], "admin")
    own = await membership(owner.identity_id, owner.account["id"])
    await LoginPage(page).sign_in(owner.email, owner.password)
    person = await PersonPage(page).open(own["id"])
    await expect(person.remove).to_have_count(0)  # it is you: leave instead
    await person.role.select_option(label="Administrator")
    await person.save_role.click()
    await expect(person.role).to_have_attribute("aria-invalid", "true")
    await expect(person.role).to_be_focused()
    await expect(person.role).to_have_accessible_description(
        re.compile("co najmniej jednego właściciela"))
    await axe.assert_no_serious_violations(page)
    await page.goto("/users/leave")
    await expect(page.get_by_role("main")).to_contain_text("Jesteś jedynym właścicielem")
    await expect(page.get_by_role("button", name="Opuść konto")).to_have_count(0)
    await axe.assert_no_serious_violations(page)

    # An admin may not touch the owner at all.
    other_context = await browser.new_context(base_url=server.base_url, locale="pl-PL")
    try:
        other = await other_context.new_page()
        await LoginPage(other).sign_in(admin.email, admin.password)
        admin_view = await PersonPage(other).open(own["id"])
        await expect(other.get_by_role("main")).to_contain_text(
            "Rolę właściciela może zmienić tylko inny właściciel.")
        await expect(admin_view.remove).to_have_count(0)
        await expect(admin_view.save_role).to_have_count(0)
        token = await other.evaluate(
            "() => JSON.parse(document.body.getAttribute('hx-headers'))['x-csrftoken']")
        forced = await other.request.post(f"/users/{own['id']}/role", form={"role": "member"},
                                          headers={"x-csrftoken": token}, max_redirects=0)
        assert forced.status == 403
    finally:
        await other_context.close()
    assert (await membership(owner.identity_id, owner.account["id"]))["role"] == "owner"


async def test_accessibility_of_every_people_screen(page: Page, make_person):
    owner: Person = await make_person(label="dostepnosc", account_name="Konto Dostępne")
    member: Person = await make_person(label="czlonek-axe", with_account=False)
    membership_id = await factories.membership(member.identity_id, owner.account["id"], "member")
    await LoginPage(page).sign_in(owner.email, owner.password)
    await (await PeoplePage(page).open()).add_person(unique_email("zaproszony-axe"))
    await expect(page.get_by_role("status")).to_contain_text("Wysłaliśmy zaproszenie")
    for path in ("/users", "/users/new", f"/users/{membership_id}",
                 f"/users/{membership_id}/remove", "/users/leave", "/users/audit",
                 "/users/audit?what=invitation", "/account"):
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await axe.assert_no_serious_violations(page)
    # The account's MFA policy form with an error on it.
    await page.goto("/account")
    await page.get_by_label("Wymagana dowolna metoda (aplikacja lub kod e-mail)").check()
    await page.get_by_role("button", name="Zapisz wymóg").click()
    policy = page.get_by_label("Wymagana dowolna metoda (aplikacja lub kod e-mail)")
    await expect(policy).to_have_attribute("aria-invalid", "true")
    await axe.assert_no_serious_violations(page)
    # Invitations waiting in the switcher of someone who has an account already.
    inviter: Person = await make_person(label="zapraszajacy", account_name="Konto Zapraszające")
    await Invitation.insert(Invitation(
        account=inviter.account["id"], email=owner.email, token_hash=uuid.uuid4().hex * 2,
        role="member", expires_at=datetime.now(UTC) + timedelta(days=1)))
    await page.goto("/users")
    switcher = AccountSwitcher(page)
    await switcher.open()
    offers = switcher.panel.get_by_role("region", name="Zaproszenia do kont")
    await expect(offers).to_contain_text("Konto Zapraszające")
    await axe.assert_no_serious_violations(page)
    await offers.get_by_role("button", name=re.compile("^Przyjmij")).click()
    await expect(switcher.toggle).to_contain_text("Konto Zapraszające")
    assert path_of(page) == "/"
    assert await membership(owner.identity_id, inviter.account["id"]) is not None


async def test_the_people_list_is_paged_by_keyboard_by_key(page: Page, make_person):
    """An office with 60 people pages through them by name with the keyboard alone: forwards
    twice and back once, nobody shown twice, the address bookmarkable at every step."""
    owner: Person = await make_person(label="biuro", account_name="Biuro Stronicowane")
    for n in range(60):
        person = await factories.identity(unique_email(f"osoba{n:02d}"), first_name="Anna",
                                          last_name=("Nowak", "Łoś", "Zając")[n % 3])
        await factories.membership(person, owner.account["id"], "member")
    await LoginPage(page).sign_in(owner.email, owner.password)
    people = await PeoplePage(page).open("sort=name")
    await expect(people.summary).to_have_text(f"Osoby 1{DASH}25 z 61")

    async def shown() -> list[str]:
        return [await cell.inner_text() for cell in
                await people.table.get_by_role("rowheader").all()]

    pages = [await shown()]
    for expected in (f"Osoby 26{DASH}50 z 61", f"Osoby 51{DASH}61 z 61"):
        following = page.get_by_role("link", name="Następna strona", exact=True)
        await tab_to(page, following, max_presses=200)
        await page.keyboard.press("Enter")
        await expect(people.summary).to_have_text(expected)
        assert "after=" in page.url  # the link's cursor: read by key, and bookmarkable
        pages.append(await shown())
    everyone = [name for shown_page in pages for name in shown_page]
    assert len(everyone) == len(set(everyone)) == 61
    previous = page.get_by_role("link", name="Poprzednia strona", exact=True)
    await tab_to(page, previous, max_presses=200)
    await page.keyboard.press("Enter")
    await expect(people.summary).to_have_text(f"Osoby 26{DASH}50 z 61")
    assert await shown() == pages[1]
    await page.reload()  # the address alone (no JavaScript state) gives the same page
    await expect(people.summary).to_have_text(f"Osoby 26{DASH}50 z 61")
    assert await shown() == pages[1]
    await axe.assert_no_serious_violations(page)
