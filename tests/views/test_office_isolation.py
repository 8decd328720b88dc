"""Isolation of a client account from an accounting office's people: every account-owned
route of the app (walked from its route table, like tests/test_routes.py), as a page, as an
htmx fragment, as a form POST, and the JSON API with the office's key, tried by office people
without an assignment, above the client's ceiling, after the end date and after the client
ended the delegation. Nothing of the client is read (none of its secrets appears in any
answer) and nothing is written (the client's rows are the same before and after)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from litestar.routes import HTTPRoute

from portal.security.permissions import ROLE_PERMISSIONS, Permission
from portal.services import offices
from portal.services.scope import Client
from portal.tables import (
    Account,
    ApiKey,
    BillingProfile,
    Delegation,
    DelegationAssignment,
    DelegationCompany,
    Invitation,
    Membership,
    Order,
    Ticket,
)
from portal.testing import factories
from tests.api.conftest import bearer, make_key
from tests.conftest import HTMX
from tests.services.test_offices import scope_in

PASSWORD = factories.PASSWORD
CLIENT = Client(ip="198.51.100.9", user_agent="pytest")

#: Routes about the person, not an account (signing out would end the walk, leaving the office
#: would end the person's office membership; staff routes are refused to everyone but support
#: staff by their own test).
SKIPPED_PREFIXES = ("/logout", "/security", "/profile", "/oauth", "/.well-known", "/staff",
                    "/login", "/register", "/verify", "/password", "/invitations/", "/dev",
                    "/healthz", "/static", "/api/v1/schema", "/accounts/new", "/users/leave")

#: What only the client's own people may ever see.
SECRETS_ALWAYS = ("Magazyn Tajny", "wlasciciel@klient.example", "ksiegowa@klient.example",
                  "zaproszona@klient.example", "Klucz Tajny Klienta", "FAKTURA-TAJNA-KLIENTA",
                  "Tajne zgłoszenie klienta", "ZAM-TAJNE-1")
#: ... and what an assigned person of the office may see (the account and the main company's
#: name, an account-level fact shown to every member, and the company assigned to them).
SECRETS_UNASSIGNED = ("Piekarnia Tajna", "Sklep Klienta")


async def client_rows(client_id: UUID) -> str:
    """Every row of the client account, as one comparable text."""
    parts = []
    for table in ("company", "membership", "invitation", "api_key", "billing_profile",
                  "ticket", "customer_order", "subscription", "recent_application"):
        rows = await Account.raw(f"SELECT * FROM {table} WHERE account = {{}} ORDER BY id",  # noqa: S608
                                 client_id)
        parts.append(f"{table}: {rows!r}")
    for sql in (
        "SELECT ca.* FROM company_access ca JOIN membership m ON m.id = ca.membership "
        "WHERE m.account = {} ORDER BY ca.id",
        "SELECT * FROM audit_event WHERE account_id = {} ORDER BY id",
        "SELECT * FROM delegation WHERE client = {} ORDER BY id",
        "SELECT dc.* FROM delegation_company dc JOIN delegation d ON d.id = dc.delegation "
        "WHERE d.client = {} ORDER BY dc.id",
        "SELECT a.* FROM delegation_assignment a JOIN delegation d ON d.id = a.delegation "
        "WHERE d.client = {} ORDER BY a.id",
        "SELECT * FROM account WHERE id = {}",
    ):
        parts.append(repr(await Account.raw(sql, client_id)))
    return "\n".join(parts)


async def world():
    admin = await factories.identity("admin@biuro.example", first_name="Ewa", last_name="Biuro")
    anna = await factories.identity("anna@biuro.example", first_name="Anna", last_name="Nowak")
    piotr = await factories.identity("piotr@biuro.example")
    owner = await factories.identity("wlasciciel@klient.example")
    bookkeeper = await factories.identity("ksiegowa@klient.example")
    office = await factories.account(admin, name="Biuro Rachunkowe X", nip="7740001454")
    await Account.update({Account.is_accounting_office: True}).where(Account.id == office["id"])
    anna_membership = await factories.membership(anna, office["id"])
    await factories.membership(piotr, office["id"])
    client = await factories.account(owner, name="Piekarnia Tajna", nip="5260250274")
    shop = await factories.company(client["id"], name="Sklep Klienta")
    store = await factories.company(client["id"], name="Magazyn Tajny")
    await factories.membership(bookkeeper, client["id"], companies={store: "manage"})
    await Invitation.insert(Invitation(
        account=client["id"], email="zaproszona@klient.example", role="member",
        token_hash=uuid4().hex, expires_at=datetime.now(UTC) + timedelta(days=3)))
    await make_key(owner, client)
    await ApiKey.update({ApiKey.name: "Klucz Tajny Klienta"}).where(
        ApiKey.account == client["id"])
    await BillingProfile.insert(BillingProfile(account=client["id"],
                                               name="FAKTURA-TAJNA-KLIENTA"))
    ticket = (await Ticket.insert(Ticket(
        account=client["id"], identity=owner, subject="Tajne zgłoszenie klienta",
        updated_at=datetime.now(UTC))).returning(Ticket.id))[0]["id"]
    order = (await Order.insert(Order(account=client["id"], number="ZAM-TAJNE-1")).returning(
        Order.id))[0]["id"]

    # Asked, approved at "view" for the main company and the shop; Anna gets the shop.
    office_admin = await scope_in(admin, office["public_id"])
    return {
        "admin": admin, "anna": anna, "piotr": piotr, "owner": owner, "office": office,
        "client": client, "shop": shop, "store": store, "ticket": ticket, "order": order,
        "anna_membership": anna_membership, "office_admin": office_admin,
        "owner_membership": (await Membership.select(Membership.id).where(
            (Membership.account == client["id"]) & (Membership.identity == owner)).first())["id"],
        "invitation": (await Invitation.select(Invitation.id).first())["id"],
        "key": (await ApiKey.select(ApiKey.id).where(ApiKey.account == client["id"]).first()
                )["id"],
    }


async def delegate(settings, w) -> UUID:
    await offices.request_access(settings, w["office_admin"], {
        "account_id": w["client"]["public_id"], "level": "manage"}, CLIENT)
    delegation = (await Delegation.select(Delegation.id).where(
        Delegation.client == w["client"]["id"]).first())["id"]
    owner = await scope_in(w["owner"], w["client"]["public_id"])
    await offices.approve(owner, delegation, {
        "level": "view", "company_ids": [str(w["client"]["main_company_id"]), str(w["shop"])],
    }, CLIENT)
    await offices.assign(w["office_admin"], delegation, {
        "membership_id": str(w["anna_membership"]), "company_ids": [str(w["shop"])],
        "level": "view"}, CLIENT)
    return delegation


def walk(app, w, delegation: UUID | None, *, only=None):
    """(method, path) of every account-owned route, with the client's ids in the path."""
    values = {
        "company_id": str(w["store"]), "order_id": str(w["order"]),
        "ticket_id": str(w["ticket"]), "key_id": str(w["key"]),
        "membership_id": str(w["owner_membership"]), "invitation_id": str(w["invitation"]),
        "delegation_id": str(delegation or uuid4()), "assignment_id": str(uuid4()),
        "slug": "e-faktury", "identity_id": str(w["owner"]),
    }
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(SKIPPED_PREFIXES):
            continue
        path = route.path
        for name, value in values.items():
            for kind in ("str", "uuid"):
                path = path.replace("{" + name + ":" + kind + "}", value)
        assert "{" not in path, path
        for handler in route.route_handlers:
            if handler.opt.get("public"):
                continue
            if only is not None and not only(path, handler):
                continue
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                yield method, path


