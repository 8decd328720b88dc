"""Accounts: creation with owner and main company, NIP rules, the card, editing, switching."""

from __future__ import annotations

import json

import pytest

from portal.security.permissions import Permission
from portal.services import accounts, company_data
from portal.services.errors import InvalidInput, NotFound
from portal.services.scope import AccountRef, Client, Scope
from portal.tables import Account, AuditEvent, Company, Identity, Membership, Session
from portal.testing import factories

CLIENT = Client(ip="198.51.100.4", user_agent="pytest")

VALID = {
    "name": "Biuro Rachunkowe Bilans sp. z o.o.",
    "nip": "526-025-02-74",
    "is_accounting_office": "1",
    "street": "ul. Prosta 1",
    "postal_code": "00-838",
    "city": "Warszawa",
    "country": "PL",
}


async def scope_for(identity_id, account: dict | None = None, role: str | None = None) -> Scope:
    """A Scope as the session middleware would build it, with a real session row."""
    from datetime import UTC, datetime, timedelta

    identity = await Identity.select().where(Identity.id == identity_id).first()
    session_hash = f"test-{identity_id.hex}"
    if not await Session.exists().where(Session.id_hash == session_hash):
        now = datetime.now(UTC)
        await Session.insert(Session(id_hash=session_hash, identity=identity_id, last_seen_at=now,
                                     expires_at=now + timedelta(hours=1)))
    ref = None
    if account is not None:
        row = await Account.select().where(Account.id == account["id"]).first()
        ref = AccountRef(row["id"], row["public_id"], row["name"])
    return Scope.build(session_hash=session_hash, identity_id=identity_id,
                       email=identity["email"], language="pl", account=ref, role=role)


# --- NIP and address rules ---------------------------------------------------------------------


@pytest.mark.parametrize("nip", ["5260250274", "526-025-02-74", "526 025 02 74", "PL5260250274",
                                 "7740001454", "1234563218"])
def test_valid_polish_nips_are_stored_as_ten_digits(nip):
    assert company_data.clean_tax_id(nip, "PL", required=True) == company_data.nip_digits(nip)
    assert len(company_data.nip_digits(nip)) == 10


@pytest.mark.parametrize("nip", ["5260250275", "526025027", "52602502741", "abcdefghij",
                                 "0000000000", "١٢٣٤٥٦٣٢١٨", "1234567890"])
def test_nips_with_a_wrong_checksum_or_shape_are_refused(nip):
    with pytest.raises(company_data.InvalidNip):
        company_data.clean_tax_id(nip, "PL", required=True)


def test_nip_checksum_uses_the_official_weights():
    assert company_data.NIP_WEIGHTS == (6, 5, 7, 2, 3, 4, 5, 6, 7)
    # 1234563218: 1*6+2*5+3*7+4*2+5*3+6*4+3*5+2*6+1*7 = 118; 118 % 11 = 8 = last digit
    assert company_data.nip_is_valid("1234563218")
    # A sum that leaves 10 can never be valid.
    assert not company_data.nip_is_valid("1234567890")


def test_a_pl_account_needs_a_nip_a_foreign_one_does_not():
    with pytest.raises(InvalidInput) as raised:
        accounts.validate({**VALID, "nip": ""})
    assert raised.value.errors == {"nip": company_data.NipRequired.message}
    foreign = accounts.validate({**VALID, "nip": "", "country": "DE", "postal_code": "10115"})
    assert foreign["nip"] == "" and foreign["country"] == "DE"
    vat = accounts.validate({**VALID, "nip": "de 123-456-789", "country": "DE",
                             "postal_code": "10115"})
    assert vat["nip"] == "DE123456789"


def test_postal_code_is_00_000_in_poland_and_five_digits_are_accepted():
    assert accounts.validate(VALID)["postal_code"] == "00-838"
    assert accounts.validate({**VALID, "postal_code": "00838"})["postal_code"] == "00-838"
    with pytest.raises(InvalidInput) as raised:
        accounts.validate({**VALID, "postal_code": "0-0838"})
    assert "postal_code" in raised.value.errors


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(InvalidInput) as raised:
        accounts.validate({"name": "x" * 201, "nip": "123", "postal_code": "abc",
                           "street": "s" * 201, "city": "c" * 101, "country": "XX"})
    assert set(raised.value.errors) == {"name", "nip", "postal_code", "street", "city", "country"}


