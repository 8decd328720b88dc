"""The two screens of accounting offices over HTTP: /office/clients and /account/offices, as
pages and as htmx fragments, the forms' errors next to their fields, and the switcher group."""

from __future__ import annotations

import re

from portal.tables import (
    Account,
    AuditEvent,
    Delegation,
    DelegationAssignment,
    DelegationCompany,
    Membership,
)
from portal.testing import factories
from tests.conftest import HTMX

PASSWORD = factories.PASSWORD


async def office_and_client():
    admin = await factories.identity("admin@biuro.example", first_name="Ewa", last_name="Biuro")
    employee = await factories.identity("anna@biuro.example", first_name="Anna",
                                        last_name="Nowak")
    owner = await factories.identity("wlasciciel@klient.example")
    office = await factories.account(admin, name="Biuro Rachunkowe X", nip="7740001454")
    await Account.update({Account.is_accounting_office: True}).where(Account.id == office["id"])
    employee_membership = await factories.membership(employee, office["id"])
    client = await factories.account(owner, name="Piekarnia Klient", nip="5260250274")
    shop = await factories.company(client["id"], name="Sklep Klienta")
    return {"office": office, "client": client, "shop": shop,
            "employee_membership": employee_membership}


def form_of(html: str, action: str) -> bool:
    return f'action="{action}"' in html


