"""/ and /apps: the home page (recently used, trial banner), the catalogue and its filter
(page and fragment), opening an application through the portal, starting a trial."""

from __future__ import annotations

import re

import pytest

from portal.services import catalogue
from portal.tables import AuditEvent, OutboxEmail, RecentApplication, Subscription
from portal.testing import factories
from tests.conftest import HTMX, counting_queries
from tests.views.test_companies import owner_signed_in


@pytest.fixture(autouse=True)
async def seeded() -> None:
    await catalogue.seed()





async def test_an_untranslated_name_on_an_english_page_is_marked_polish_wherever_it_shows(client):
    """Names fall back to Polish like descriptions do, and say so (``lang="pl"``) for screen
    readers and hyphenation: the catalogue, the home banner, recently used, products; the items
    of an order are the order's own Polish text."""
    from portal.tables import Application, ApplicationTranslation
    from tests.views.test_customer import make_order

    _, account = await owner_signed_in(client)
    await ApplicationTranslation.delete().where(ApplicationTranslation.application.is_in(
        Application.select(Application.id).where(Application.slug.is_in(["e-faktury",
                                                                         "akademia"]))))
    english = {"Accept-Language": "en"}
    untranslated = '<span lang="pl">e-Faktury</span>'
    home = (await client.get("/", headers=english)).text
    assert f"Try it for free: {untranslated}</h2>" in home
    assert f'<span class="visually-hidden"> {untranslated}</span>' in home
    apps = (await client.get("/apps", headers=english)).text
    assert f'<h2 id="app-e-faktury">{untranslated}</h2>' in apps
    assert '<h2 id="app-akademia"><span lang="pl">Akademia</span></h2>' in apps
    assert '<h2 id="app-e-place">e-Payroll</h2>' in apps  # translated: not marked
    fragment = (await client.get("/apps?category=knowledge", headers={**english, **HTMX})).text
    assert '<span lang="pl">Akademia</span>' in fragment

    await client.post_form("/apps/akademia/open", {})
    home = (await client.get("/", headers=english)).text
    assert '<button type="submit" class="app-tile"><span lang="pl">Akademia</span></button>' in home
    await client.post_form("/apps/e-faktury/trial", {})
    products = (await client.get("/products", headers=english)).text
    assert f'<th scope="row">{untranslated}</th>' in products
    order_id = await make_order(account["id"])
    order = (await client.get(f"/orders/{order_id}", headers=english)).text
    assert '<th scope="row" lang="pl">e-faktury — licencja</th>' in order

    for path in ("/", "/apps", "/products", f"/orders/{order_id}"):  # Polish pages: no marks
        polish = (await client.get(path)).text
        assert '<span lang="pl">' not in polish and 'row" lang="pl"' not in polish, path


# --- home ----------------------------------------------------------------------------------------


async def test_home_for_a_new_person_shows_the_empty_state_and_a_trial_banner(client):
    await owner_signed_in(client)
    html = (await client.get("/")).text
    assert "<p>Brak ostatnio używanych aplikacji</p>" in html
    assert "Wypróbuj za darmo: e-Faktury" in html
    assert 'action="/apps/e-faktury/trial"' in html
    for link in ('href="/apps?show=mine"', 'href="/apps"', 'href="/account"', 'href="/users"',
                 'href="/orders"', 'href="/support#help"', 'href="/support#docs"',
                 'href="/support#tickets"'):
        assert link in html


async def test_opening_an_app_goes_through_the_portal_and_lands_in_recently_used(client):
    _, account = await owner_signed_in(client)
    response = await client.post_form("/apps/akademia/open", {})
    assert response.status_code == 303
    assert response.headers["location"] == (
        f"https://akademia.example.com/logowanie?account={account['public_id']}")
    htmx = await client.post_form("/apps/centrum-pomocy/open", {}, htmx=True)
    assert htmx.status_code == 200
    assert htmx.headers["HX-Redirect"].startswith("https://pomoc.example.com/logowanie?account=")
    home = await client.get("/")
    assert "Brak ostatnio używanych aplikacji" not in home.text
    names = re.findall(r'<button type="submit" class="app-tile">([^<]+)</button>', home.text)
    assert names == ["Centrum pomocy", "Akademia"]
    # The forms there are redirected to the applications: the CSP allows their origins.
    csp = home.headers["content-security-policy"]
    assert "form-action 'self'" in csp and "https://akademia.example.com" in csp
    fragment = await client.get("/", headers=HTMX)
    assert fragment.text.lstrip().startswith('<div id="recent-apps-list">')
    assert "Akademia" in fragment.text and "<html" not in fragment.text