def test_control_characters_and_nul_bytes_are_refused():
    with pytest.raises(InvalidInput) as raised:
        accounts.validate({**VALID, "name": "Firma\x00", "city": "Kra\x07ków"})
    assert set(raised.value.errors) == {"name", "city"}


# --- creating an account -----------------------------------------------------------------------


async def test_creating_an_account_makes_the_owner_the_main_company_and_an_audit_event():
    me = await factories.identity("tworca@example.com")
    scope = await scope_for(me)
    created = await accounts.create(scope, VALID, CLIENT)

    account = await Account.select().where(Account.id == created["id"]).first()
    assert account["nip"] == "5260250274"
    assert account["is_accounting_office"] is True
    assert len(account["public_id"]) == 12 and int(account["public_id"], 16) >= 0
    membership = await Membership.select().where(Membership.account == created["id"]).first()
    assert (membership["identity"], membership["role"]) == (me, "owner")
    main = await Company.select().where(Company.account == created["id"])
    assert len(main) == 1
    assert (main[0]["name"], main[0]["nip"], main[0]["is_main"]) == (VALID["name"], "5260250274",
                                                                      True)
    assert (main[0]["street"], main[0]["postal_code"], main[0]["city"]) == (
        "ul. Prosta 1", "00-838", "Warszawa")
    event = await AuditEvent.select().where(AuditEvent.tag == "account:account:create").first()
    assert event["account_id"] == created["id"] and event["identity_id"] == me
    assert event["ip"] == "198.51.100.4"
    # The new account is the session's and, for the next sign-in, the identity's.
    session = await Session.select().where(Session.id_hash == scope.session_hash).first()
    assert session["account_public_id"] == account["public_id"]
    identity = await Identity.select().where(Identity.id == me).first()
    assert identity["last_account_id"] == account["public_id"]


async def test_a_refused_account_creates_nothing():
    me = await factories.identity("nic@example.com")
    with pytest.raises(InvalidInput):
        await accounts.create(await scope_for(me), {**VALID, "nip": "5260250275"}, CLIENT)
    assert await Account.count() == 0
    assert await Company.count() == 0
    assert await Membership.count() == 0
    assert await AuditEvent.count().where(AuditEvent.tag == "account:account:create") == 0


async def test_the_same_nip_may_exist_in_many_accounts():
    first = await factories.identity("pierwsza@example.com")
    second = await factories.identity("druga@example.com")
    one = await accounts.create(await scope_for(first), VALID, CLIENT)
    two = await accounts.create(await scope_for(second), VALID, CLIENT)
    assert one["public_id"] != two["public_id"]
    assert await Account.count().where(Account.nip == "5260250274") == 2
    assert await Company.count().where(Company.nip == "5260250274") == 2


async def test_one_account_has_only_one_main_company_even_by_sql():
    import asyncpg

    account = await factories.account(await factories.identity())
    with pytest.raises(asyncpg.UniqueViolationError):
        await factories.company(account["id"], name="Druga główna", is_main=True)


# --- the card and editing ----------------------------------------------------------------------


async def test_the_card_counts_companies_and_users():
    owner = await factories.identity("karta@example.com")
    account = await factories.account(owner, name="Karta sp. z o.o.")
    await factories.company(account["id"], name="B")
    await factories.company(account["id"], name="C")
    await factories.membership(await factories.identity("czlonek@example.com"), account["id"])
    card = await accounts.card(await scope_for(owner, account, "owner"))
    assert card["company_count"] == 3
    assert card["user_count"] == 2
    assert card["public_id"] == account["public_id"]
    assert card["main_company"]["name"] == "Karta sp. z o.o." and card["main_company"]["linked"]


async def test_owners_and_admins_edit_the_account_members_may_not():
    owner = await factories.identity("wl@example.com")
    account = await factories.account(owner)
    admin = await factories.identity("adm@example.com")
    await factories.membership(admin, account["id"], "admin")
    member = await factories.identity("czl@example.com")
    await factories.membership(member, account["id"], "member")

    member_scope = await scope_for(member, account, "member")
    assert not member_scope.can(Permission.ACCOUNT_EDIT)
    with pytest.raises(accounts.NotAllowed):
        await accounts.update(member_scope, {**VALID, "name": "Przejęta"}, CLIENT)
    assert (await Account.select(Account.name).first())["name"] == "Firma Testowa sp. z o.o."

    await accounts.update(await scope_for(admin, account, "admin"),
                          {**VALID, "name": "Nowa Nazwa"}, CLIENT)
    row = await Account.select().first()
    assert row["name"] == "Nowa Nazwa" and row["city"] == "Warszawa"
    event = await AuditEvent.select().where(AuditEvent.tag == "account:account:update").first()
    assert event["identity_id"] == admin
    assert "name" in json.loads(event["data"])["changed"]