async def test_the_whole_flow_over_http_pages_and_fragments(client):
    w = await office_and_client()
    await client.sign_in("admin@biuro.example", PASSWORD)
    page = await client.get("/office/clients")
    assert page.status_code == 200
    assert "Poproś klienta o dostęp" in page.text and 'name="account_id"' in page.text
    home = (await client.get("/")).text
    assert 'href="/office/clients"' in home  # the navigation entry
    for path in ("/users", "/api-keys", "/billing"):  # people of their own account see them
        assert f'href="{path}"' in home, path
    fragment = await client.get("/office/clients", headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text

    # A bad request: the form comes back with the message tied to the field.
    bad = await client.post_form("/office/clients/request",
                                 {"account_id": "zzz", "level": "edit"}, htmx=True)
    assert bad.status_code == 422
    assert 'aria-invalid="true"' in bad.text and 'id="error-account_id"' in bad.text
    assert 'aria-describedby="hint-account_id error-account_id"' in bad.text
    assert await Delegation.count() == 0

    # A request for an account that does not exist and one that does: the same answer.
    answers = []
    for account_id in ("0123456789ab", w["client"]["public_id"]):
        response = await client.post_form("/office/clients/request", {
            "account_id": account_id, "level": "manage", "company_ids": "",
        }, follow_redirects=False)
        assert response.status_code == 303
        answers.append((response.headers["location"], response.cookies.get("portal_flash")))
    assert answers[0][0] == answers[1][0] and answers[0][1] is not None
    listed = (await client.get("/office/clients")).text
    assert "Piekarnia Klient" not in listed  # not named before the client approves

    # The client's owner approves with a lower ceiling.
    await client.post_form("/logout", {})
    await client.sign_in("wlasciciel@klient.example", PASSWORD)
    card = await client.get("/account")
    assert 'href="/account/offices"' in card.text
    screen = await client.get("/account/offices")
    assert screen.status_code == 200 and "Biuro Rachunkowe X" in screen.text
    delegation = (await Delegation.select(Delegation.id).where(
        Delegation.client == w["client"]["id"]).first())["id"]
    refused = await client.post_form(f"/account/offices/{delegation}/approve",
                                     {"level": "edit", "company_ids": []}, htmx=True)
    assert refused.status_code == 422 and "Wybierz co najmniej jedną firmę." in refused.text
    approved = await client.post_form(f"/account/offices/{delegation}/approve", {
        "level": "edit", "company_ids": [str(w["client"]["main_company_id"]), str(w["shop"])],
    }, follow_redirects=False)
    assert approved.status_code == 303
    assert {r["level"] for r in await DelegationCompany.select(DelegationCompany.level)} == {
        "edit"}

    # The office admin assigns Anna; above the ceiling is refused next to the field.
    await client.post_form("/logout", {})
    await client.sign_in("admin@biuro.example", PASSWORD)
    above = await client.post_form(f"/office/clients/{delegation}/assign", {
        "membership_id": str(w["employee_membership"]), "level": "manage",
        "company_ids": [str(w["shop"])]}, htmx=True)
    assert above.status_code == 422 and f'id="error-level-{delegation}"' in above.text
    assert await DelegationAssignment.count() == 0
    done = await client.post_form(f"/office/clients/{delegation}/assign", {
        "membership_id": str(w["employee_membership"]), "level": "edit",
        "company_ids": [str(w["shop"])]}, follow_redirects=False)
    assert done.status_code == 303 and await DelegationAssignment.count() == 1

    # Anna sees the client in the switcher's group and works in it.
    await client.post_form("/logout", {})
    await client.sign_in("anna@biuro.example", PASSWORD)
    switcher = (await client.get("/accounts", headers=HTMX)).text
    assert "Klienci biura Biuro Rachunkowe X" in switcher and "Piekarnia Klient" in switcher
    switched = await client.post_form("/accounts/switch", {
        "account": w["client"]["public_id"], "next": "/companies"}, follow_redirects=False)
    assert switched.status_code == 303
    companies = (await client.get("/companies")).text
    assert "Sklep Klienta" in companies and "przez biuro Biuro Rachunkowe X" in companies
    assert re.search(r"Piekarnia Klient</a>", companies) is None  # the main one is not hers
    saved = await client.post_form(f"/companies/{w['shop']}", {
        "name": "Sklep Klienta Nowy", "nip": "", "street": "", "postal_code": "", "city": "",
        "country": "PL"}, follow_redirects=False)
    assert saved.status_code == 303
    for path in ("/users", "/api-keys", "/billing", "/users/audit", "/account/offices"):
        assert (await client.get(path, follow_redirects=False)).status_code == 403, path
    for path in ("/users", "/api-keys", "/billing"):  # and no link leads there
        assert f'href="{path}"' not in companies, path
    assert 'href="/companies"' in companies and 'href="/orders"' in companies
    card = (await client.get("/account")).text
    assert "Liczba użytkowników" not in card and "Logowanie dwuetapowe w tym koncie" not in card
    event = await AuditEvent.select().where(
        (AuditEvent.tag == "account:company:update")
        & (AuditEvent.account_id == w["client"]["id"])).first()
    assert event is not None

    # The client's audit log names Anna and the office.
    await client.post_form("/logout", {})
    await client.sign_in("wlasciciel@klient.example", PASSWORD)
    log = (await client.get("/users/audit")).text
    assert "Anna Nowak (Biuro Rachunkowe X)" in log
    ended = await client.post_form(f"/account/offices/{delegation}/end", {},
                                   follow_redirects=False)
    assert ended.status_code == 303

    # Anna's next click finds nothing of the client.
    await client.post_form("/logout", {})
    await client.sign_in("anna@biuro.example", PASSWORD)
    gone = await client.get(f"/companies/{w['shop']}", follow_redirects=False)
    assert gone.status_code == 404
    assert await Membership.count().where(Membership.account == w["client"]["id"]) == 1


async def test_an_account_without_the_flag_is_told_what_the_screen_needs(client):
    owner = await factories.identity("wlasciciel@klient.example")
    await factories.account(owner, name="Zwykłe konto")
    await client.sign_in("wlasciciel@klient.example", PASSWORD)
    page = await client.get("/office/clients")
    assert page.status_code == 403 and "Prowadzę biuro rachunkowe" in page.text
    assert 'href="/office/clients"' not in (await client.get("/")).text
    refused = await client.post_form("/office/clients/request", {"account_id": "0123456789ab",
                                                                 "level": "view"})
    assert refused.status_code == 403
    assert await Delegation.count() == 0
