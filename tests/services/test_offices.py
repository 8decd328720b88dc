"""Accounting offices: a client's delegation, the office's assignments, the one tenant gate
(Scope from the session, as every request builds it) and the rules the database keeps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from portal.services import accounts, audit_log, companies, offices, sessions
from portal.services.errors import InvalidInput, NotFound
from portal.services.scope import Client, Scope
from portal.tables import (
    Account,
    AuditEvent,
    Company,
    Delegation,
    DelegationAssignment,
    DelegationCompany,
    Membership,
    OutboxEmail,
)
from portal.testing import factories

CLIENT = Client(ip="198.51.100.9", user_agent="pytest")
LIFETIMES = sessions.Lifetimes(idle=timedelta(hours=1), absolute=timedelta(hours=8))


async def scope_in(identity_id: UUID, public_id: str | None) -> Scope:
    """The Scope a request would get: a real session, loaded by the session loader."""
    raw = await sessions.start(identity_id, CLIENT, LIFETIMES, account_public_id=public_id)
    scope = await sessions.load(raw, LIFETIMES)
    assert scope is not None
    return scope


@dataclass
class World:
    office: dict
    client: dict
    office_admin: UUID
    employee: UUID
    employee_membership: UUID
    outsider: UUID
    client_owner: UUID
    companies: list[UUID]  # the client's: main, Sklep, Magazyn


async def world() -> World:
    admin = await factories.identity("admin@biuro.example", first_name="Ewa",
                                     last_name="Biurowa")
    employee = await factories.identity("anna@biuro.example", first_name="Anna",
                                        last_name="Nowak")
    outsider = await factories.identity("piotr@biuro.example")
    owner = await factories.identity("wlasciciel@klient.example")
    office = await factories.account(admin, name="Biuro Rachunkowe X", nip="7740001454")
    await Account.update({Account.is_accounting_office: True}).where(
        Account.id == office["id"])
    employee_membership = await factories.membership(employee, office["id"])
    await factories.membership(outsider, office["id"])
    client = await factories.account(owner, name="Piekarnia Klient", nip="5260250274")
    shop = await factories.company(client["id"], name="Sklep")
    store = await factories.company(client["id"], name="Magazyn")
    return World(office, client, admin, employee, employee_membership, outsider, owner,
                 [client["main_company_id"], shop, store])


async def ask(settings, w: World, **values) -> None:
    scope = await scope_in(w.office_admin, w.office["public_id"])
    await offices.request_access(settings, scope, {
        "account_id": w.client["public_id"], "level": "manage", "company_ids": [], **values,
    }, CLIENT)


async def pending_id(w: World) -> UUID:
    return (await Delegation.select(Delegation.id).where(
        (Delegation.client == w.client["id"]) & (Delegation.state == "pending")).first())["id"]


async def approved(settings, w: World, *, level="edit", companies_=None) -> UUID:
    await ask(settings, w)
    delegation = await pending_id(w)
    owner = await scope_in(w.client_owner, w.client["public_id"])
    await offices.approve(owner, delegation, {
        "level": level, "company_ids": [str(c) for c in (companies_ or w.companies[:2])],
    }, CLIENT)
    return delegation


async def assigned(settings, w: World) -> UUID:
    """Approved at edit for main and Sklep; Anna: edit on main, view on Sklep."""
    delegation = await approved(settings, w)
    admin = await scope_in(w.office_admin, w.office["public_id"])
    await offices.assign(admin, delegation, {"membership_id": str(w.employee_membership),
                                             "company_ids": [str(w.companies[0])],
                                             "level": "edit"}, CLIENT)
    await offices.assign(admin, delegation, {"membership_id": str(w.employee_membership),
                                             "company_ids": [str(w.companies[1])],
                                             "level": "view"}, CLIENT)
    return delegation


# --- asking ------------------------------------------------------------------------------------


async def test_a_request_by_id_is_mailed_to_the_clients_owners_and_kept_pending(settings):
    w = await world()
    await ask(settings, w, ends_on=(datetime.now(UTC) + timedelta(days=30)).date().isoformat())
    row = await Delegation.select().where(Delegation.client == w.client["id"]).first()
    assert row["state"] == "pending" and row["level"] == "manage"
    assert row["ends_at"].astimezone(UTC).hour in (22, 23)  # the end of the day in Warsaw
    asked = await DelegationCompany.count().where(DelegationCompany.delegation == row["id"])
    assert asked == 3  # no companies named: all of them, the client chooses
    mails = await OutboxEmail.select(OutboxEmail.to_address, OutboxEmail.template)
    assert mails == [{"to_address": "wlasciciel@klient.example", "template": "office_request"}]


async def test_a_request_by_nip_needs_an_owners_email_and_matches_only_with_it(settings):
    w = await world()
    scope = await scope_in(w.office_admin, w.office["public_id"])
    with pytest.raises(InvalidInput) as refused:
        await offices.request_access(settings, scope, {"account_id": "526-025-02-74",
                                                       "level": "view"}, CLIENT)
    assert "owner_email" in refused.value.errors
    await offices.request_access(settings, scope, {
        "account_id": "5260250274", "owner_email": "someone@else.example", "level": "view",
    }, CLIENT)
    assert await Delegation.count().where(Delegation.client == w.client["id"]) == 0
    assert await OutboxEmail.count() == 0
    await offices.request_access(settings, scope, {
        "account_id": "5260250274", "owner_email": "Wlasciciel@klient.example",
        "level": "view", "company_ids": ["Sklep nieznany", str(w.companies[1])],
    }, CLIENT)
    row = await Delegation.select().where(Delegation.client == w.client["id"]).first()
    assert [r["company"] for r in await DelegationCompany.select(
        DelegationCompany.company).where(DelegationCompany.delegation == row["id"])] == [
        w.companies[1]]


async def test_no_enumeration_the_office_sees_the_same_for_a_missing_account(settings):
    w = await world()
    scope = await scope_in(w.office_admin, w.office["public_id"])
    await offices.request_access(settings, scope, {"account_id": "0123456789ab",
                                                   "level": "view"}, CLIENT)
    await ask(settings, w)
    await ask(settings, w)  # asked again: no second pending delegation, the same answer
    board = await offices.office_board(scope)
    assert len(board.pending) == 3
    assert {v.other_name for v in board.pending} == {""}  # the client's name is not shown
    assert all(v.companies == [] for v in board.pending)
    assert await Delegation.count().where(Delegation.client == w.client["id"]) == 1


@pytest.mark.parametrize("values, field", [
    ({"account_id": ""}, "account_id"),
    ({"account_id": "xyz"}, "account_id"),
    ({"account_id": "1234567890"}, "account_id"),  # not a valid NIP
    ({"level": "owner"}, "level"),
    ({"ends_on": "2020-01-01"}, "ends_on"),
    ({"ends_on": "31.12.2030"}, "ends_on"),
    ({"company_ids": [f"firma{i}" for i in range(500)]}, "company_ids"),
])
async def test_bad_requests_name_the_field_and_change_nothing(settings, values, field):
    w = await world()
    with pytest.raises(InvalidInput) as refused:
        await ask(settings, w, **values)
    assert field in refused.value.errors
    assert await Delegation.count() == 0 and await AuditEvent.count() == 0


async def test_only_an_offices_owners_and_admins_may_ask(settings):
    w = await world()
    employee = await scope_in(w.employee, w.office["public_id"])
    with pytest.raises(offices.NotAllowed):
        await offices.request_access(settings, employee, {"account_id": w.client["public_id"],
                                                          "level": "view"}, CLIENT)
    owner = await scope_in(w.client_owner, w.client["public_id"])
    with pytest.raises(offices.NotAnOffice):  # no accounting-office flag
        await offices.office_board(owner)


# --- the client decides ------------------------------------------------------------------------


async def test_the_client_approves_fewer_companies_at_a_lower_ceiling_never_more(settings):
    w = await world()
    await ask(settings, w, level="edit")
    delegation = await pending_id(w)
    owner = await scope_in(w.client_owner, w.client["public_id"])
    with pytest.raises(InvalidInput) as refused:
        await offices.approve(owner, delegation, {"level": "manage",
                                                  "company_ids": [str(w.companies[0])]}, CLIENT)
    assert "level" in refused.value.errors
    with pytest.raises(InvalidInput) as refused:
        await offices.approve(owner, delegation, {"level": "view", "company_ids": []}, CLIENT)
    assert "company_ids" in refused.value.errors
    await offices.approve(owner, delegation, {"level": "view",
                                              "company_ids": [str(w.companies[0])]}, CLIENT)
    rows = await DelegationCompany.select(DelegationCompany.company, DelegationCompany.level)
    assert rows == [{"company": w.companies[0], "level": "view"}]
    with pytest.raises(offices.NotPending):
        await offices.approve(owner, delegation, {"level": "view",
                                                  "company_ids": [str(w.companies[0])]}, CLIENT)
    board = await offices.client_board(owner)
    assert [v.other_name for v in board.active] == ["Biuro Rachunkowe X"]


async def test_another_accounts_delegation_is_not_found(settings):
    w = await world()
    await ask(settings, w)
    delegation = await pending_id(w)
    stranger = await factories.identity("obcy@example.com")
    other = await factories.account(stranger, name="Obce konto")
    scope = await scope_in(stranger, other["public_id"])
    for bad in (delegation, str(delegation), "nie-uuid", None):
        with pytest.raises(NotFound):
            await offices.approve(scope, bad, {"level": "view", "company_ids": []}, CLIENT)
        with pytest.raises(NotFound):
            await offices.end(scope, bad, CLIENT, side="client")
    assert (await Delegation.select(Delegation.state).first())["state"] == "pending"


# --- the office assigns ------------------------------------------------------------------------


async def test_assignments_stay_within_the_ceiling_in_the_service_and_the_database(settings):
    w = await world()
    delegation = await approved(settings, w, level="edit")
    admin = await scope_in(w.office_admin, w.office["public_id"])
    with pytest.raises(offices.AboveCeiling):
        await offices.assign(admin, delegation, {"membership_id": str(w.employee_membership),
                                                 "company_ids": [str(w.companies[0])],
                                                 "level": "manage"}, CLIENT)
    with pytest.raises(InvalidInput):  # Magazyn was not approved
        await offices.assign(admin, delegation, {"membership_id": str(w.employee_membership),
                                                 "company_ids": [str(w.companies[2])],
                                                 "level": "view"}, CLIENT)
    assert await DelegationAssignment.count() == 0
    with pytest.raises(asyncpg.CheckViolationError):
        await DelegationAssignment.insert(DelegationAssignment(
            delegation=delegation, membership=w.employee_membership, company=w.companies[0],
            level="manage"))
    client_member = await Membership.select(Membership.id).where(
        Membership.account == w.client["id"]).first()
    with pytest.raises(asyncpg.CheckViolationError):  # not a person of the office
        await DelegationAssignment.insert(DelegationAssignment(
            delegation=delegation, membership=client_member["id"], company=w.companies[0],
            level="view"))
    # Not a delegated company: the trigger (or the composite foreign key) refuses it.
    with pytest.raises((asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError)):
        await DelegationAssignment.insert(DelegationAssignment(
            delegation=delegation, membership=w.employee_membership, company=w.companies[2],
            level="view"))


async def test_the_database_keeps_one_active_delegation_and_the_clients_companies(settings):
    w = await world()
    await ask(settings, w)
    with pytest.raises(asyncpg.UniqueViolationError):
        await Delegation.insert(Delegation(office=w.office["id"], client=w.client["id"]))
    delegation = await pending_id(w)
    other = await factories.account(w.outsider, name="Inne")
    with pytest.raises(asyncpg.CheckViolationError):
        await DelegationCompany.insert(DelegationCompany(
            delegation=delegation, company=other["main_company_id"], level="view"))


async def test_a_lowered_ceiling_lowers_the_assignments_above_it(settings):
    w = await world()
    delegation = await assigned(settings, w)
    await DelegationCompany.update({DelegationCompany.level: "view"}).where(
        DelegationCompany.delegation == delegation)
    levels = {r["level"] for r in await DelegationAssignment.select(DelegationAssignment.level)}
    assert levels == {"view"}


# --- the gate ----------------------------------------------------------------------------------


async def test_an_assigned_person_works_in_the_client_as_a_limited_member(settings):
    w = await world()
    delegation = await assigned(settings, w)
    anna = await scope_in(w.employee, w.office["public_id"])
    groups = await accounts.delegated_choices(anna)
    assert [(g.office, [c.name for c in g.accounts]) for g in groups] == [
        ("Biuro Rachunkowe X", ["Piekarnia Klient"])]
    switched = await accounts.switch(anna, w.client["public_id"])
    assert switched["role"] == "delegate"
    anna = await scope_in(w.employee, w.client["public_id"])
    assert anna.access_source == "delegation"
    assert anna.delegation.id == delegation and anna.delegation.office.name == "Biuro Rachunkowe X"
    assert anna.delegation.company_levels == {w.companies[0]: "edit", w.companies[1]: "view"}
    listing = await companies.list_page(anna)
    assert {r["id"] for r in listing.rows} == set(w.companies[:2])
    with pytest.raises(NotFound):
        await companies.get(anna, w.companies[2])
    assert await companies.can_edit(anna, w.companies[0])
    assert not await companies.can_edit(anna, w.companies[1])
    with pytest.raises(companies.NotAllowed):
        await companies.update(anna, w.companies[1], {"name": "Zmiana", "country": "PL"}, CLIENT)
    from portal.services import audit

    token = audit.ACTING_THROUGH.set(anna)
    try:
        await companies.update(anna, w.companies[0], {"name": "Piekarnia Nowa", "nip": "",
                                                      "country": "PL"}, CLIENT)
    finally:
        audit.ACTING_THROUGH.reset(token)
    events = await AuditEvent.select().where(AuditEvent.tag == "account:company:update")
    assert {e["account_id"] for e in events} == {w.client["id"], w.office["id"]}
    for event in events:
        assert json.loads(event["data"])["actor_name"] == "Anna Nowak (Biuro Rachunkowe X)"
    owner = await scope_in(w.client_owner, w.client["public_id"])
    page = await audit_log.page(owner, audit_log.Filters())
    assert any(r["data"].get("actor_name") == "Anna Nowak (Biuro Rachunkowe X)"
               for r in page.rows)


async def test_without_an_assignment_after_the_end_or_removal_there_is_no_access(settings):
    w = await world()
    delegation = await assigned(settings, w)
    # Piotr belongs to the office but has no assignment.
    piotr = await scope_in(w.outsider, w.client["public_id"])
    assert piotr.delegation is None and piotr.account.id == w.office["id"]
    with pytest.raises(NotFound):
        await accounts.switch(piotr, w.client["public_id"])
    # The end date passed.
    await Delegation.update({Delegation.ends_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Delegation.id == delegation)
    anna = await scope_in(w.employee, w.client["public_id"])
    assert anna.delegation is None and anna.account.id == w.office["id"]
    await Delegation.update({Delegation.ends_at: None}).where(Delegation.id == delegation)
    assert (await scope_in(w.employee, w.client["public_id"])).delegation is not None
    # The client ends it.
    owner = await scope_in(w.client_owner, w.client["public_id"])
    await offices.end(owner, delegation, CLIENT, side="client")
    assert (await scope_in(w.employee, w.client["public_id"])).delegation is None
    assert await Delegation.count().where(Delegation.state == "ended") == 1
    tags = {e["tag"] for e in await AuditEvent.select(AuditEvent.tag)}
    assert {"account:delegation:end", "office:delegation:end"} <= tags


async def test_a_person_removed_from_the_office_loses_the_client(settings):
    w = await world()
    await assigned(settings, w)
    assert (await scope_in(w.employee, w.client["public_id"])).delegation is not None
    await Membership.delete().where(Membership.id == w.employee_membership)
    assert await DelegationAssignment.count() == 0
    scope = await scope_in(w.employee, w.client["public_id"])
    assert scope.account is None and scope.delegation is None


async def test_a_new_request_may_follow_an_expired_delegation(settings):
    w = await world()
    delegation = await approved(settings, w)
    await Delegation.update({Delegation.ends_at: datetime.now(UTC) - timedelta(days=1)}).where(
        Delegation.id == delegation)
    await ask(settings, w)
    states = sorted(r["state"] for r in await Delegation.select(Delegation.state).where(
        Delegation.client == w.client["id"]))
    assert states == ["ended", "pending"]


async def test_the_client_side_is_closed_to_office_people_and_plain_members(settings):
    w = await world()
    await assigned(settings, w)
    anna = await scope_in(w.employee, w.client["public_id"])
    with pytest.raises(offices.NotAllowed):
        await offices.client_board(anna)
    with pytest.raises(offices.NotAllowed):
        await offices.office_board(anna)
    assert (await Company.count().where(Company.account == w.client["id"])) == 3


async def test_the_demo_has_an_office_with_three_clients_pending_active_and_ended():
    from portal.services import demo

    await demo.load()
    await demo.load()  # idempotent
    office = await Account.select(Account.id).where(Account.name == demo.OFFICE).first()
    states = sorted(r["state"] for r in await Delegation.select(Delegation.state).where(
        Delegation.office == office["id"]))
    assert states == ["approved", "ended", "pending"]
    assert await DelegationAssignment.count() == 2  # Ewa on both of Kwiaciarnia's companies
    ewa = (await Membership.select(Membership.identity).where(
        (Membership.account == office["id"]) & (Membership.role == "member")).first())
    client = await Account.select(Account.public_id).where(
        Account.name == "Kwiaciarnia Róża sp. z o.o.").first()
    scope = await scope_in(ewa["identity"], client["public_id"])
    assert scope.access_source == "delegation" and len(scope.delegation.company_levels) == 2


async def test_the_clients_mfa_policy_applies_to_office_people(settings):
    w = await world()
    await assigned(settings, w)
    await Account.update({Account.mfa_policy: "app"}).where(Account.id == w.client["id"])
    anna = await scope_in(w.employee, w.client["public_id"])
    assert anna.access_source == "delegation"
    assert anna.account_mfa_policy == "app" and not anna.meets_account_mfa_policy
    in_office = await scope_in(w.employee, w.office["public_id"])
    assert in_office.account_mfa_policy == "none"