# --- the catalogue -------------------------------------------------------------------------------


async def test_the_catalogue_page_and_its_fragment_filter_by_category(client):
    await owner_signed_in(client)
    page = await client.get("/apps")
    assert page.status_code == 200 and "<html" in page.text
    for product in catalogue.APPLICATIONS:
        assert f'id="app-{product.slug}"' in page.text
    assert 'action="/apps/e-faktury/trial"' in page.text
    assert 'href="https://sklep.example.com/produkty/e-faktury"' in page.text
    assert 'action="/apps/e-faktury/open"' not in page.text  # not the account's yet
    assert 'action="/apps/sklep/open"' in page.text
    fragment = await client.get("/apps?category=hr", headers=HTMX)
    assert fragment.text.lstrip().startswith('<div id="app-list">')
    assert 'id="app-e-place"' in fragment.text and 'id="app-e-faktury"' not in fragment.text
    assert 'hx-swap-oob="innerHTML:#live"' in fragment.text
    assert fragment.headers["vary"] == "HX-Request"
    mine = (await client.get("/apps?show=mine")).text
    assert 'id="app-e-faktury"' not in mine and 'id="app-akademia"' in mine
    assert '<option value="mine" selected>' in mine


@pytest.mark.parametrize("query", ["category=zzz", "category=", "show=x", "category=%00",
                                   "category=" + "x" * 4000, "category=hr&category=finance",
                                   "show=mine&show=all"])
async def test_odd_filters_never_break_the_catalogue(client, query):
    await owner_signed_in(client)
    for headers in ({}, HTMX):
        expected = 400 if "%00" in query else 200  # a NUL is refused (web/input.py)
        assert (await client.get(f"/apps?{query}", headers=headers)).status_code == expected


async def test_the_catalogue_costs_the_same_queries_whatever_the_account_has(client):
    await owner_signed_in(client)
    await client.get("/apps", headers=HTMX)
    with counting_queries() as before:
        await client.get("/apps", headers=HTMX)
    for slug in ("e-faktury", "e-biuro", "e-place"):
        await client.post_form(f"/apps/{slug}/trial", {})
    with counting_queries() as after:
        await client.get("/apps", headers=HTMX)
    assert before["count"] == after["count"] <= 4, before


# --- trials --------------------------------------------------------------------------------------


async def test_starting_a_trial_leads_to_the_products_with_it(client):
    _, account = await owner_signed_in(client)
    response = await client.post_form("/apps/e-deklaracje/trial", {})
    assert response.status_code == 303 and response.headers["location"] == "/products"
    products = await client.get("/products")
    assert "Rozpoczęto okres próbny aplikacji." in products.text
    assert "e-Deklaracje" in products.text and "Okres próbny" in products.text
    (row,) = await Subscription.select().where(Subscription.account == account["id"])
    assert row["state"] == "trial" and row["ends_on"].strftime("%d.%m.%Y") in products.text
    assert await OutboxEmail.count() == 1
    # The app can now be opened, and the banner offers the next product.
    assert 'action="/apps/e-deklaracje/open"' in (await client.get("/apps")).text
    assert "Wypróbuj za darmo: e-Faktury" in (await client.get("/")).text

    again = await client.post_form("/apps/e-deklaracje/trial", {}, htmx=True)
    assert again.status_code == 422
    assert again.text.lstrip().startswith('<div id="app-list">')
    assert 'role="alert"' in again.text and "już ma tę aplikację" in again.text
    assert await Subscription.count() == 1 and await OutboxEmail.count() == 1
    htmx = await client.post_form("/apps/e-place/trial", {}, htmx=True)
    assert htmx.headers["HX-Redirect"] == "/products"


