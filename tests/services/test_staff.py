"""The back office's rules: staff only; no secrets; resending verification only without a
password; deleting an ID on request with the accounts rule, all in one transaction."""

from __future__ import annotations

import json

import pytest

from portal.security.tokens import token_hash
from portal.services import catalogue, sessions, staff, support, throttle
from portal.services.errors import InvalidInput, NotFound
from portal.services.scope import Scope
from portal.settings import Settings
from portal.tables import (
    Account,
    AuditEvent,
    Company,
    Identity,
    Invitation,
    Membership,
    OneTimeToken,
    OutboxEmail,
    Profile,
    RecentApplication,
    Session,
    Ticket,
    TicketMessage,
)
from portal.testing import factories
from tests.conftest import last_mail
from tests.services.test_accounts import CLIENT, scope_for

SETTINGS = Settings.from_env()
TICKET = {"subject": "Pytanie", "category": "technical", "company": "", "message": "Treść"}


async def staff_scope():
    me = await factories.identity("wsparcie@example.com", is_staff=True)
    plain = await scope_for(me)
    return Scope.build(session_hash=plain.session_hash, identity_id=me, email=plain.email,
                       language="pl", is_staff=True)


async def test_people_who_are_not_staff_are_refused_everything():
    me = await factories.identity("zwykly@example.com")
    scope = await scope_for(me)
    for call in (staff.find(scope, "x", CLIENT), staff.identity_card(scope, me, CLIENT),
                 staff.ticket_queue(scope),
                 staff.delete_identity(SETTINGS, scope, me, "zwykly@example.com", "x", CLIENT),
                 staff.resend_verification(SETTINGS, scope, me, CLIENT)):
        with pytest.raises(staff.StaffOnly):
            await call
    assert await Identity.count() == 1


async def test_staff_find_ids_by_email_and_see_no_secrets():
    actor = await staff_scope()
    target = await factories.identity("Jan.Kowalski@example.com")
    await factories.identity("janina@example.com")
    found = await staff.find(actor, "jan", CLIENT)
    assert {row["email"] for row in found} == {"Jan.Kowalski@example.com", "janina@example.com"}
    exact = await staff.find(actor, "JANINA@example.com", CLIENT)
    assert exact[0]["email"] == "janina@example.com"
    assert await staff.find(actor, "%", CLIENT) == []  # wildcards are literal
    card = await staff.identity_card(actor, target, CLIENT)
    text = json.dumps(card, default=str)
    for secret in ("password_hash", "totp_secret", "token", "$argon2"):
        assert secret not in text
    assert card["has_password"] is True
    tags = [r["tag"] for r in await AuditEvent.select(AuditEvent.tag).where(
        AuditEvent.identity_id == actor.identity_id)]
    assert tags.count("staff:identity:search") == 3 and "staff:identity:view" in tags


async def test_resending_verification_only_for_an_id_without_a_password():
    actor = await staff_scope()
    waiting = await factories.identity("czeka@example.com", password=None)
    await OneTimeToken.insert(OneTimeToken(purpose="verify", token_hash=token_hash("stary"),
                                           identity=waiting, email="czeka@example.com",
                                           expires_at=sessions.now() + sessions.timedelta(1)))
    await staff.resend_verification(SETTINGS, actor, waiting, CLIENT)
    assert "/verify/" in (await last_mail("czeka@example.com"))["text_body"]
    unused = await OneTimeToken.select().where(OneTimeToken.used_at.is_null())
    assert len(unused) == 1 and unused[0]["token_hash"] != token_hash("stary")
    assert await AuditEvent.exists().where(AuditEvent.tag == "staff:verification:resend")
    ready = await factories.identity("gotowy@example.com")
    with pytest.raises(staff.AlreadyHasPassword):
        await staff.resend_verification(SETTINGS, actor, ready, CLIENT)
    with pytest.raises(NotFound):
        await staff.resend_verification(SETTINGS, actor, "nie-uuid", CLIENT)


async def test_deleting_requires_the_exact_email_and_a_reason_and_changes_nothing_otherwise():
    actor = await staff_scope()
    target = await factories.identity("usun@example.com")
    with pytest.raises(InvalidInput) as refused:
        await staff.delete_identity(SETTINGS, actor, target, "inny@example.com", "", CLIENT)
    assert set(refused.value.errors) == {"confirm_email", "reason"}
    assert await Identity.exists().where(Identity.id == target)
    with pytest.raises(staff.CannotDeleteStaff):
        await staff.delete_identity(SETTINGS, actor, actor.identity_id, "wsparcie@example.com",
                                    "prośba", CLIENT)
    with pytest.raises(NotFound):
        await staff.delete_identity(SETTINGS, actor, "x", "x", "x", CLIENT)
    assert not await AuditEvent.exists().where(AuditEvent.tag == "staff:identity:delete")


