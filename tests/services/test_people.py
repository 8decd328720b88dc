"""People of an account: adding by email (always an invitation), the same email
once per account, roles and the owner rules (also under concurrency, also in the database),
company levels, removal and leaving, the list, invitations from start to end."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest

from portal.db import ENGINE
from portal.services import (
    accounts,
    audit_log,
    company_access,
    invitations,
    membership,
    membership_changes,
    mfa,
    people,
)
from portal.services.errors import InvalidInput, NotFound
from portal.tables import (
    Account,
    AuditEvent,
    CompanyAccess,
    Identity,
    Invitation,
    Membership,
    OutboxEmail,
    Session,
)
from portal.testing import factories
from tests.conftest import last_mail
from tests.services.test_accounts import CLIENT, scope_for


async def fresh(scope):
    """The scope right after re-authentication (removing a person needs it)."""
    return replace(scope, reauth_at=datetime.now(UTC))


async def owned_account(email="wlasciciel@example.com", name="Konto Główne"):
    owner = await factories.identity(email)
    account = await factories.account(owner, name=name)
    # Signed in a moment ago: sign-in counts as re-authentication.
    return owner, account, await fresh(await scope_for(owner, account, "owner"))


async def member_of(account, email, role="member", companies=None):
    identity_id = await factories.identity(email)
    membership_id = await factories.membership(identity_id, account["id"], role, companies)
    return identity_id, membership_id


def token_from(mail: dict) -> str:
    return re.search(r"/invitations/(\S+)", mail["text_body"]).group(1)


# --- adding by email ----------------------------------------------------------------------------


async def test_an_existing_id_gets_an_invitation_like_any_email_and_joins_when_it_accepts(
        settings):
    """Adding a person never tells whether the email has an ID (anyone can make an account
    and try emails): the same answer, an invitation and a mail either way."""
    _, account, scope = await owned_account()
    second = await factories.company(account["id"], name="Druga Spółka")
    colleague = await factories.identity("Kolega@Example.com")
    levels = {str(second): "edit", str(account["main_company_id"]): "none"}
    known = await membership_changes.add(settings, scope, {"email": "kolega@EXAMPLE.com",
                                                           "role": "member"},
                                         levels, CLIENT)
    unknown = await membership_changes.add(settings, scope, {"email": "obcy@example.com",
                                                             "role": "member"},
                                           levels, CLIENT)
    assert known.kind == unknown.kind == "invitation"
    assert await Membership.count().where(Membership.identity == colleague) == 0
    assert await Invitation.count() == 2
    notice = await last_mail("Kolega@Example.com")  # as the ID spells it
    assert "Konto Główne" in notice["text_body"] and "/invitations/" in notice["text_body"]
    # The invitation waits in the colleague's switcher; accepting it makes the membership.
    colleague_scope = await scope_for(colleague)
    pending = await invitations.pending_for(colleague_scope)
    assert [row["account_name"] for row in pending] == ["Konto Główne"]
    await invitations.accept_by_id(colleague_scope, pending[0]["id"], CLIENT)
    membership = await Membership.select().where(Membership.identity == colleague).first()
    assert (membership["account"], membership["role"]) == (account["id"], "member")
    access = await CompanyAccess.select(CompanyAccess.company, CompanyAccess.level).where(
        CompanyAccess.membership == membership["id"])
    assert access == [{"company": second, "level": "edit"}]
    choices = await accounts.choices(await scope_for(colleague))
    assert [c.name for c in choices.accounts] == ["Konto Główne"]


async def test_granting_owner_or_admin_needs_a_fresh_re_authentication(settings):
    owner, account, _ = await owned_account()
    stale = replace(await scope_for(owner, account, "owner"), reauth_at=None)
    _, membership_id = await member_of(account, "czlonek@example.com")
    for role in ("owner", "admin"):
        with pytest.raises(mfa.ReauthRequired):
            await membership_changes.add(settings, stale, {"email": "nowy@example.com",
                                                           "role": role}, {},
                                         CLIENT)
        with pytest.raises(mfa.ReauthRequired):
            await membership_changes.change_role(stale, membership_id, role, CLIENT)
    assert await Invitation.count() == 0
    assert (await Membership.select().where(Membership.id == membership_id).first())[
        "role"] == "member"
    # A member role needs none; after re-authentication the grant goes through.
    await membership_changes.add(settings, stale, {"email": "nowy@example.com", "role": "member"},
                                 {},
                                 CLIENT)
    await membership_changes.change_role(await fresh(stale), membership_id, "admin", CLIENT)


async def test_an_unknown_email_gets_an_invitation_with_a_hashed_single_use_link(settings):
    _, _, scope = await owned_account()
    added = await membership_changes.add(settings, scope, {"email": "Nowa@Example.com",
                                                           "role": "admin"},
                                         {}, CLIENT)
    assert added.kind == "invitation"
    invitation = await Invitation.select().first()
    assert invitation["state"] == "pending" and invitation["role"] == "admin"
    assert invitation["email"] == "Nowa@example.com"
    mail = await last_mail("Nowa@example.com")
    token = token_from(mail)
    # The expiry reads as in the UI: the person's day and time, not UTC.
    from portal.i18n import when

    assert when(invitation["expires_at"]) in mail["text_body"] and "UTC" not in mail["text_body"]
    assert invitation["token_hash"] != token and len(invitation["token_hash"]) == 64
    assert token not in json.dumps(await AuditEvent.select(AuditEvent.data), default=str)
    lifetime = invitation["expires_at"] - invitation["created_at"]
    assert lifetime.days == 7
    info = await invitations.by_token(token)
    assert (info.account_name, info.role, info.has_id) == ("Konto Główne", "admin", False)


async def test_the_same_email_only_once_per_account_whatever_its_case(settings):
    _, account, scope = await owned_account()
    await member_of(account, "jest@example.com")
    with pytest.raises(membership_changes.EmailAlreadyMember) as raised:
        await membership_changes.add(settings, scope, {"email": "JEST@example.COM",
                                                       "role": "member"}, {},
                                     CLIENT)
    assert raised.value.field == "email"
    await membership_changes.add(settings, scope, {"email": "zaproszona@example.com",
                                                   "role": "member"}, {},
                                 CLIENT)
    with pytest.raises(membership.EmailAlreadyInvited):
        await membership_changes.add(settings, scope, {"email": "Zaproszona@Example.com",
                                                       "role": "admin"},
                                     {}, CLIENT)
    # The owner themself is a member too.
    with pytest.raises(membership_changes.EmailAlreadyMember):
        await membership_changes.add(settings, scope, {"email": "WLASCICIEL@example.com",
                                                       "role": "member"},
                                     {}, CLIENT)
    assert await Invitation.count() == 1
    assert await Membership.count().where(Membership.account == account["id"]) == 2


async def test_the_database_keeps_one_pending_invitation_per_email_and_account():
    _, account, _ = await owned_account()
    row = {"account": account["id"], "role": "member", "expires_at": datetime.now(UTC)}
    await Invitation.insert(Invitation(email="a@example.com", token_hash="1" * 64, **row))
    with pytest.raises(asyncpg.UniqueViolationError):
        await Invitation.insert(Invitation(email="A@EXAMPLE.com", token_hash="2" * 64, **row))


async def test_two_admins_adding_one_email_at_once_make_one_invitation(settings):
    _, _, scope = await owned_account()
    results = await asyncio.gather(*[
        membership_changes.add(settings, scope, {"email": "rownoczesna@example.com",
                                                 "role": "member"}, {},
                               CLIENT) for _ in range(4)
    ], return_exceptions=True)
    assert sum(isinstance(r, membership_changes.Added) for r in results) == 1
    assert all(isinstance(r, (membership_changes.Added,
                              membership.EmailAlreadyInvited)) for r in results)
    assert await Invitation.count() == 1


@pytest.mark.parametrize("values, field", [
    ({"email": "", "role": "member"}, "email"),
    ({"email": "nie-email", "role": "member"}, "email"),
    ({"email": "x" * 400 + "@example.com", "role": "member"}, "email"),
    ({"email": "ok@example.com", "role": "superadmin"}, "role"),
    ({"email": "ok@example.com", "role": ""}, "role"),
])
async def test_bad_input_is_a_field_error_and_adds_nothing(settings, values, field):
    _, _, scope = await owned_account()
    with pytest.raises(InvalidInput) as raised:
        await membership_changes.add(settings, scope, values, {}, CLIENT)
    assert field in raised.value.errors
    assert await Invitation.count() == 0 and await Membership.count() == 1


async def test_levels_must_be_known_and_companies_of_this_account(settings):
    _, account, scope = await owned_account()
    other_owner = await factories.identity("inny@example.com")
    theirs = await factories.account(other_owner, name="Obce")
    new = {"email": "ktos@example.com", "role": "member"}
    with pytest.raises(company_access.UnknownLevel):
        await membership_changes.add(settings, scope, new,
                                     {str(account["main_company_id"]): "god"}, CLIENT)
    for key in (str(theirs["main_company_id"]), "nie-uuid", str(uuid.uuid4())):
        with pytest.raises(NotFound):
            await membership_changes.add(settings, scope, new, {key: "view"}, CLIENT)
    assert await Invitation.count() == 0


async def test_admins_cannot_add_owners_and_members_cannot_add_anyone(settings):
    _, account, _ = await owned_account()
    admin, _ = await member_of(account, "admin@example.com", "admin")
    admin_scope = await fresh(await scope_for(admin, account, "admin"))
    with pytest.raises(membership.OwnersOnly):
        await membership_changes.add(settings, admin_scope, {"email": "szef@example.com",
                                                             "role": "owner"},
                                     {}, CLIENT)
    added = await membership_changes.add(settings, admin_scope,
                                         {"email": "pomocnik@example.com", "role": "admin"},
                                         {}, CLIENT)
    assert added.kind == "invitation"
    member, _ = await member_of(account, "czlonek@example.com")
    with pytest.raises(membership.NotAllowed):
        await membership_changes.add(settings, await scope_for(member, account, "member"),
                                     {"email": "ktos@example.com", "role": "member"}, {}, CLIENT)
    assert await Invitation.count() == 1


# --- roles and the owner rule -------------------------------------------------------------------


async def test_only_owners_make_or_unmake_owners(settings):
    owner, account, owner_scope = await owned_account()
    admin, admin_membership = await member_of(account, "admin@example.com", "admin")
    _, member_membership = await member_of(account, "czlonek@example.com", "member",
                                           {account["main_company_id"]: "view"})
    admin_scope = await fresh(await scope_for(admin, account, "admin"))
    owner_membership = (await Membership.select().where(Membership.identity == owner).first())
    with pytest.raises(membership.OwnersOnly):
        await membership_changes.change_role(admin_scope, member_membership, "owner", CLIENT)
    with pytest.raises(membership.OwnersOnly):
        await membership_changes.change_role(admin_scope, owner_membership["id"], "member", CLIENT)
    # Admins manage members: promote to admin (their per-company rows go), and back.
    await membership_changes.change_role(admin_scope, member_membership, "admin", CLIENT)
    assert await CompanyAccess.count().where(CompanyAccess.membership == member_membership) == 0
    await membership_changes.change_role(admin_scope, member_membership, "member", CLIENT)
    # Owners do everything.
    await membership_changes.change_role(owner_scope, admin_membership, "owner", CLIENT)
    roles = {r["identity"]: r["role"] for r in await Membership.select()}
    assert roles[admin] == "owner"
    tags = [e["tag"] for e in await AuditEvent.select(AuditEvent.tag)]
    assert tags.count("membership:role:change") == 3


async def test_the_last_owner_can_be_neither_demoted_nor_removed_nor_leave(settings):
    owner, _, scope = await owned_account()
    membership = (await Membership.select().where(Membership.identity == owner).first())["id"]
    for role in ("admin", "member"):
        with pytest.raises(membership_changes.LastOwner):
            await membership_changes.change_role(scope, membership, role, CLIENT)
    with pytest.raises(membership_changes.UseLeave):  # removing yourself is leaving
        await membership_changes.remove(settings, await fresh(scope), membership, CLIENT)
    with pytest.raises(membership_changes.LastOwner):
        await membership_changes.leave(scope, CLIENT)
    assert (await Membership.select().first())["role"] == "owner"


async def test_two_owners_demoting_each_other_at_once_leave_one_owner():
    first, account, first_scope = await owned_account()
    second, second_membership = await member_of(account, "druga@example.com", "owner")
    second_scope = await scope_for(second, account, "owner")
    first_membership = (await Membership.select().where(Membership.identity == first).first())
    for _ in range(5):
        results = await asyncio.gather(
            membership_changes.change_role(first_scope, second_membership, "admin", CLIENT),
            membership_changes.change_role(second_scope, first_membership["id"], "admin", CLIENT),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["LastOwner", "dict"], results
        owners = await Membership.select().where(Membership.role == "owner")
        assert len(owners) == 1
        # Restore two owners for the next round.
        await Membership.update({Membership.role: "owner"}).where(
            Membership.account == account["id"])


async def test_two_owners_removing_each_other_at_once_leave_one_owner(settings):
    first, account, first_scope = await owned_account()
    second, second_membership = await member_of(account, "druga@example.com", "owner")
    second_scope = await fresh(await scope_for(second, account, "owner"))
    first_membership = (await Membership.select().where(Membership.identity == first).first())
    results = await asyncio.gather(
        membership_changes.remove(settings, await fresh(first_scope), second_membership, CLIENT),
        membership_changes.remove(settings, second_scope, first_membership["id"], CLIENT),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["LastOwner", "dict"], results
    assert await Membership.count().where(Membership.role == "owner") == 1


async def test_the_database_refuses_to_leave_an_account_without_an_owner(database_url):
    """Whoever writes (not only the service): two connections demoting the two owners."""
    first, account, _ = await owned_account()
    second, _ = await member_of(account, "druga@example.com", "owner")
    from portal import db

    connect = db.connect_kwargs(database_url)
    one, two = await asyncpg.connect(**connect), await asyncpg.connect(**connect)
    try:
        async def demote(connection, identity_id):
            async with connection.transaction():
                await connection.execute(
                    "UPDATE membership SET role = 'admin' WHERE identity = $1", identity_id)
                await asyncio.sleep(0.05)

        results = await asyncio.gather(demote(one, first), demote(two, second),
                                       return_exceptions=True)
        assert sum(isinstance(r, asyncpg.CheckViolationError) for r in results) == 1, results
        with pytest.raises(asyncpg.CheckViolationError):
            await one.execute("DELETE FROM membership WHERE role = 'owner'")
    finally:
        await one.close()
        await two.close()
    assert await Membership.count().where(Membership.role == "owner") == 1


async def test_deleting_an_account_or_an_identity_still_cascades():
    owner, account, _ = await owned_account()
    await Account.delete().where(Account.id == account["id"])
    assert await Membership.count() == 0
    other, _, _ = await owned_account("druga@example.com", "Drugie")
    await Identity.delete().where(Identity.id == other)
    assert await Membership.count() == 0
    assert await membership_changes.sole_owner_accounts(owner) == []


async def test_a_company_access_never_points_into_another_account():
    _, account, _ = await owned_account()
    _, membership_id = await member_of(account, "czlonek@example.com")
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce")
    with pytest.raises(asyncpg.CheckViolationError):
        await CompanyAccess.insert(CompanyAccess(membership=membership_id,
                                                 company=theirs["main_company_id"]))


# --- company levels -----------------------------------------------------------------------------


async def test_levels_are_set_changed_and_revoked_with_one_event_each():
    _, account, scope = await owned_account()
    second = await factories.company(account["id"], name="Druga")
    third = await factories.company(account["id"], name="Trzecia")
    main = account["main_company_id"]
    _, membership_id = await member_of(account, "czlonek@example.com", "member",
                                       {main: "view", third: "manage"})
    changed = await company_access.set_levels(scope, membership_id, {
        str(main): "edit", str(second): "view", str(third): "none"}, CLIENT)
    assert changed == 3
    rows = {r["company"]: r["level"] for r in await CompanyAccess.select()}
    assert rows == {main: "edit", second: "view"}
    events = await AuditEvent.select().where(
        AuditEvent.tag == "company_access:level:change").output(load_json=True)
    assert sorted((e["data"]["company_name"], e["data"]["before"], e["data"]["after"])
                  for e in events) == [("Druga", "none", "view"), ("Konto Główne", "view", "edit"),
                                       ("Trzecia", "manage", "none")]
    assert await company_access.set_levels(scope, membership_id, {str(main): "edit"}, CLIENT) == 0
    page = await company_access.access_page(scope, membership_id)
    assert {r["name"]: r["level"] for r in page.rows} == {
        "Konto Główne": "edit", "Druga": "view", "Trzecia": "none"}


async def test_owners_and_admins_have_every_company_so_no_matrix(settings):
    _, account, scope = await owned_account()
    _, admin_membership = await member_of(account, "admin@example.com", "admin")
    with pytest.raises(company_access.AllCompaniesRole):
        await company_access.set_levels(scope, admin_membership,
                                        {str(account["main_company_id"]): "view"}, CLIENT)
    person = await people.get(scope, admin_membership)
    assert person["all_companies"]


async def test_levels_of_another_account_are_not_found():
    _, account, scope = await owned_account()
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce")
    _, their_member = await member_of(theirs, "ich@example.com")
    _, mine = await member_of(account, "moj@example.com")
    for target, levels in (
        (their_member, {str(account["main_company_id"]): "view"}),
        (mine, {str(theirs["main_company_id"]): "view"}),
        ("nie-uuid", {}),
    ):
        with pytest.raises(NotFound):
            await company_access.set_levels(scope, target, levels, CLIENT)
    assert await CompanyAccess.count() == 0


# --- removal, leaving ---------------------------------------------------------------------------


async def test_removal_needs_a_fresh_reauthentication_and_ends_access(settings):
    _, account, scope = await owned_account()
    member, membership_id = await member_of(account, "odchodzi@example.com")
    await Identity.update({Identity.last_account_id: (
        await Account.select(Account.public_id).first())["public_id"]}).where(
        Identity.id == member)
    with pytest.raises(mfa.ReauthRequired):
        await membership_changes.remove(settings, replace(scope, reauth_at=None), membership_id,
                                        CLIENT)
    assert await Membership.exists().where(Membership.id == membership_id)
    await membership_changes.remove(settings, await fresh(scope), membership_id, CLIENT)
    assert not await Membership.exists().where(Membership.id == membership_id)
    assert (await Identity.select().where(Identity.id == member).first())["last_account_id"] is None
    assert "Konto Główne" in (await last_mail("odchodzi@example.com"))["text_body"]
    assert await AuditEvent.exists().where(AuditEvent.tag == "membership:person:remove")
    assert (await accounts.choices(await scope_for(member))).total == 0


async def test_a_member_leaves_and_a_second_owner_may_too():
    owner, account, _ = await owned_account()
    member, _ = await member_of(account, "czlonek@example.com")
    await membership_changes.leave(await scope_for(member, account, "member"), CLIENT)
    co_owner, _ = await member_of(account, "wspolwlasciciel@example.com", "owner")
    await membership_changes.leave(await scope_for(co_owner, account, "owner"), CLIENT)
    assert [r["identity"] for r in await Membership.select()] == [owner]
    assert await AuditEvent.count().where(AuditEvent.tag == "membership:person:leave") == 2


async def test_admins_cannot_remove_owners(settings):
    owner, account, _ = await owned_account()
    admin, _ = await member_of(account, "admin@example.com", "admin")
    owner_membership = (await Membership.select().where(Membership.identity == owner).first())
    with pytest.raises(membership.OwnersOnly):
        await membership_changes.remove(settings, await fresh(await scope_for(admin, account,
                                                                              "admin")),
                                        owner_membership["id"], CLIENT)


# --- the list -----------------------------------------------------------------------------------


async def test_the_list_shows_members_and_invitations_searches_sorts_and_pages(settings):
    _, account, scope = await owned_account()
    await factories.company(account["id"], name="Druga")
    await Identity.update({Identity.totp_confirmed_at: datetime.now(UTC)}).where(
        Identity.email == "wlasciciel@example.com")
    for i in range(30):
        await member_of(account, f"osoba{i:02d}@example.com", "member",
                        {account["main_company_id"]: "view"})
    await membership_changes.add(settings, scope, {"email": "zaproszony@example.com",
                                                   "role": "member"},
                                 {str(account["main_company_id"]): "edit"}, CLIENT)
    listing = await people.list_page(scope)
    assert listing.total == 32 and listing.pages == 2 and len(listing.rows) == 25
    assert listing.rows[0]["email"] == "osoba00@example.com"
    invited = await people.list_page(scope, status="invited")
    assert [(r["email"], r["status"], r["company_count"]) for r in invited.rows] == [
        ("zaproszony@example.com", "invited", 1)]
    owner_row = (await people.list_page(scope, "WLASCICIEL")).rows[0]
    assert owner_row["is_self"] and owner_row["company_count"] == 2 and owner_row["has_app"]
    assert (await people.list_page(scope, role="owner")).total == 1
    assert (await people.list_page(scope, "osoba0")).total == 10
    assert (await people.list_page(scope, "%")).total == 0
    by_newest = await people.list_page(scope, sort="newest")
    assert by_newest.rows[0]["email"] == "zaproszony@example.com"
    last = await people.list_page(scope, page="99")
    assert last.page == 2 and len(last.rows) == 7
    for page in ("-1", "0", "abc", None, "9" * 40):
        assert 1 <= (await people.list_page(scope, page=page)).page <= 2
    for sort in ("drop table", "", None, "-", "lower(email); --"):
        assert (await people.list_page(scope, sort=sort)).sort == "email"
    assert (await people.list_page(scope, role="boss", status="x", mfa="y")).total == 32


async def test_an_invitation_counts_only_the_companies_it_gives_access_to(settings):
    """Issue 13: "no access" in the matrix is not a company the invitee gets."""
    _, account, scope = await owned_account()
    second = await factories.company(account["id"], name="Druga")
    third = await factories.company(account["id"], name="Trzecia")
    await membership_changes.add(settings, scope, {"email": "jedna@example.com", "role": "member"},
                                 {str(account["main_company_id"]): "edit", str(second): "none",
                      str(third): "none"}, CLIENT)
    await membership_changes.add(settings, scope, {"email": "zadna@example.com", "role": "member"},
                                 {str(account["main_company_id"]): "none", str(second): "none"},
                                 CLIENT)
    await membership_changes.add(settings, scope, {"email": "dwie@example.com", "role": "member"},
                                 {str(second): "view", str(third): "manage"}, CLIENT)
    invited = await people.list_page(scope, status="invited")
    assert sorted((r["email"], r["company_count"]) for r in invited.rows) == [
        ("dwie@example.com", 2), ("jedna@example.com", 1), ("zadna@example.com", 0)]


async def test_the_list_shows_who_meets_the_mfa_policy():
    _, account, scope = await owned_account()
    await member_of(account, "bez@example.com")
    email_only, _ = await member_of(account, "email@example.com")
    await Identity.update({Identity.mfa_email_enabled: True}).where(Identity.id == email_only)
    await Account.update({Account.mfa_policy: "any"}).where(Account.id == account["id"])
    scope = replace(scope, account_mfa_policy="any", mfa_factors=frozenset({"app"}))
    rows = {r["email"]: r["meets_policy"] for r in (await people.list_page(scope)).rows}
    assert rows == {"bez@example.com": False, "email@example.com": True,
                    "wlasciciel@example.com": False}
    missing = await people.list_page(scope, mfa="missing")
    assert [r["email"] for r in missing.rows] == ["bez@example.com", "wlasciciel@example.com"]
    assert await people.mfa_missing(scope) == 2
    app_scope = replace(scope, account_mfa_policy="app")
    assert await people.mfa_missing(app_scope) == 3


async def test_members_see_the_list_read_only_without_invitations(settings):
    _, account, scope = await owned_account()
    member, _ = await member_of(account, "czlonek@example.com")
    await membership_changes.add(settings, scope, {"email": "zaproszony@example.com",
                                                   "role": "member"}, {},
                                 CLIENT)
    member_scope = await scope_for(member, account, "member")
    listing = await people.list_page(member_scope, status="invited")
    assert not listing.full
    assert sorted(r["email"] for r in listing.rows) == [
        "czlonek@example.com", "wlasciciel@example.com"]
    with pytest.raises(membership.NotAllowed):
        await people.get(member_scope, listing.rows[0]["id"])


async def test_the_list_never_shows_another_account():
    _, _, scope = await owned_account()
    stranger = await factories.identity("obcy@example.com")
    await factories.account(stranger, name="Obce")
    listing = await people.list_page(scope, "obcy")
    assert listing.total == 0


# --- invitations from start to end --------------------------------------------------------------


async def invite(settings, scope, email="nowa@example.com", role="member", levels=None):
    await membership_changes.add(settings, scope, {"email": email, "role": role}, levels or {},
                                 CLIENT)
    return token_from(await last_mail(email))


async def test_accepting_by_registration_makes_the_id_and_the_membership(settings):
    _, account, scope = await owned_account()
    token = await invite(settings, scope, levels={str(account["main_company_id"]): "manage"})
    with pytest.raises(InvalidInput):
        await invitations.accept_with_registration(token, "krótkie", "krótkie", CLIENT)
    identity_id, public_id = await invitations.accept_with_registration(
        token, factories.PASSWORD, factories.PASSWORD, CLIENT)
    identity = await Identity.select().where(Identity.id == identity_id).first()
    assert identity["email_verified_at"] is not None and identity["password_hash"]
    assert identity["last_account_id"] == public_id
    membership = await Membership.select().where(Membership.identity == identity_id).first()
    assert membership["account"] == account["id"] and membership["role"] == "member"
    assert (await CompanyAccess.select().first())["level"] == "manage"
    assert (await Invitation.select().first())["state"] == "accepted"
    # Single use.
    with pytest.raises(invitations.InvitationInvalid):
        await invitations.by_token(token)
    with pytest.raises(invitations.InvitationInvalid):
        await invitations.accept_with_registration(token, factories.PASSWORD,
                                                   factories.PASSWORD, CLIENT)
    tags = {e["tag"] for e in await AuditEvent.select(AuditEvent.tag)}
    assert {"invitation:invitation:create", "invitation:invitation:accept",
            "identity:password:set"} <= tags


async def test_two_clicks_on_one_link_at_once_make_one_membership(settings):
    _, _, scope = await owned_account()
    token = await invite(settings, scope)
    results = await asyncio.gather(*[
        invitations.accept_with_registration(token, factories.PASSWORD, factories.PASSWORD,
                                             CLIENT) for _ in range(3)
    ], return_exceptions=True)
    assert sum(isinstance(r, tuple) for r in results) == 1, results
    assert await Membership.count() == 2 and await Identity.count() == 2


async def test_resending_draws_a_new_link_and_the_old_one_stops_working(settings):
    _, _, scope = await owned_account()
    old = await invite(settings, scope)
    invitation = await Invitation.select().first()
    await invitations.resend(settings, scope, invitation["id"], CLIENT)
    new = token_from(await last_mail("nowa@example.com"))
    assert new != old
    with pytest.raises(invitations.InvitationInvalid):
        await invitations.by_token(old)
    assert (await invitations.by_token(new)).email == "nowa@example.com"
    assert await AuditEvent.exists().where(AuditEvent.tag == "invitation:invitation:resend")


async def test_an_expired_link_is_refused_marked_and_can_be_sent_again(settings):
    _, _, scope = await owned_account()
    token = await invite(settings, scope)
    await Invitation.raw("UPDATE invitation SET expires_at = now() - interval '1 minute'")
    with pytest.raises(invitations.InvitationExpired):
        await invitations.by_token(token)
    with pytest.raises(invitations.InvitationInvalid):
        await invitations.accept_with_registration(token, factories.PASSWORD,
                                                   factories.PASSWORD, CLIENT)
    with pytest.raises(invitations.InvitationInvalid):
        await invitations.accept_signed_in(await scope_for(await factories.identity(
            "nowa@example.com")), token, CLIENT)
    await Identity.delete().where(Identity.email == "nowa@example.com")
    # Adding the email anew marks the lapsed one expired and makes a new invitation.
    await membership_changes.add(settings, scope, {"email": "nowa@example.com", "role": "member"},
                                 {},
                                 CLIENT)
    states = sorted(r["state"] for r in await Invitation.select(Invitation.state))
    assert states == ["expired", "pending"]
    assert await AuditEvent.exists().where(AuditEvent.tag == "invitation:invitation:expire")
    assert await Membership.count() == 1


async def test_an_expired_invitation_is_renewed_by_resending(settings):
    _, _, scope = await owned_account()
    await invite(settings, scope)
    await Invitation.raw("UPDATE invitation SET expires_at = now() - interval '1 minute'")
    listing = await people.list_page(scope, status="invited")
    assert listing.rows[0]["lapsed"]
    await invitations.resend(settings, scope, listing.rows[0]["id"], CLIENT)
    token = token_from(await last_mail("nowa@example.com"))
    assert (await invitations.by_token(token)).email == "nowa@example.com"


async def test_withdrawn_and_declined_links_stop_working(settings):
    _, _, scope = await owned_account()
    token = await invite(settings, scope)
    invitation = await Invitation.select().first()
    await invitations.withdraw(scope, invitation["id"], CLIENT)
    with pytest.raises(invitations.InvitationInvalid):
        await invitations.by_token(token)
    with pytest.raises(NotFound):
        await invitations.withdraw(scope, invitation["id"], CLIENT)
    token = await invite(settings, scope)
    await invitations.decline_by_token(token, CLIENT)
    states = sorted(r["state"] for r in await Invitation.select(Invitation.state))
    assert states == ["declined", "withdrawn"]
    assert await Membership.count() == 1


async def test_pending_invitations_wait_in_the_switcher_and_can_be_accepted(settings):
    _, _, scope = await owned_account()
    await invite(settings, scope, email="pozniej@example.com", role="admin")
    # The person registers the usual way (not through the link), then signs in.
    later = await factories.identity("Pozniej@Example.com")
    later_scope = await scope_for(later)
    offered = await invitations.pending_for(later_scope)
    assert [(o["account_name"], o["role"]) for o in offered] == [("Konto Główne", "admin")]
    # Nobody else can take it.
    stranger = await scope_for(await factories.identity("obcy@example.com"))
    with pytest.raises(NotFound):
        await invitations.accept_by_id(stranger, offered[0]["id"], CLIENT)
    await invitations.accept_by_id(later_scope, offered[0]["id"], CLIENT)
    assert (await Membership.select().where(Membership.identity == later).first())[
        "role"] == "admin"
    assert await invitations.pending_for(later_scope) == []
    session = await Session.select().where(Session.identity == later).first()
    assert session["account_public_id"] == (await Account.select().first())["public_id"]
    with pytest.raises(NotFound):
        await invitations.accept_by_id(later_scope, offered[0]["id"], CLIENT)


async def test_an_id_that_exists_cannot_take_a_link_without_signing_in(settings):
    _, _, scope = await owned_account()
    token = await invite(settings, scope)
    await factories.identity("nowa@example.com")
    assert (await invitations.by_token(token)).has_id
    with pytest.raises(invitations.HasId):
        await invitations.accept_with_registration(token, factories.PASSWORD,
                                                   factories.PASSWORD, CLIENT)
    other = await scope_for(await factories.identity("inna@example.com"))
    with pytest.raises(invitations.WrongPerson):
        await invitations.accept_signed_in(other, token, CLIENT)
    assert (await Invitation.select().first())["state"] == "pending"


async def test_invitation_mails_to_one_address_are_limited(settings):
    _, _, scope = await owned_account()
    await invite(settings, scope)
    invitation = await Invitation.select().first()
    for _ in range(invitations.MAIL_LIMIT.per_window - 1):
        await invitations.resend(settings, scope, invitation["id"], CLIENT)
    with pytest.raises(invitations.TooManyMails):
        await invitations.resend(settings, scope, invitation["id"], CLIENT)
    assert await OutboxEmail.count() == invitations.MAIL_LIMIT.per_window


# --- the MFA policy and the audit log -----------------------------------------------------------


async def test_owners_set_the_mfa_policy_but_not_one_they_do_not_meet():
    _, account, scope = await owned_account()
    with pytest.raises(accounts.MfaPolicyNotMetByYou):
        await accounts.set_mfa_policy(scope, "any", CLIENT)
    with pytest.raises(accounts.UnknownMfaPolicy):
        await accounts.set_mfa_policy(scope, "sms", CLIENT)
    with_app = replace(scope, mfa_factors=frozenset({"app"}))
    assert await accounts.set_mfa_policy(with_app, "app", CLIENT) == "app"
    assert (await Account.select().first())["mfa_policy"] == "app"
    event = await AuditEvent.select().where(
        AuditEvent.tag == "account:mfa_policy:change").output(load_json=True).first()
    assert (event["data"]["before"], event["data"]["after"]) == ("none", "app")
    member, _ = await member_of(account, "czlonek@example.com")
    with pytest.raises(accounts.NotAllowed):
        await accounts.set_mfa_policy(await scope_for(member, account, "member"), "none", CLIENT)


async def test_the_audit_log_filters_pages_and_exports_only_this_account(settings):
    _, account, scope = await owned_account()
    for i in range(3):
        await membership_changes.add(settings, scope, {"email": f"n{i}@example.com",
                                                       "role": "member"}, {},
                                     CLIENT)
    member, membership_id = await member_of(account, "czlonek@example.com")
    await membership_changes.change_role(scope, membership_id, "admin", CLIENT)
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce")
    await membership_changes.add(settings, await scope_for(stranger, theirs, "owner"),
                                 {"email": "tajne@example.com", "role": "member"}, {}, CLIENT)
    everything = await audit_log.page(scope, audit_log.parse_filters())
    assert everything.total == 4
    assert all(r["actor_email"] == "wlasciciel@example.com" for r in everything.rows)
    invitations_only = await audit_log.page(scope, audit_log.parse_filters(what="invitation"))
    assert invitations_only.total == 3
    by_subject = await audit_log.page(scope, audit_log.parse_filters(who="czlonek"))
    assert [r["tag"] for r in by_subject.rows] == ["membership:role:change"]
    today = datetime.now(audit_log.WARSAW).date().isoformat()
    assert (await audit_log.page(scope, audit_log.parse_filters(since=today,
                                                                until=today))).total == 4
    assert (await audit_log.page(scope, audit_log.parse_filters(until="2001-01-01"))).total == 0
    odd = audit_log.parse_filters(who="x" * 5000, what="drop", since="wczoraj", until="2026-13-45")
    assert (odd.what, odd.since, odd.until) == ("", None, None)
    csv_text = "".join([chunk async for chunk in audit_log.export(scope, audit_log.Filters())])
    assert csv_text.startswith("\ufefftime_utc,actor_email")
    assert csv_text.count("\n") == 5 and "tajne@example.com" not in csv_text
    member_scope = await scope_for(member, account, "member")
    with pytest.raises(audit_log.NotAllowed):
        await audit_log.page(member_scope, audit_log.Filters())


def test_csv_cells_never_start_a_formula():
    assert audit_log._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert audit_log._cell("@SUM") == "'@SUM" and audit_log._cell("zwykły") == "zwykły"


async def test_removing_someone_who_left_meanwhile_is_not_found(settings):
    _, account, scope = await owned_account()
    member, membership_id = await member_of(account, "czlonek@example.com")
    await membership_changes.leave(await scope_for(member, account, "member"), CLIENT)
    with pytest.raises(NotFound):
        await membership_changes.remove(settings, await fresh(scope), membership_id, CLIENT)
    async with ENGINE.transaction():
        assert await Membership.count() == 1