async def test_refused_actions_are_shown_not_crashed(client):
    await owner_signed_in(client)
    no_trial = await client.post_form("/apps/sklep/trial", {})
    assert no_trial.status_code == 422 and "nie ma okresu próbnego" in no_trial.text
    not_mine = await client.post_form("/apps/e-faktury/open", {})
    assert not_mine.status_code == 422 and "To konto nie ma tej aplikacji" in not_mine.text
    for slug in ("nie-ma", "X", "%00", "a" * 300):
        for path in (f"/apps/{slug}/open", f"/apps/{slug}/trial"):
            for headers in ({}, HTMX):
                response = await client.post_form(path, {}, headers=headers)
                assert response.status_code == (400 if "%00" in slug else 404), (path, headers)
    assert await Subscription.count() == 0 and await RecentApplication.count() == 0
    assert not await AuditEvent.exists().where(AuditEvent.tag.like("account:subscription:%"))


async def test_a_member_may_open_and_try_applications(client):
    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner)
    member = await factories.identity("pracownik@example.com")
    await factories.membership(member, account["id"], "member")
    await client.sign_in("pracownik@example.com", factories.PASSWORD)
    assert (await client.post_form("/apps/e-biuro/trial", {})).status_code == 303
    assert (await client.post_form("/apps/e-biuro/open", {})).status_code == 303
    to = {r["to_address"] for r in await OutboxEmail.select(OutboxEmail.to_address)}
    assert to == {"pracownik@example.com", "szef@example.com"}


async def test_another_accounts_trial_does_not_show_here(client):
    await owner_signed_in(client, "moje@example.com", "Moje Konto")
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce Konto")
    await Subscription.insert(Subscription(account=theirs["id"], application=(
        await catalogue._application("e-faktury"))["id"], state="active",
        starts_on=catalogue.today()))
    for headers in ({}, HTMX):
        html = (await client.get("/apps", headers=headers)).text
        assert 'action="/apps/e-faktury/open"' not in html
        assert 'action="/apps/e-faktury/trial"' in html
    assert "e-Faktury" not in (await client.get("/products")).text


async def test_the_catalogue_and_help_need_no_account_but_trials_and_tickets_do(client):
    """A new ID may read the catalogue and the help centre before making an account; what
    belongs to an account (trials, opening, tickets) still leads to /accounts/new."""
    await factories.identity("nowy@example.com")
    await client.sign_in("nowy@example.com", factories.PASSWORD)
    for path in ("/apps", "/support"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert 'href="/accounts/new"' in page.text
    apps = await client.get("/apps")
    assert "Strona produktu" in apps.text
    assert "Wypróbuj" not in apps.text and "/open" not in apps.text
    fragment = await client.get("/apps?category=knowledge", headers=HTMX)
    assert fragment.status_code == 200 and not fragment.text.lstrip().startswith("<!doctype")
    support = await client.get("/support")
    assert "Nowe zgłoszenie" not in support.text and "Dokumentacja" in support.text
    for path, data in [("/apps/e-faktury/trial", {}), ("/support/tickets",
                                                      {"subject": "x", "message": "y"})]:
        response = await client.post_form(path, data)
        assert response.status_code == 303 and response.headers["location"] == "/accounts/new"
    assert await Subscription.count() == 0


async def test_the_english_ui_shows_the_catalogue_in_english(client):
    await owner_signed_in(client)
    english = {"Accept-Language": "en"}
    home = (await client.get("/", headers=english)).text
    assert "Try it for free: e-Invoices" in home
    assert ("Issuing, sending and receiving invoices, also through KSeF, with payment "
            "tracking.") in home
    assert "Wystawianie, wysyłka" not in home
    apps = (await client.get("/apps", headers=english)).text
    assert '<h2 id="app-e-place">e-Payroll</h2>' in apps
    assert 'lang="pl">Wystawianie' not in apps
    polish = (await client.get("/apps")).text
    assert '<h2 id="app-e-place">e-Płace</h2>' in polish
    support = (await client.get("/support", headers=english)).text
    assert "A forum where users and experts share their knowledge." in support
