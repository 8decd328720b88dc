"""The customer panel: /orders and an order's page, /products, /billing (owners and admins
edit it; NIP validation; audit); tenant isolation on every account-owned route, as page and as
fragment; a constant number of queries for the order list."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from portal.services import catalogue
from portal.tables import Application, AuditEvent, BillingProfile, Order, OrderItem, Subscription
from portal.testing import factories
from tests.conftest import field_error
from tests.views.test_apps import counting_queries
from tests.views.test_companies import HTMX, company_routes, owner_signed_in

BILLING = {"name": "Nowa Firma sp. z o.o.", "nip": "526-025-02-74", "street": "ul. Polna 1",
           "postal_code": "00-001", "city": "Warszawa", "country": "PL",
           "email": "faktury@nowa.example.com"}


@pytest.fixture(autouse=True)
async def seeded() -> None:
    await catalogue.seed()


async def make_order(account_id, number="ZAM/1", status="paid", items=(("e-faktury", 2, "99.50"),)):
    apps = {r["slug"]: r["id"] for r in await Application.select(Application.slug,
                                                                    Application.id)}
    total = sum(Decimal(price) * qty for _, qty, price in items)
    order_id = (await Order.insert(Order(account=account_id, number=number, status=status,
                                         total=total)).returning(Order.id))[0]["id"]
    for slug, qty, price in items:
        await OrderItem.insert(OrderItem(order=order_id, application=apps[slug],
                                         description=f"{slug} — licencja", quantity=qty,
                                         unit_price=Decimal(price)))
    return order_id


# --- orders --------------------------------------------------------------------------------------


async def test_orders_list_and_detail_as_page_and_fragment(client):
    _, account = await owner_signed_in(client)
    first = await make_order(account["id"], "ZAM/1", "completed",
                             (("e-faktury", 2, "99.50"), ("e-biuro", 1, "1000.00")))
    await make_order(account["id"], "ZAM/2", "new")
    page = await client.get("/orders")
    assert f'href="/orders/{first}"' in page.text and "ZAM/2" in page.text
    assert "1\u00a0199,00&nbsp;zł" in page.text and "Zrealizowane" in page.text
    fragment = await client.get("/orders?status=new", headers=HTMX)
    assert fragment.text.lstrip().startswith('<div id="order-list">')
    assert "ZAM/2" in fragment.text and "ZAM/1" not in fragment.text
    detail = await client.get(f"/orders/{first}")
    assert "Zamówienie ZAM/1" in detail.text and "e-biuro — licencja" in detail.text
    assert "199,00&nbsp;zł" in detail.text  # 2 x 99,50
    assert "1\u00a0000,00&nbsp;zł" in detail.text
    detail_fragment = await client.get(f"/orders/{first}", headers=HTMX)
    assert detail_fragment.text.lstrip().startswith('<div id="order-detail">')


async def test_an_account_without_orders_says_so(client):
    await owner_signed_in(client)
    assert "To konto nie ma jeszcze zamówień." in (await client.get("/orders")).text


async def test_the_order_list_costs_the_same_queries_for_1_and_for_40_orders(client):
    _, account = await owner_signed_in(client)
    await make_order(account["id"], "ZAM/0")
    await client.get("/orders", headers=HTMX)
    with counting_queries() as one:
        await client.get("/orders", headers=HTMX)
    for n in range(1, 40):
        await make_order(account["id"], f"ZAM/{n}", items=(("e-place", 1, "10.00"),) * 3)
    with counting_queries() as forty:
        response = await client.get("/orders", headers=HTMX)
    assert "Zamówienia: 40" in response.text
    assert one["count"] == forty["count"] <= 3


# --- products ------------------------------------------------------------------------------------


async def test_products_show_state_and_dates_and_filter(client):
    _, account = await owner_signed_in(client)
    apps = {r["slug"]: r["id"] for r in await Application.select(Application.slug,
                                                                    Application.id)}
    today = catalogue.today()
    await Subscription.insert(
        Subscription(account=account["id"], application=apps["e-faktury"], state="active",
                     starts_on=today - timedelta(days=100), ends_on=None),
        Subscription(account=account["id"], application=apps["e-place"], state="trial",
                     starts_on=today - timedelta(days=40), ends_on=today - timedelta(days=11)),
    )
    page = (await client.get("/products")).text
    assert "Aktywna" in page and "bezterminowo" in page and "Wygasła" in page
    expired = await client.get("/products?state=expired", headers=HTMX)
    assert expired.text.lstrip().startswith('<div id="product-list">')
    assert "e-Płace" in expired.text and "e-Faktury" not in expired.text
    assert 'href="https://sklep.example.com/produkty/e-place"' in expired.text
    assert "Brak produktów w tym stanie." in (await client.get("/products?state=trial")).text
    for odd in ("state=%00", "state=" + "x" * 3000, "state=trial&state=active"):
        expected = 400 if "%00" in odd else 200  # a NUL is refused (web/input.py)
        assert (await client.get(f"/products?{odd}")).status_code == expected


# --- billing -------------------------------------------------------------------------------------


async def test_billing_shows_the_account_data_until_saved(client):
    await owner_signed_in(client, name="Konto Rozliczeń")
    html = (await client.get("/billing")).text
    assert "Konto Rozliczeń" in html and "nie zostały jeszcze zapisane" in html
    assert 'href="/billing/edit"' in html
    form = await client.get("/billing/edit", headers=HTMX)
    assert form.text.lstrip().startswith('<form id="billing-card"')
    assert 'value="Konto Rozliczeń"' in form.text


async def test_billing_with_a_bad_then_a_good_nip(client):
    _, account = await owner_signed_in(client)
    for htmx in (False, True):
        bad = await client.post_form("/billing", {**BILLING, "nip": "123-456-78-90",
                                                  "email": "nie-mail", "postal_code": "1"},
                                     htmx=htmx)
        assert bad.status_code == 422
        assert field_error(bad.text, "nip").startswith("To nie jest poprawny NIP")
        assert field_error(bad.text, "email")
        assert field_error(bad.text, "postal_code")
        assert 'value="123-456-78-90"' in bad.text and 'value="ul. Polna 1"' in bad.text
    assert await BillingProfile.count() == 0
    assert not await AuditEvent.exists().where(AuditEvent.tag == "account:billing:update")

    saved = await client.post_form("/billing", BILLING)
    assert saved.status_code == 303 and saved.headers["location"] == "/billing"
    row = await BillingProfile.select().where(BillingProfile.account == account["id"]).first()
    assert (row["nip"], row["email"], row["name"]) == ("5260250274", "faktury@nowa.example.com",
                                                       "Nowa Firma sp. z o.o.")
    page = (await client.get("/billing")).text
    assert "Zapisano dane do faktury." in page and "5260250274" in page
    inline = await client.post_form("/billing", {**BILLING, "city": "Kraków"}, htmx=True)
    assert inline.status_code == 200
    assert inline.text.lstrip().startswith('<section id="billing-card"')
    assert "Zapisano dane do faktury." in inline.text
    assert await BillingProfile.count() == 1
    events = await AuditEvent.select().where(AuditEvent.tag == "account:billing:update").order_by(
        AuditEvent.created_at)
    assert [json.loads(e["data"])["changed"] for e in events][-1] == "city"
    assert all(e["account_id"] == account["id"] for e in events)


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_owners_and_admins_edit_billing(client, role):
    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner)
    if role == "admin":
        admin = await factories.identity("admin@example.com")
        await factories.membership(admin, account["id"], "admin")
        await client.sign_in("admin@example.com", factories.PASSWORD)
    else:
        await client.sign_in("szef@example.com", factories.PASSWORD)
    assert (await client.post_form("/billing", BILLING)).status_code == 303


async def test_members_see_billing_but_cannot_change_it(client):
    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner, name="Konto Szefa")
    member = await factories.identity("czlonek@example.com")
    await factories.membership(member, account["id"], "member")
    await client.sign_in("czlonek@example.com", factories.PASSWORD)
    page = await client.get("/billing")
    assert page.status_code == 200 and "Konto Szefa" in page.text
    assert 'href="/billing/edit"' not in page.text
    for headers in ({}, HTMX):
        assert (await client.get("/billing/edit", headers=headers)).status_code == 403
        response = await client.post_form("/billing", BILLING, headers=headers)
        assert response.status_code == 403
    assert await BillingProfile.count() == 0
    assert not await AuditEvent.exists().where(AuditEvent.tag == "account:billing:update")


# --- tenant isolation ----------------------------------------------------------------------------


async def test_another_accounts_orders_products_and_billing_never_show(client, app):
    await owner_signed_in(client, "ja@example.com", "Moje Konto")
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce Konto")
    their_order = await make_order(theirs["id"], "ZAM/OBCE")
    await BillingProfile.insert(BillingProfile(account=theirs["id"], name="Obce Dane",
                                               nip="7740001454"))
    await Subscription.insert(Subscription(
        account=theirs["id"], state="active", starts_on=catalogue.today(),
        application=(await catalogue._application("e-place"))["id"]))
    orders_before = await Order.select().order_by(Order.id)
    tried = set()
    for order_id in (their_order, uuid.uuid4(), "nie-uuid", "%00", "x" * 3000):
        for headers in ({}, HTMX):
            response = await client.get(f"/orders/{order_id}", headers=headers)
            expected = 400 if order_id == "%00" else 404  # a NUL is refused
            assert response.status_code == expected, (order_id, headers)
            assert "ZAM/OBCE" not in response.text
            tried.add(("GET", "/orders/{order_id:str}"))
    assert tried == {r for r in routes_under(app, "/orders/{")}
    for path in ("/orders", "/orders?status=paid", "/products", "/billing", "/billing/edit"):
        for headers in ({}, HTMX):
            html = (await client.get(path, headers=headers)).text
            assert "ZAM/OBCE" not in html and "Obce" not in html and "e-Płace" not in html, path
    # Saving billing data touches only the current account's row.
    assert (await client.post_form("/billing", BILLING)).status_code == 303
    theirs_row = await BillingProfile.select().where(BillingProfile.account == theirs["id"]).first()
    assert theirs_row["name"] == "Obce Dane"
    assert await Order.select().order_by(Order.id) == orders_before


def routes_under(app, prefix: str) -> set[tuple[str, str]]:
    from litestar.routes import HTTPRoute

    found = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith(prefix):
            for handler in route.route_handlers:
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                    found.add((method, route.path))
    return found


def test_routes_under_matches_the_companies_helper(app):
    assert routes_under(app, "/companies/{") == company_routes(app)


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "x" * 20_000, "😀" * 300, "' OR 1=1 --",
                                   "\r\n\t", "", "<b>x</b>"])
async def test_odd_input_never_breaks_the_billing_form(client, value):
    await owner_signed_in(client)
    for headers in ({}, HTMX):
        data = {field: value for field in BILLING}
        response = await client.post_form("/billing", data, headers=headers)
        nul = "\x00" in value  # refused before the form is read (web/input.py)
        assert response.status_code == (400 if nul else 422), (value[:20], response.status_code)
        mixed = {**BILLING, "email": value, "country": value}
        assert (await client.post_form("/billing", mixed, headers=headers)).status_code in (
            (400,) if nul else (303, 200, 422))


@pytest.mark.parametrize("query", ["status=zzz", "status=%00", "status=" + "x" * 4000,
                                   "status=new&status=paid", "status="])
async def test_odd_list_filters_never_break_a_list(client, query):
    await owner_signed_in(client)
    for path in ("/orders", "/support", "/products"):
        for headers in ({}, HTMX):
            response = await client.get(f"{path}?{query}", headers=headers)
            expected = 400 if "%00" in query else 200  # a NUL is refused
            assert response.status_code == expected, (path, query)
