"""The catalogue: the migration and ``portal demo`` agree on the product list; trials (once per
product, dated, audited, mailed); opening an application records it; recently used; the
account's products with their state as of today; the tenant gate for account-owned rows."""

from __future__ import annotations

import ast
import asyncio
import importlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

import portal.services
from portal.services import catalogue
from portal.services.errors import NotFound
from portal.settings import Settings
from portal.tables import (
    Application,
    AuditEvent,
    OutboxEmail,
    RecentApplication,
    Subscription,
)
from portal.testing import factories
from tests.conftest import last_mail
from tests.services.test_accounts import CLIENT, scope_for

MIGRATION = importlib.import_module(
    "portal.tables.piccolo_migrations.portal_2026_11_26t10_00_00_000000_customer_panel")


SETTINGS = Settings.from_env()


@pytest.fixture
async def seeded() -> None:
    await catalogue.seed()


async def owner_scope(email="wlasciciel@example.com", name="Konto Testowe"):
    me = await factories.identity(email)
    account = await factories.account(me, name=name)
    return await scope_for(me, account, "owner"), account


# --- the product list ----------------------------------------------------------------------------


def test_the_migration_and_the_demo_seed_carry_the_same_products():
    from_code = [
        (p.slug, p.name, p.category, p.description, p.has_trial, p.included, p.product_url,
         p.shop_url, p.open_url)
        for p in catalogue.APPLICATIONS
    ]
    assert from_code == [tuple(row) for row in MIGRATION.PRODUCTS]
    slugs = [p.slug for p in catalogue.APPLICATIONS]
    assert len(slugs) == len(set(slugs))
    for wanted in ("e-faktury", "e-biuro", "e-deklaracje", "e-dokumenty", "e-place",
                   "srodki-trwale", "centrum-pomocy", "akademia", "spolecznosc",
                   "glos-klienta", "sklep"):
        assert wanted in slugs
    assert all(p.category in catalogue.CATEGORIES for p in catalogue.APPLICATIONS)
    assert all(catalogue.SLUG.match(slug) for slug in slugs)


async def test_seed_fills_an_empty_catalogue_once_and_never_duplicates():
    await catalogue.seed()
    await catalogue.seed()
    rows = await Application.select(Application.slug, Application.position).order_by(
        Application.position)
    assert [r["slug"] for r in rows] == [p.slug for p in catalogue.APPLICATIONS]


async def test_seed_keeps_existing_entries_as_they_are():
    await Application.insert(Application(slug="e-faktury", name="Zmieniona nazwa",
                                         open_url="https://faktury.firma.pl/"))
    await catalogue.seed()
    row = await Application.select().where(Application.slug == "e-faktury").first()
    assert (row["name"], row["open_url"]) == ("Zmieniona nazwa", "https://faktury.firma.pl/")
    assert await Application.count() == len(catalogue.APPLICATIONS)


# --- the catalogue for an account ----------------------------------------------------------------


async def test_an_account_has_the_included_services_and_may_try_the_rest(seeded):
    scope, _ = await owner_scope()
    rows = {r["slug"]: r for r in await catalogue.applications(scope)}
    assert rows["centrum-pomocy"]["has_it"] and rows["centrum-pomocy"]["can_open"]
    assert not rows["centrum-pomocy"]["can_try"]
    assert not rows["e-faktury"]["has_it"] and rows["e-faktury"]["can_try"]
    mine = await catalogue.applications(scope, show="mine")
    assert {r["slug"] for r in mine} == {p.slug for p in catalogue.APPLICATIONS if p.included}
    finance = await catalogue.applications(scope, "finance")
    assert {r["slug"] for r in finance} == {"e-faktury", "e-deklaracje", "srodki-trwale"}
    # Unknown filters are ignored, never an error.
    assert len(await catalogue.applications(scope, "'; drop", "everything")) == len(
        catalogue.APPLICATIONS)


# --- trials --------------------------------------------------------------------------------------