def form(w) -> dict:
    """A form with every field any screen reads, aimed at the client's rows."""
    companies = [str(w["client"]["main_company_id"]), str(w["shop"]), str(w["store"])]
    return {
        "name": "Włamanie", "nip": "", "email": "wlamywacz@example.com", "role": "owner",
        "level": "manage", "street": "", "postal_code": "", "city": "", "country": "PL",
        "subject": "Włamanie", "message": "Włamanie", "category": "other",
        "scopes": "write", "company_ids": companies, "account": w["client"]["public_id"],
        "account_id": w["client"]["public_id"], "membership_id": str(w["owner_membership"]),
        "mfa_policy": "none", "is_accounting_office": "1", "password": PASSWORD,
        **{f"level_{c}": "manage" for c in companies},
    }


async def try_everything(client, app, w, delegation, secrets, *, only=None) -> list[str]:
    leaks = []
    tried = 0
    for method, path in walk(app, w, delegation, only=only):
        variants = [{}, {"headers": HTMX}]
        for extra in variants:
            if method == "GET":
                response = await client.get(path, follow_redirects=False, **extra)
            else:
                response = await client.post_form(path, form(w), follow_redirects=False,
                                                  htmx=bool(extra))
            tried += 1
            assert response.status_code < 500, (method, path, response.status_code)
            body = response.text
            leaks += [f"{method} {path}: {s}" for s in secrets if s in body]
    assert tried > 100
    return leaks