async def test_deleting_an_id_applies_the_accounts_rule_and_removes_its_personal_data():
    await catalogue.seed()
    actor = await staff_scope()
    gone = await factories.identity("odchodzi@example.com", first_name="Olga", phone="600100200")
    # 1. an account with another owner: it stays, only this owner leaves
    shared = await factories.account(gone, name="Wspólne")
    co_owner = await factories.identity("wspolwlasciciel@example.com")
    await factories.membership(co_owner, shared["id"], "owner")
    # 2. owned alone, with a member and (later) an admin: passes to the admin
    alone = await factories.account(gone, name="Samodzielne")
    member = await factories.identity("czlonek@example.com")
    admin = await factories.identity("admin@example.com")
    await factories.membership(member, alone["id"], "member")
    await factories.membership(admin, alone["id"], "admin")
    # 3. owned alone, with a member only: passes to the member
    with_member = await factories.account(gone, name="Z członkiem")
    await factories.membership(member, with_member["id"], "member")
    # 4. nobody else: the account goes with everything in it
    empty = await factories.account(gone, name="Puste")
    # and a plain membership elsewhere
    elsewhere = await factories.account(co_owner, name="Cudze")
    await factories.membership(gone, elsewhere["id"], "member")

    gone_scope = await scope_for(gone, alone, "owner")
    ticket_id = await support.create(SETTINGS, gone_scope, TICKET, CLIENT)
    await catalogue.open_application(gone_scope, "akademia")
    await Invitation.insert(Invitation(account=elsewhere["id"], email="ODCHODZI@example.com",
                                       token_hash="t" * 64, expires_at=sessions.now()))
    await throttle.fail(throttle.LOGIN_IDENTITY, "odchodzi@example.com")
    plan = {entry["name"]: entry for entry in (await staff.identity_card(actor, gone, CLIENT))[
        "plan"]}
    assert plan["Wspólne"]["action"] == "keep"
    assert plan["Samodzielne"]["successor"]["email"] == "admin@example.com"
    assert plan["Z członkiem"]["successor"]["email"] == "czlonek@example.com"
    assert plan["Puste"]["action"] == "delete"

    result = await staff.delete_identity(SETTINGS, actor, gone, " Odchodzi@Example.com ",
                                         "zgłoszenie 123", CLIENT)
    assert result["kept"] == 1 and len(result["transferred"]) == 2
    assert result["deleted"] == [empty["public_id"]]

    assert not await Identity.exists().where(Identity.id == gone)
    for table in (Profile, Session, Membership):
        assert not await table.exists().where(table.identity == gone)
    assert not await RecentApplication.exists()
    assert not await Invitation.exists()
    assert not await OneTimeToken.exists().where(OneTimeToken.email == "odchodzi@example.com")
    assert not await throttle.blocked(throttle.LOGIN_IDENTITY, "odchodzi@example.com")
    roles = {(r["account"], r["identity"]): r["role"] for r in await Membership.select()}
    assert roles[(shared["id"], co_owner)] == "owner"
    assert roles[(alone["id"], admin)] == "owner" and roles[(alone["id"], member)] == "member"
    assert roles[(with_member["id"], member)] == "owner"
    assert not await Account.exists().where(Account.id == empty["id"])
    assert not await Company.exists().where(Company.account == empty["id"])
    # The ticket stays with its account, without its author.
    ticket = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert ticket["identity"] is None
    assert (await TicketMessage.select().where(TicketMessage.ticket == ticket_id).first())[
        "author"] is None
    # Audit events keep the opaque id only; no address, no device.
    own = await AuditEvent.select().where(AuditEvent.identity_id == gone)
    assert own and all(e["ip"] == "" and e["user_agent"] == "" for e in own)
    tags = [e["tag"] for e in await AuditEvent.select(AuditEvent.tag).where(
        AuditEvent.identity_id == actor.identity_id)]
    assert tags.count("staff:account:transfer") == 2 and "staff:account:delete" in tags
    deleted = await AuditEvent.select().where(AuditEvent.tag == "staff:identity:delete").first()
    assert json.loads(deleted["data"])["reason"] == "zgłoszenie 123"
    assert "odchodzi" not in deleted["data"]
    # Mail: only the goodbye is left for the address; the new owners are told.
    to_gone = await OutboxEmail.select().where(OutboxEmail.to_address == "odchodzi@example.com")
    assert [m["subject"].split(" · ")[0] for m in to_gone] == ["Twoje Konto ID zostało usunięte"]
    assert await OutboxEmail.exists().where(OutboxEmail.to_address == "admin@example.com")
    assert await OutboxEmail.exists().where(OutboxEmail.to_address == "czlonek@example.com")


async def test_a_failure_midway_leaves_everything_as_it_was(monkeypatch):
    actor = await staff_scope()
    gone = await factories.identity("polowa@example.com")
    alone = await factories.account(gone, name="Samodzielne")
    admin = await factories.identity("admin2@example.com")
    await factories.membership(admin, alone["id"], "admin")

    async def broken(*args, **kwargs):
        raise RuntimeError("mail queue down")

    monkeypatch.setattr(staff.mail, "queue", broken)
    with pytest.raises(RuntimeError):
        await staff.delete_identity(SETTINGS, actor, gone, "polowa@example.com", "x", CLIENT)
    assert await Identity.exists().where(Identity.id == gone)
    role = await Membership.select(Membership.role).where(Membership.identity == admin).first()
    assert role["role"] == "admin"
    assert not await AuditEvent.exists().where(AuditEvent.tag.like("staff:account:%"))
