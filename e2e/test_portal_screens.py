"""Home, applications, customer panel, support centre and back office (issue 8), as people use
them: the home page before and after opening an application through the portal (single sign-on
with the account preselected), a trial that appears in "Moje produkty", billing data with a bad
then a good NIP, a ticket answered by support staff in a second browser, staff deleting an ID
that then cannot sign in, the support flow by keyboard only, and axe on every screen. The
database is checked after the UI."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from playwright.async_api import Browser, Page, expect

from e2e import axe, mailbox
from e2e.data import Person, unique_email
from e2e.pages import Layout, LoginPage, is_focused, path_of, tab_to
from e2e.server import Server, free_port
from e2e.test_single_sign_on import register_app, relying_party
from portal.services import catalogue
from portal.tables import (
    Application,
    BillingProfile,
    Identity,
    OAuthClient,
    Order,
    OrderItem,
    RecentApplication,
    Subscription,
    Ticket,
    TicketMessage,
)
from portal.testing import factories

BAD_NIP = "123-456-78-90"
GOOD_NIP = "526-025-02-74"


@pytest.fixture(autouse=True)
async def catalogue_ready(engine) -> None:
    """The migration seeds the catalogue; the tests/ suite may have emptied it since."""
    await catalogue.seed()


async def make_staff() -> Person:
    email = unique_email("wsparcie")
    identity_id = await factories.identity(email, factories.PASSWORD, is_staff=True,
                                           first_name="Wiktor", last_name="Wsparcie")
    return Person(email=email, password=factories.PASSWORD, identity_id=identity_id,
                  account=None)


def main(page: Page):
    return page.get_by_role("main")


# --- home and applications -----------------------------------------------------------------------


@pytest.fixture
async def sso_app(server: Server) -> AsyncIterator[dict]:
    """A catalogue application every account has, signing people in through the portal: a
    relying party on its own port, registered as an OIDC client linked to the entry."""
    port = free_port()
    name = f"Aplikacja testowa {uuid.uuid4().hex[:6]}"
    slug = "test-" + uuid.uuid4().hex[:10]
    base = f"http://127.0.0.1:{port}"
    app_id = (await Application.insert(Application(
        slug=slug, name=name, category="knowledge", description="Aplikacja do testów.",
        included=True, open_url=base + "/login", position=1000,
    )).returning(Application.id))[0]["id"]
    client_id, secret = await register_app(name, port)
    await OAuthClient.update({OAuthClient.application: app_id}).where(
        OAuthClient.client_id == client_id)
    try:
        with relying_party(server, client_id, secret, port, name) as url:
            yield {"slug": slug, "name": name, "url": url, "id": app_id}
    finally:
        await Application.delete().where(Application.id == app_id)


async def test_home_for_a_new_person_then_an_app_opened_through_the_portal(
        page: Page, make_person, sso_app: dict):
    person: Person = await make_person(label="domowa")
    await LoginPage(page).sign_in(person.email, person.password)
    assert path_of(page) == "/"
    recent = main(page).get_by_role("region", name="Ostatnio używane aplikacje")
    await expect(recent).to_contain_text("Brak ostatnio używanych aplikacji")
    await expect(main(page).get_by_role("region", name="Szybki dostęp")).to_be_visible()
    await expect(main(page).get_by_role("heading", name=re.compile("^Wypróbuj za darmo"))
                 ).to_be_visible()
    await axe.assert_no_serious_violations(page)

    await Layout(page).nav_link("Aplikacje i usługi").click()
    await main(page).get_by_role("button", name=f"Otwórz {sso_app['name']}").click()
    # One click: the application signs the person in through the portal, account preselected.
    await expect(page).to_have_url(sso_app["url"] + "/")
    await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
    await expect(page.locator("#account")).to_have_text(f"Konto: {person.account['public_id']}")

    await page.goto("/")
    recent = main(page).get_by_role("region", name="Ostatnio używane aplikacje")
    await expect(recent.get_by_role("button", name=sso_app["name"])).to_be_visible()
    await expect(recent).not_to_contain_text("Brak ostatnio używanych aplikacji")
    assert await RecentApplication.exists().where(
        (RecentApplication.identity == person.identity_id)
        & (RecentApplication.application == sso_app["id"]))
    # ...and it opens again from there.
    await recent.get_by_role("button", name=sso_app["name"]).click()
    await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")


async def test_start_a_trial_and_see_it_in_my_products(page: Page, make_person):
    person: Person = await make_person(label="proba")
    await LoginPage(page).sign_in(person.email, person.password)
    await page.goto("/apps")
    await axe.assert_no_serious_violations(page)
    # The category filter swaps the list in place (and works without JS as a GET form).
    await main(page).get_by_label("Kategoria", exact=True).select_option(label="Kadry i płace")
    await expect(page).to_have_url(re.compile(r"/apps\?category=hr"))
    await expect(main(page).get_by_role("heading", name="e-Płace", level=2)).to_be_visible()
    await expect(main(page).get_by_role("heading", name="e-Faktury", level=2)).to_have_count(0)
    await expect(page.get_by_role("status")).to_contain_text("Aplikacje: 1")

    await main(page).get_by_role("button", name="Wypróbuj e-Płace").click()
    await expect(page).to_have_url(re.compile(r"/products$"))
    await expect(page.get_by_role("status")).to_contain_text("Rozpoczęto okres próbny aplikacji.")
    row = main(page).get_by_role("row", name=re.compile("e-Płace"))
    await expect(row).to_contain_text("Okres próbny")
    (subscription,) = await Subscription.select().where(
        Subscription.account == person.account["id"])
    assert subscription["state"] == "trial"
    await expect(row).to_contain_text(subscription["ends_on"].strftime("%d.%m.%Y"))
    await axe.assert_no_serious_violations(page)
    assert "rozpoczął się okres próbny aplikacji e-Płace" in await mailbox.latest(person.email)

    await page.goto("/apps?category=hr")
    await expect(main(page).get_by_role("button", name="Otwórz e-Płace")).to_be_visible()
    await expect(main(page).get_by_role("button", name="Wypróbuj e-Płace")).to_have_count(0)


# --- customer panel ------------------------------------------------------------------------------


async def test_billing_data_with_a_bad_then_a_good_nip(page: Page, make_person):
    person: Person = await make_person(label="faktura", account_name="Faktury Testowe")
    await LoginPage(page).sign_in(person.email, person.password)
    await Layout(page).nav_link("Dane do faktury").click()
    await expect(main(page)).to_contain_text("Faktury Testowe")
    await axe.assert_no_serious_violations(page)
    await main(page).get_by_role("link", name="Edytuj dane do faktury").click()
    form = main(page).get_by_role("form", name="Edytuj dane do faktury")
    await expect(form).to_be_visible()
    nip = form.get_by_label("NIP", exact=True)
    await nip.fill(BAD_NIP)
    await form.get_by_label("E-mail do faktur", exact=True).fill("faktury@example.com")
    await form.get_by_role("button", name="Zapisz dane do faktury").click()
    await expect(nip).to_have_attribute("aria-invalid", "true")
    await expect(nip).to_be_focused()
    await expect(nip).to_have_accessible_description(re.compile("To nie jest poprawny NIP"))
    await expect(nip).to_have_value(BAD_NIP)
    await axe.assert_no_serious_violations(page)
    assert not await BillingProfile.exists().where(
        BillingProfile.account == person.account["id"])

    await nip.fill(GOOD_NIP)
    await form.get_by_role("button", name="Zapisz dane do faktury").click()
    card = main(page).get_by_role("region", name="Dane nabywcy na fakturach")
    await expect(card).to_contain_text("5260250274")
    await expect(page.get_by_role("status")).to_contain_text("Zapisano dane do faktury.")
    row = await BillingProfile.select().where(
        BillingProfile.account == person.account["id"]).first()
    assert (row["nip"], row["email"]) == ("5260250274", "faktury@example.com")


# --- support and the back office -----------------------------------------------------------------


async def test_a_ticket_answered_by_staff_in_a_second_browser(page: Page, make_person,
                                                              browser: Browser, server: Server):
    person: Person = await make_person(label="zgloszenie", account_name="Konto Zgłaszające")
    subject = f"Nie działa KSeF {uuid.uuid4().hex[:6]}"
    await LoginPage(page).sign_in(person.email, person.password)
    await Layout(page).nav_link("Centrum wsparcia").click()
    await axe.assert_no_serious_violations(page)
    form = main(page).get_by_role("form", name="Nowe zgłoszenie")
    await form.get_by_label("Temat", exact=True).fill(subject)
    await form.get_by_label("Kategoria", exact=True).select_option(label="Pytanie techniczne")
    await form.get_by_label("Firma (nieobowiązkowo)").select_option(label="Konto Zgłaszające")
    await form.get_by_label("Wiadomość", exact=True).fill("Wysyłka kończy się błędem.")
    await form.get_by_role("button", name="Wyślij zgłoszenie").click()
    await expect(page.get_by_role("heading", name=subject, level=1)).to_be_visible()
    await expect(main(page)).to_contain_text("Oczekuje na odpowiedź")
    await axe.assert_no_serious_violations(page)
    ticket_url = page.url

    staff = await make_staff()
    staff_context = await browser.new_context(base_url=server.base_url, locale="pl-PL")
    try:
        staff_page = await staff_context.new_page()
        await LoginPage(staff_page).sign_in(staff.email, staff.password)
        await staff_page.goto("/staff")
        await axe.assert_no_serious_violations(staff_page)
        await main(staff_page).get_by_role("link", name="Zgłoszenia klientów").click()
        await axe.assert_no_serious_violations(staff_page)
        await main(staff_page).get_by_role("link", name=subject).click()
        await expect(main(staff_page)).to_contain_text(person.email)
        await axe.assert_no_serious_violations(staff_page)
        await main(staff_page).get_by_label("Treść odpowiedzi").fill(
            "Proszę włączyć integrację w ustawieniach firmy.")
        await main(staff_page).get_by_role("button", name="Wyślij odpowiedź").click()
        await expect(staff_page.get_by_role("status")).to_contain_text("Wysłano odpowiedź.")
    finally:
        await staff_context.close()

    await page.goto(ticket_url)
    await expect(main(page)).to_contain_text("Odpowiedziano")
    reply = main(page).get_by_role("listitem").filter(has_text="Zespół wsparcia")
    await expect(reply).to_contain_text("Proszę włączyć integrację w ustawieniach firmy.")
    assert "Proszę włączyć integrację" in await mailbox.latest(person.email)
    ticket = await Ticket.select().where(Ticket.identity == person.identity_id).first()
    assert ticket["status"] == "answered"
    assert await TicketMessage.count().where(TicketMessage.ticket == ticket["id"]) == 2


async def test_staff_delete_an_id_and_it_can_no_longer_sign_in(page: Page, make_person,
                                                               browser: Browser,
                                                               server: Server):
    leaving: Person = await make_person(label="usuwany", account_name="Konto Odchodzącego")
    leaving_context = await browser.new_context(base_url=server.base_url, locale="pl-PL")
    try:
        leaving_page = await leaving_context.new_page()
        await LoginPage(leaving_page).sign_in(leaving.email, leaving.password)

        staff = await make_staff()
        await LoginPage(page).sign_in(staff.email, staff.password)
        await page.goto("/staff")
        await main(page).get_by_role("searchbox", name="Adres e-mail lub jego część").fill(
            leaving.email)
        await main(page).get_by_role("button", name="Szukaj").click()
        await expect(page.get_by_role("status")).to_contain_text("Znalezione Konta ID: 1")
        await axe.assert_no_serious_violations(page)
        await main(page).get_by_role("link", name=leaving.email).click()
        await expect(main(page)).to_contain_text("Konto Odchodzącego")
        await axe.assert_no_serious_violations(page)
        await main(page).get_by_role("link", name="Usuń Konto ID na prośbę osoby").click()
        await expect(main(page)).to_contain_text("zostanie usunięte ze wszystkimi danymi")
        await axe.assert_no_serious_violations(page)
        await main(page).get_by_label("Wpisz adres e-mail usuwanego Konta ID").fill(leaving.email)
        await main(page).get_by_label("Podstawa usunięcia").fill("Prośba z 1 grudnia")
        await main(page).get_by_role("button", name="Usuń Konto ID na stałe").click()
        await expect(page.get_by_role("status")).to_contain_text("Usunięto Konto ID.")
        assert not await Identity.exists().where(Identity.id == leaving.identity_id)

        # The session that was open ends, and signing in again is refused.
        await leaving_page.goto("/")
        await expect(leaving_page).to_have_url(re.compile(r"/login\?next="))
        login = LoginPage(leaving_page)
        await login.open()
        await login.email.fill(leaving.email)
        await login.password.fill(leaving.password)
        await login.submit.click()
        await expect(login.form_error).to_contain_text("Nieprawidłowy e-mail lub hasło")
        assert path_of(leaving_page) == "/login"
    finally:
        await leaving_context.close()


async def test_keyboard_only_through_the_support_centre(page: Page, make_person):
    person: Person = await make_person(label="klawiatura-wsparcie")
    await LoginPage(page).sign_in(person.email, person.password)
    layout = Layout(page)
    await tab_to(page, layout.nav_link("Centrum wsparcia"))
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/support$"))

    # Sending an empty form: focus goes to the first field in error.
    form = main(page).get_by_role("form", name="Nowe zgłoszenie")
    await tab_to(page, form.get_by_role("button", name="Wyślij zgłoszenie"), max_presses=80)
    await page.keyboard.press("Enter")
    subject = form.get_by_label("Temat", exact=True)
    await expect(subject).to_have_attribute("aria-invalid", "true")
    await expect(subject).to_be_focused()
    await expect(subject).to_have_accessible_description("Podaj temat zgłoszenia.")

    await page.keyboard.type("Pytanie o fakturę")
    await page.keyboard.press("Tab")
    category = form.get_by_label("Kategoria", exact=True)
    assert await is_focused(category)
    await page.keyboard.press("ArrowDown")  # Pytanie techniczne → Faktury i płatności
    await page.keyboard.press("Tab")
    assert await is_focused(form.get_by_label("Firma (nieobowiązkowo)"))
    await page.keyboard.press("Tab")
    assert await is_focused(form.get_by_label("Wiadomość", exact=True))
    await page.keyboard.type("Gdzie pobiorę fakturę za grudzień?")
    await page.keyboard.press("Tab")
    assert await is_focused(form.get_by_role("button", name="Wyślij zgłoszenie"))
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", name="Pytanie o fakturę", level=1)).to_be_visible()
    await expect(main(page)).to_contain_text("Faktury i płatności")
    await tab_to(page, main(page).get_by_label("Treść odpowiedzi"))
    await page.keyboard.type("Dodam, że chodzi o konto główne.")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # "Wyślij odpowiedź"
    await expect(page.get_by_role("status")).to_contain_text("Wysłano odpowiedź.")
    newest = main(page).locator(".message").last
    await expect(newest).to_contain_text("Dodam, że chodzi o konto główne.")
    await expect(newest.locator(".message-meta")).to_be_focused()

    await tab_to(page, main(page).get_by_role("button", name="Zamknij zgłoszenie"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Zamknięto zgłoszenie.")
    await expect(main(page)).to_contain_text("Zamknięte")
    ticket = await Ticket.select().where(Ticket.identity == person.identity_id).first()
    assert (ticket["subject"], ticket["category"], ticket["status"]) == (
        "Pytanie o fakturę", "billing", "closed")


# --- axe on every screen of the issue ------------------------------------------------------------


async def test_axe_is_clean_on_every_screen(page: Page, make_person):
    person: Person = await make_person(label="axe")
    account_id = person.account["id"]
    order_id = (await Order.insert(Order(
        account=account_id, number=f"ZAM/AXE/{uuid.uuid4().hex[:6]}", status="paid",
        total=Decimal("199.00"))).returning(Order.id))[0]["id"]
    await OrderItem.insert(OrderItem(order=order_id, description="e-Faktury — 12 miesięcy",
                                     quantity=1, unit_price=Decimal("199.00")))
    await LoginPage(page).sign_in(person.email, person.password)
    await page.goto("/apps")
    await main(page).get_by_role("button", name="Wypróbuj e-Faktury").click()
    await expect(page).to_have_url(re.compile(r"/products$"))
    for path in ("/", "/apps", "/apps?show=mine", "/orders", f"/orders/{order_id}",
                 "/products", "/billing", "/billing/edit", "/support"):
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await axe.assert_no_serious_violations(page)
    # An error state too: a refused ticket, its fields marked.
    await page.goto("/support")
    await main(page).get_by_role("form", name="Nowe zgłoszenie").get_by_role(
        "button", name="Wyślij zgłoszenie").click()
    await expect(main(page).get_by_label("Temat", exact=True)).to_have_attribute(
        "aria-invalid", "true")
    await axe.assert_no_serious_violations(page)