async def test_a_trial_starts_once_per_product_with_an_end_date_audit_and_mail(seeded):
    scope, account = await owner_scope()
    member = await factories.identity("czlonek@example.com")
    await factories.membership(member, account["id"], "member")
    member_scope = await scope_for(member, account, "member")
    started = await catalogue.start_trial(SETTINGS, member_scope, "e-place", CLIENT)
    assert started["ends_on"] - started["starts_on"] == timedelta(days=catalogue.TRIAL_DAYS - 1)
    row = await Subscription.select().where(Subscription.account == account["id"]).first()
    assert (row["state"], row["starts_on"], row["ends_on"]) == (
        "trial", started["starts_on"], started["ends_on"])
    event = await AuditEvent.select().where(
        AuditEvent.tag == "account:subscription:trial_start").first()
    assert event["account_id"] == account["id"] and event["identity_id"] == member
    assert json.loads(event["data"])["application"] == "e-place"
    # The person who started it and the owner are told.
    recipients = {r["to_address"] for r in await OutboxEmail.select(OutboxEmail.to_address)}
    assert recipients == {"czlonek@example.com", "wlasciciel@example.com"}
    body = (await last_mail("czlonek@example.com"))["text_body"]
    assert "e-Płace" in body and started["ends_on"].strftime("%d.%m.%Y") in body

    with pytest.raises(catalogue.TrialUsed):
        await catalogue.start_trial(SETTINGS, scope, "e-place", CLIENT)
    # Even after it expired: once per product.
    await Subscription.update({Subscription.starts_on: started["starts_on"] - timedelta(days=60),
                               Subscription.ends_on: started["starts_on"] - timedelta(days=31)}
                              ).where(Subscription.account == account["id"])
    with pytest.raises(catalogue.TrialUsed):
        await catalogue.start_trial(SETTINGS, scope, "e-place", CLIENT)
    assert await Subscription.count() == 1
    assert await AuditEvent.count().where(
        AuditEvent.tag == "account:subscription:trial_start") == 1


async def test_two_trials_of_one_product_at_the_same_moment_make_one_subscription(seeded):
    scope, _ = await owner_scope()
    results = await asyncio.gather(
        *[catalogue.start_trial(SETTINGS, scope, "e-biuro", CLIENT)
          for _ in range(4)], return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, catalogue.TrialUsed) for r in results if isinstance(r, Exception))
    assert await Subscription.count() == 1


@pytest.mark.parametrize("slug", ["sklep", "centrum-pomocy"])
async def test_services_without_a_trial_refuse_one(seeded, slug):
    scope, _ = await owner_scope()
    with pytest.raises(catalogue.NoTrial):
        await catalogue.start_trial(SETTINGS, scope, slug, CLIENT)


@pytest.mark.parametrize("slug", ["nie-ma-takiej", "", "E-FAKTURY", "../x", "x" * 500, None, 7])
async def test_unknown_slugs_are_not_found(seeded, slug):
    scope, _ = await owner_scope()
    with pytest.raises(NotFound):
        await catalogue.start_trial(SETTINGS, scope, slug, CLIENT)
    with pytest.raises(NotFound):
        await catalogue.open_application(scope, slug)
    assert await Subscription.count() == 0


async def test_a_trial_shows_as_expired_after_its_end_date(seeded):
    scope, account = await owner_scope()
    await catalogue.start_trial(SETTINGS, scope, "e-faktury", CLIENT)
    (product,) = await catalogue.products(scope)
    assert product["shown_state"] == "trial"
    await Subscription.update({Subscription.starts_on: catalogue.today() - timedelta(days=40),
                               Subscription.ends_on: catalogue.today() - timedelta(days=1)}
                              ).where(Subscription.account == account["id"])
    (product,) = await catalogue.products(scope)
    assert product["shown_state"] == "expired"
    assert await catalogue.products(scope, "trial") == []
    row = {r["slug"]: r for r in await catalogue.applications(scope)}["e-faktury"]
    assert (row["shown_state"], row["has_it"], row["can_try"]) == ("expired", False, False)


# --- opening and recently used -------------------------------------------------------------------