async def sign_in_and_switch(client, email, client_public_id) -> int:
    await client.sign_in(email, PASSWORD)
    switched = await client.post_form("/accounts/switch", {"account": client_public_id},
                                      follow_redirects=False)
    return switched.status_code


@pytest.mark.parametrize("state", ["without_assignment", "after_end_date", "after_revocation"])
async def test_office_people_without_live_access_read_and_write_nothing(
        app, client, settings, state):
    w = await world()
    delegation = await delegate(settings, w)
    email = "anna@biuro.example"
    if state == "without_assignment":
        email = "piotr@biuro.example"
    elif state == "after_end_date":
        await Delegation.update({Delegation.ends_at: datetime.now(UTC) - timedelta(minutes=1)}
                                ).where(Delegation.id == delegation)
    else:
        owner = await scope_in(w["owner"], w["client"]["public_id"])
        await offices.end(owner, delegation, CLIENT, side="client")
    before = await client_rows(w["client"]["id"])
    assert await sign_in_and_switch(client, email, w["client"]["public_id"]) == 404
    leaks = await try_everything(client, app, w, delegation,
                                 SECRETS_ALWAYS + SECRETS_UNASSIGNED)
    assert leaks == []
    assert await client_rows(w["client"]["id"]) == before


async def test_an_assigned_person_is_refused_everything_above_the_ceiling(app, client, settings):
    w = await world()
    delegation = await delegate(settings, w)
    before = await client_rows(w["client"]["id"])
    assert await sign_in_and_switch(client, "anna@biuro.example",
                                    w["client"]["public_id"]) == 303
    allowed = ROLE_PERMISSIONS["delegate"]

    def above(path: str, handler) -> bool:
        permission = handler.opt.get("permission")
        # What a delegate may not do at all, and every write to a company (hers is "view").
        return (not isinstance(permission, Permission) or permission not in allowed
                or path.startswith("/companies"))

    leaks = await try_everything(client, app, w, delegation, SECRETS_ALWAYS, only=above)
    assert leaks == []
    # Her own company at "view": the edit form is refused, the save too.
    for path in (f"/companies/{w['shop']}/edit",):
        assert (await client.get(path, follow_redirects=False)).status_code == 403
    saved = await client.post_form(f"/companies/{w['shop']}", form(w), follow_redirects=False)
    assert saved.status_code == 403
    assert await client_rows(w["client"]["id"]) == before
    assert await DelegationAssignment.count() == 1 and await DelegationCompany.count() == 2


async def test_the_offices_api_key_reads_its_delegations_never_the_clients_rows(
        app, client, settings):
    w = await world()
    await delegate(settings, w)
    before = await client_rows(w["client"]["id"])
    secret = await make_key(w["admin"], w["office"], scopes=("read", "write"))
    headers = bearer(secret)
    for method, path in walk(app, w, None, only=lambda path, _h: path.startswith("/api/v1/")):
        body = {"name": "Włamanie", "nip": "", "country": "PL"}
        response = await client.request(method, path, headers=headers,
                                         content=json.dumps(body) if method != "GET" else None)
        assert response.status_code < 500, (method, path)
        # Its own delegations name the delegated companies (as /office/clients does).
        secrets = SECRETS_ALWAYS if path == "/api/v1/delegations" else (
            *SECRETS_ALWAYS, "Sklep Klienta")
        assert not [s for s in secrets if s in response.text], path
    assert await client_rows(w["client"]["id"]) == before