async def test_a_refused_edit_changes_nothing():
    owner = await factories.identity("bez-zmian@example.com")
    account = await factories.account(owner)
    with pytest.raises(InvalidInput):
        await accounts.update(await scope_for(owner, account, "owner"),
                              {**VALID, "name": "Inna", "postal_code": "zły"}, CLIENT)
    assert (await Account.select(Account.name).first())["name"] == "Firma Testowa sp. z o.o."
    assert await AuditEvent.count() == 0


# --- the switcher ------------------------------------------------------------------------------


async def test_choices_list_the_persons_accounts_with_roles_and_filter():
    me = await factories.identity("biuro@example.com")
    others = await factories.identity("ktos@example.com")
    mine = [await factories.account(me, name=f"Klient {i:02d}") for i in range(10)]
    admin_of = await factories.account(others, name="Cudze Konto")
    await factories.membership(me, admin_of["id"], "admin")
    await factories.account(others, name="Nie Moje")
    scope = await scope_for(me, mine[3], "owner")

    found = await accounts.choices(scope)
    assert found.total == 11 and found.matching == 11 and found.filterable
    assert [choice.name for choice in found.accounts][:2] == ["Cudze Konto", "Klient 00"]
    assert {c.role for c in found.accounts} == {"owner", "admin"}
    assert [c.name for c in found.accounts if c.current] == ["Klient 03"]
    assert "Nie Moje" not in {c.name for c in found.accounts}

    narrowed = await accounts.choices(scope, "klient 0")
    assert narrowed.matching == 10 and narrowed.total == 11
    by_id = await accounts.choices(scope, mine[5]["public_id"][:8])
    assert [c.name for c in by_id.accounts] == ["Klient 05"]
    by_nip = await accounts.choices(scope, "526-025")
    assert by_nip.matching == 11
    wildcard = await accounts.choices(scope, "%_")
    assert wildcard.matching == 0


async def test_switching_needs_membership_and_is_remembered():
    me = await factories.identity("zmiana@example.com")
    other = await factories.identity("obcy@example.com")
    first = await factories.account(me, name="Pierwsze")
    second = await factories.account(me, name="Drugie")
    foreign = await factories.account(other, name="Obce")
    scope = await scope_for(me, first, "owner")

    chosen = await accounts.switch(scope, second["public_id"])
    assert chosen["role"] == "owner"
    session = await Session.select().where(Session.id_hash == scope.session_hash).first()
    assert session["account_public_id"] == second["public_id"]
    assert (await Identity.select().where(Identity.id == me).first())["last_account_id"] == (
        second["public_id"])

    for bad in (foreign["public_id"], "not-an-id", "", "0" * 12, "x" * 5000):
        with pytest.raises(NotFound):
            await accounts.switch(scope, bad)
    session = await Session.select().where(Session.id_hash == scope.session_hash).first()
    assert session["account_public_id"] == second["public_id"]


async def test_the_switcher_with_nothing_typed_filters_nothing(monkeypatch):
    """Issue 20: ``ILIKE '%%'`` was evaluated for each of a person's 1,000 accounts."""
    from portal.tables import Membership

    me = await factories.identity("biuro@example.com")
    account = await factories.account(me, name="Klient")
    scope = await scope_for(me, account, "owner")
    sent = []
    raw = Membership.raw

    def recording(sql, *args):
        sent.append(sql)
        return raw(sql, *args)

    monkeypatch.setattr(Membership, "raw", recording)
    for typed in (None, "", "   "):
        found = await accounts.choices(scope, typed)
        assert (found.total, found.matching, len(found.accounts)) == (1, 1, 1)
    assert len(sent) == 6 and not any("ILIKE" in sql for sql in sent)
    assert (await accounts.choices(scope, "klient")).matching == 1
    assert "ILIKE" in sent[-1]