async def test_opening_records_the_use_and_preselects_the_account(seeded):
    scope, account = await owner_scope()
    url = await catalogue.open_application(scope, "centrum-pomocy")
    assert url == f"https://pomoc.example.com/logowanie?account={account['public_id']}"
    await catalogue.open_application(scope, "akademia")
    await catalogue.open_application(scope, "centrum-pomocy")  # again: one row, newer time
    assert await RecentApplication.count() == 2
    assert [r["slug"] for r in await catalogue.recent(scope)] == ["centrum-pomocy", "akademia"]


async def test_an_app_the_account_does_not_have_cannot_be_opened(seeded):
    scope, _ = await owner_scope()
    with pytest.raises(catalogue.NotAvailable):
        await catalogue.open_application(scope, "e-faktury")
    await catalogue.start_trial(SETTINGS, scope, "e-faktury", CLIENT)
    url = await catalogue.open_application(scope, "e-faktury")
    assert url.startswith("https://e-faktury.example.com/logowanie?account=")
    await Application.update({Application.open_url: "https://e-faktury.example.com/?a=1"}).where(
        Application.slug == "e-faktury")
    assert "?a=1&account=" in await catalogue.open_application(scope, "e-faktury")


async def test_recently_used_is_per_person_and_per_account(seeded):
    scope, account = await owner_scope()
    other_scope, _ = await owner_scope("inna@example.com", "Inne Konto")
    colleague = await factories.identity("kolega@example.com")
    await factories.membership(colleague, account["id"], "admin")
    colleague_scope = await scope_for(colleague, account, "admin")
    await catalogue.open_application(scope, "akademia")
    assert await catalogue.recent(other_scope) == []
    assert await catalogue.recent(colleague_scope) == []
    # The same person in another account of theirs sees that account's list only.
    second = await factories.account(scope.identity_id, name="Drugie Konto")
    assert await catalogue.recent(await scope_for(scope.identity_id, second, "owner")) == []


async def test_an_expired_trial_drops_out_of_recently_used(seeded):
    scope, account = await owner_scope()
    await catalogue.start_trial(SETTINGS, scope, "e-dokumenty", CLIENT)
    await catalogue.open_application(scope, "e-dokumenty")
    assert [r["slug"] for r in await catalogue.recent(scope)] == ["e-dokumenty"]
    await Subscription.update({Subscription.starts_on: catalogue.today() - timedelta(days=40),
                               Subscription.ends_on: catalogue.today() - timedelta(days=1)}
                              ).where(Subscription.account == account["id"])
    assert await catalogue.recent(scope) == []


async def test_the_trial_offer_is_the_first_product_the_account_never_had(seeded):
    scope, _ = await owner_scope()
    assert (await catalogue.trial_offer(scope))["slug"] == "e-faktury"
    await catalogue.start_trial(SETTINGS, scope, "e-faktury", CLIENT)
    assert (await catalogue.trial_offer(scope))["slug"] == "e-biuro"
    for product in catalogue.APPLICATIONS:
        if product.has_trial and product.slug != "e-faktury":
            await catalogue.start_trial(SETTINGS, scope, product.slug, CLIENT)
    assert await catalogue.trial_offer(scope) is None


async def test_the_open_origins_are_those_of_the_catalogue(seeded):
    origins = await catalogue.open_origins()
    assert "https://e-faktury.example.com" in origins and "https://sklep.example.com" in origins
    await Application.insert(Application(slug="zla", name="Zła", open_url="javascript:alert(1)"))
    assert not any(o.startswith("javascript") for o in await catalogue.open_origins())


# --- the tenant gate -----------------------------------------------------------------------------

#: Tables with an ``account`` column (issue 8's): their reads and writes go through tenancy.
ACCOUNT_OWNED = {"Subscription", "Order", "BillingProfile", "RecentApplication", "Ticket"}

#: Modules that work across accounts by design, each with its reason. Adding one here is a
#: decision a reviewer sees.
ACROSS_ACCOUNTS = {
    "tenancy.py": "the gate itself",
    "demo.py": "loads demo data for every demo account",
    "staff.py": "the back office: support staff belong to no account (Permission.STAFF)",
}


def test_account_owned_rows_are_read_and_changed_only_through_the_tenant_gate():
    offenders = []
    for path in Path(portal.services.__file__).parent.glob("*.py"):
        if path.name in ACROSS_ACCOUNTS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in ACCOUNT_OWNED
                    and node.attr in {"select", "update", "delete", "objects", "count",
                                      "exists", "raw"}):
                offenders.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert offenders == []


async def test_the_demo_gives_its_accounts_products_orders_billing_and_a_ticket_once():
    from portal.services import demo
    from portal.tables import BillingProfile, Order, OrderItem, Ticket, TicketMessage

    await demo.load()
    counts = [await table.count() for table in (Application, Subscription, Order, OrderItem,
                                                  BillingProfile, Ticket, TicketMessage,
                                                  RecentApplication)]
    await demo.load()
    again = [await table.count() for table in (Application, Subscription, Order, OrderItem,
                                                 BillingProfile, Ticket, TicketMessage,
                                                 RecentApplication)]
    assert counts == again
    assert counts[0] == len(catalogue.APPLICATIONS)
    assert all(count > 0 for count in counts)
    states = {row["state"] for row in await Subscription.select(Subscription.state)}
    assert states == {"trial", "active"}
    orders = await Order.select()
    for order in orders:
        items = await OrderItem.select().where(OrderItem.order == order["id"])
        assert sum(i["quantity"] * i["unit_price"] for i in items) == order["total"]


# --- other languages -----------------------------------------------------------------------------

TRANSLATIONS_MIGRATION = importlib.import_module(
    "portal.tables.piccolo_migrations.portal_2026_12_03t14_00_00_000000_catalogue_translations")


def test_the_migration_and_the_demo_seed_carry_the_same_translations():
    from_code = [(language, slug, name, description)
                 for language, entries in catalogue.TRANSLATIONS.items()
                 for slug, (name, description) in entries.items()]
    assert from_code == [tuple(row) for row in TRANSLATIONS_MIGRATION.TRANSLATIONS]
    assert set(catalogue.TRANSLATIONS["en"]) == {p.slug for p in catalogue.APPLICATIONS}


async def test_entries_are_read_in_the_wanted_language_with_polish_as_the_fallback(seeded):
    scope, _ = await owner_scope()
    await Application.insert(Application(slug="nowa", name="Nowa usługa", description="Opis",
                                         category="office", position=99))
    english = {row["slug"]: row for row in await catalogue.applications(scope, language="en")}
    e_invoices = english["e-faktury"]
    assert (e_invoices["name"], e_invoices["name_polish"], e_invoices["description_polish"]
            ) == ("e-Invoices", False, False)
    assert english["nowa"]["name"] == "Nowa usługa"
    assert english["nowa"]["name_polish"] and english["nowa"]["description_polish"]
    for language in ("pl", "de", None, "'; drop"):
        rows = {r["slug"]: r for r in await catalogue.applications(scope, language=language)}
        assert rows["e-faktury"]["name"] == "e-Faktury" and rows["e-faktury"]["name_polish"]
    offer = await catalogue.trial_offer(scope, "en")
    assert offer["name"] == "e-Invoices"
    await catalogue.start_trial(SETTINGS, scope, "e-place", CLIENT)
    products = await catalogue.products(scope, language="en")
    assert [p["name"] for p in products] == ["e-Payroll"]


async def test_a_translation_is_only_ever_the_catalogues_own(seeded):
    from portal.tables import ApplicationTranslation

    before = await ApplicationTranslation.count()
    await catalogue.seed()
    assert await ApplicationTranslation.count() == before == len(catalogue.TRANSLATIONS["en"])
    await Application.delete().where(Application.slug == "sklep")
    assert await ApplicationTranslation.count() == before - 1  # cascades with its entry


async def test_a_name_and_a_description_fall_back_to_polish_each_on_its_own(seeded):
    from portal.tables import ApplicationTranslation

    scope, _ = await owner_scope()
    await ApplicationTranslation.update({ApplicationTranslation.name: ""}).where(
        ApplicationTranslation.application.is_in(
            Application.select(Application.id).where(Application.slug == "e-place")))
    row = {r["slug"]: r for r in await catalogue.applications(scope, language="en")}["e-place"]
    assert (row["name"], row["name_polish"]) == ("e-Płace", True)
    assert row["description"].startswith("HR and payroll") and not row["description_polish"]
