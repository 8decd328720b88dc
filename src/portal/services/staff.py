"""Support staff and the back office (/staff): who may use it, finding an ID, its accounts and
memberships, resending its verification link, answering tickets, deleting an ID on request.

Staff work across accounts by design (they belong to none of them), so these functions do not
go through the tenant gate; the route guard (Permission.STAFF) and ``require_staff`` here are
what keeps everyone else out. Staff never see secrets: the columns read here are chosen one by
one, and no password hash, token, TOTP secret or recovery code ever leaves this module. Every
staff action, reading a person's data included, is an audit event tagged ``staff:*:*`` with
the staff member as its identity.

Deleting an ID (on the person's request) removes the identity and its personal data in one
transaction, with this rule for the accounts it owned:

1. an account that has another owner simply loses this one;
2. an account it owned alone passes to the person who has been in it longest among its admins,
   or, with no admin, among its members; that person becomes an owner and is mailed;
3. an account with nobody else in it is deleted with everything in it (companies, API keys,
   products, orders, billing data, tickets).

What goes with the identity: its profile, sessions (applications signed in through them are
logged out), one-time tokens, recovery codes, MFA settings, memberships and company accesses,
recently used applications, single sign-on grants and consents, invitations sent to its
address, the outbox's mail to it (sent or not) and the guessing-limit counters of its address.
What stays: tickets it opened in accounts that remain (the account's support history, shown
without an author), API keys it created (they belong to the account), and audit events, which
keep only the identity's opaque id: their address and device are erased. The person is mailed
once more to say the ID is gone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from piccolo.query import WhereRaw

from portal.db import ENGINE
from portal.security.permissions import Permission
from portal.services import audit, mail, sessions, support, throttle
from portal.services.companies import clean_query, like_pattern
from portal.services.errors import DomainError, InvalidInput, NotFound
from portal.services.identity import (
    VERIFY,
    find_by_email,
    issue_verification,
    normalise_email,
)
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import (
    Account,
    AuditEvent,
    Identity,
    Invitation,
    Membership,
    OneTimeToken,
    OutboxEmail,
    Profile,
    Ticket,
    TicketMessage,
)

#: Search results shown at once; a longer query narrows them.
FOUND_LIMIT = 25
REASON_MAX = 500


class StaffOnly(DomainError):
    message = "Ta operacja jest dostępna tylko dla pracowników wsparcia."


class AlreadyHasPassword(DomainError):
    message = (
        "To Konto ID ma już hasło. Osoba może ustawić nowe przez „Nie pamiętam hasła”."
    )


class WrongConfirmation(DomainError):
    field = "confirm_email"
    message = "Wpisz dokładnie adres e-mail usuwanego Konta ID."


class CannotDeleteStaff(DomainError):
    message = (
        "Konta ID pracownika wsparcia nie usuwa się w back office. Najpierw odbierz mu "
        "uprawnienia pracownika."
    )


def require_staff(actor: Scope) -> None:
    if not actor.can(Permission.STAFF):
        raise StaffOnly()


async def grant(raw_email: str) -> bool:
    """Make the ID staff; create it (unverified, no password) if missing. True if created."""
    email = normalise_email(raw_email)
    identity = await find_by_email(email)
    created = identity is None
    if created:
        identity = (
            await Identity.insert(Identity(email=email, is_staff=True)).returning(Identity.id)
        )[0]
        await Profile.insert(Profile(identity=identity["id"]))
    else:
        await Identity.update({Identity.is_staff: True}).where(Identity.id == identity["id"])
    await audit.record("staff:identity:grant", identity_id=identity["id"], via="cli")
    return created


# --- finding an identity -------------------------------------------------------------------------

#: What staff may see of an identity: never a hash, a secret or a token.
_SAFE_COLUMNS = (
    Identity.id, Identity.email, Identity.created_at, Identity.email_verified_at,
    Identity.last_login_at, Identity.is_staff, Identity.mfa_email_enabled,
)


def _safe(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **{column._meta.name: row[column._meta.name] for column in _SAFE_COLUMNS},
        "has_password": row["has_password"],
        "has_app": row["has_app"],
    }


_IDENTITY_COLUMNS = """
SELECT id, email, created_at, email_verified_at, last_login_at, is_staff, mfa_email_enabled,
       password_hash IS NOT NULL AS has_password, totp_confirmed_at IS NOT NULL AS has_app
FROM identity
"""


async def find(actor: Scope, raw_query: str | None, client: Client) -> list[dict[str, Any]]:
    """IDs whose email contains the query (any case), the exact address first."""
    require_staff(actor)
    text = clean_query(raw_query, limit=320)
    if not text:
        return []
    rows = await Identity.raw(
        _IDENTITY_COLUMNS + "WHERE email ILIKE {} ORDER BY lower(email) = lower({}) DESC, email "
        "LIMIT {}", like_pattern(text), text, FOUND_LIMIT)
    await audit.record("staff:identity:search", client=client, identity_id=actor.identity_id,
                       query=text, found=len(rows))
    return [_safe(row) for row in rows]


async def _identity(identity_id: object) -> dict[str, Any]:
    rows = await Identity.raw(_IDENTITY_COLUMNS + "WHERE id = {}", _parse(identity_id))
    if not rows:
        raise NotFound()
    return _safe(rows[0])


def _parse(raw: object) -> UUID:
    from portal.services.tenancy import parse_id

    parsed = parse_id(raw)
    if parsed is None:
        raise NotFound()
    return parsed


_MEMBERSHIPS = """
SELECT m.id, m.role, m.created_at, a.id AS account_id, a.public_id, a.name,
       (SELECT count(*) FROM membership o WHERE o.account = a.id) AS people,
       (SELECT count(*) FROM membership o WHERE o.account = a.id AND o.role = 'owner'
                                              AND o.identity <> m.identity) AS other_owners
FROM membership m JOIN account a ON a.id = m.account
WHERE m.identity = {}
ORDER BY a.sort_name, a.public_id
"""


async def memberships(identity_id: UUID) -> list[dict[str, Any]]:
    return await Membership.raw(_MEMBERSHIPS, identity_id)


async def identity_card(actor: Scope, identity_id: object, client: Client) -> dict[str, Any]:
    """An identity as staff see it: safe facts, profile name, accounts with roles, and what
    deleting it would do to each account it owns."""
    require_staff(actor)
    row = await _identity(identity_id)
    profile = await Profile.select(Profile.first_name, Profile.last_name, Profile.language).where(
        Profile.identity == row["id"]).first() or {}
    found = await memberships(row["id"])
    await audit.record("staff:identity:view", client=client, identity_id=actor.identity_id,
                       subject_id=row["id"])
    return {**row, "profile": profile, "memberships": found,
            "plan": await deletion_plan(row["id"])}


# --- resending the verification link -------------------------------------------------------------


async def resend_verification(settings: Settings, actor: Scope, identity_id: object,
                              client: Client) -> None:
    """Mail a new verification link to an ID that has no password yet (earlier links stop
    working, so only the newest is valid)."""
    require_staff(actor)
    async with ENGINE.transaction():
        rows = await Identity.raw(_IDENTITY_COLUMNS + "WHERE id = {} FOR UPDATE",
                                  _parse(identity_id))
        if not rows:
            raise NotFound()
        row = rows[0]
        if row["has_password"]:
            raise AlreadyHasPassword()
        await OneTimeToken.update({OneTimeToken.used_at: datetime.now(UTC)}).where(
            (OneTimeToken.identity == row["id"]) & (OneTimeToken.purpose == VERIFY)
            & OneTimeToken.used_at.is_null())
        token = await issue_verification(row["id"], row["email"])
        await mail.queue(settings, row["email"], "verify",
                         language=await support.language_of(row["id"]), token=token)
        await audit.record("staff:verification:resend", client=client,
                           identity_id=actor.identity_id, subject_id=row["id"])


# --- deleting an identity on request --------------------------------------------------------------

_SUCCESSOR = """
SELECT m.id, m.identity, i.email, m.role FROM membership m JOIN identity i ON i.id = m.identity
WHERE m.account = {} AND m.identity <> {}
ORDER BY (m.role = 'admin') DESC, m.created_at, m.id
LIMIT 1
"""


async def deletion_plan(identity_id: UUID) -> list[dict[str, Any]]:
    """For each account the identity owns: ``keep`` (another owner stays), ``transfer`` (to
    ``successor``) or ``delete`` (nobody else is in it)."""
    plan = []
    for row in await memberships(identity_id):
        if row["role"] != "owner":
            continue
        entry = {"account_id": row["account_id"], "name": row["name"],
                 "public_id": row["public_id"], "successor": None}
        if row["other_owners"]:
            entry["action"] = "keep"
        else:
            found = await Membership.raw(_SUCCESSOR, row["account_id"], identity_id)
            entry["action"] = "transfer" if found else "delete"
            entry["successor"] = found[0] if found else None
        plan.append(entry)
    return plan


def _clean_reason(raw: str | None) -> str:
    printable = "".join(ch for ch in (raw or "")[:REASON_MAX * 4] if ch.isprintable() or ch == " ")
    text = " ".join(printable.split())
    if not text:
        raise InvalidInput({"reason": "Podaj podstawę usunięcia, np. numer zgłoszenia."})
    if len(text) > REASON_MAX:
        raise InvalidInput({"reason": "Podstawa usunięcia może mieć najwyżej 500 znaków."})
    return text


async def delete_identity(settings: Settings, actor: Scope, identity_id: object,
                          confirm_email: str, reason: str, client: Client) -> dict[str, Any]:
    """Delete an ID and its personal data, applying the accounts rule (module docstring), in
    one transaction. ``confirm_email`` must repeat the ID's address."""
    require_staff(actor)
    parsed = _parse(identity_id)
    async with ENGINE.transaction():
        rows = await Identity.raw(
            "SELECT id, email, is_staff FROM identity WHERE id = {} FOR UPDATE", parsed)
        if not rows:
            raise NotFound()
        target = rows[0]
        errors = {}
        if (confirm_email or "").strip().lower() != target["email"].lower():
            errors["confirm_email"] = WrongConfirmation.message
        try:
            clean_reason = _clean_reason(reason)
        except InvalidInput as error:
            errors.update(error.errors)
        if errors:
            raise InvalidInput(errors)
        if target["is_staff"] or target["id"] == actor.identity_id:
            raise CannotDeleteStaff()
        email = target["email"]
        language = await support.language_of(target["id"])

        # Lock the accounts it owns, in a fixed order, so role changes wait for us.
        owned = await Account.raw(
            "SELECT a.id FROM account a JOIN membership m ON m.account = a.id "
            "WHERE m.identity = {} AND m.role = 'owner' ORDER BY a.id FOR NO KEY UPDATE OF a",
            target["id"])
        result = {"kept": 0, "transferred": [], "deleted": []}
        for entry in await deletion_plan(target["id"]):
            if entry["account_id"] not in {row["id"] for row in owned}:
                continue
            if entry["action"] == "keep":
                result["kept"] += 1
            elif entry["action"] == "transfer":
                successor = entry["successor"]
                await Membership.update({Membership.role: "owner"}).where(
                    Membership.id == successor["id"])
                await audit.record("staff:account:transfer", client=client,
                                   identity_id=actor.identity_id,
                                   account_id=entry["account_id"], subject_id=target["id"],
                                   new_owner_id=successor["identity"],
                                   previous_role=successor["role"])
                await mail.queue(settings, successor["email"], "account_transferred",
                                 language=await support.language_of(successor["identity"]),
                                 account=entry["name"], public_id=entry["public_id"])
                result["transferred"].append(entry["public_id"])
            else:
                await Account.delete().where(Account.id == entry["account_id"])
                await audit.record("staff:account:delete", client=client,
                                   identity_id=actor.identity_id,
                                   account_id=entry["account_id"], subject_id=target["id"])
                result["deleted"].append(entry["public_id"])

        ended = await sessions.end_all(target["id"])  # applications hear of it (back channel)
        await OutboxEmail.delete().where(WhereRaw("lower(to_address) = lower({})", email))
        await OneTimeToken.delete().where(
            (OneTimeToken.identity == target["id"]) | WhereRaw("lower(email) = lower({})", email))
        await Invitation.delete().where(WhereRaw("lower(email) = lower({})", email))
        for limit in (throttle.LOGIN_IDENTITY, throttle.MAIL_EMAIL):
            await throttle.clear(limit, email)
        await AuditEvent.update({AuditEvent.ip: "", AuditEvent.user_agent: ""}).where(
            AuditEvent.identity_id == target["id"])
        await Identity.delete().where(Identity.id == target["id"])
        await audit.record(
            "staff:identity:delete", client=client, identity_id=actor.identity_id,
            subject_id=target["id"], reason=clean_reason, sessions_ended=ended,
            accounts_kept=result["kept"], accounts_transferred=",".join(result["transferred"]),
            accounts_deleted=",".join(result["deleted"]),
        )
        await mail.queue(settings, email, "identity_deleted", language=language)
    return result


# --- tickets ------------------------------------------------------------------------------------

_QUEUE_COLUMNS = (
    Ticket.id, Ticket.subject, Ticket.category, Ticket.status, Ticket.created_at,
    Ticket.updated_at, Ticket.account.name.as_alias("account_name"),
    Ticket.account.public_id.as_alias("account_public_id"),
    Ticket.identity.email.as_alias("author_email"), Ticket.company.name.as_alias("company_name"),
)

QUEUE_SHOWN = 200


async def ticket_queue(actor: Scope, status: object = None) -> list[dict[str, Any]]:
    """Tickets of every account; by default those waiting for support, oldest change first."""
    require_staff(actor)
    wanted = support.parse_status(status) if status != "all" else ""
    query = Ticket.select(*_QUEUE_COLUMNS)
    if wanted:
        query = query.where(Ticket.status == wanted)
    return await query.order_by(Ticket.updated_at, ascending=wanted == "open").limit(QUEUE_SHOWN)


async def _ticket(ticket_id: object) -> dict[str, Any]:
    row = await Ticket.select(*_QUEUE_COLUMNS, Ticket.account, Ticket.identity).where(
        Ticket.id == _parse(ticket_id)).first()
    if row is None:
        raise NotFound()
    return row


async def ticket(actor: Scope, ticket_id: object, client: Client) -> dict[str, Any]:
    require_staff(actor)
    row = await _ticket(ticket_id)
    await audit.record("staff:ticket:view", client=client, identity_id=actor.identity_id,
                       account_id=row["account"], ticket_id=row["id"])
    return {**row, "messages": await support.messages(row["id"])}


async def answer(settings: Settings, actor: Scope, ticket_id: object, raw_message: str,
                 client: Client) -> None:
    """A support reply: the ticket is answered and the person who opened it is mailed."""
    require_staff(actor)
    row = await _ticket(ticket_id)
    body = support.clean_message(raw_message)
    async with ENGINE.transaction():
        await TicketMessage.insert(TicketMessage(
            ticket=row["id"], author=actor.identity_id, from_staff=True, body=body))
        await Ticket.update({Ticket.status: "answered", Ticket.updated_at: datetime.now(UTC)}
                            ).where(Ticket.id == row["id"])
        await audit.record("staff:ticket:reply", client=client, identity_id=actor.identity_id,
                           account_id=row["account"], ticket_id=row["id"])
        to = await support.email_of(row["identity"])
        if to:
            await mail.queue(settings, to, "ticket_reply",
                             language=await support.language_of(row["identity"]),
                             subject=row["subject"], ticket_id=row["id"],
                             account=row["account_name"], body=body)


async def close_ticket(actor: Scope, ticket_id: object, client: Client) -> None:
    require_staff(actor)
    row = await _ticket(ticket_id)
    if row["status"] == "closed":
        raise support.TicketClosed()
    async with ENGINE.transaction():
        await Ticket.update({Ticket.status: "closed", Ticket.updated_at: datetime.now(UTC)}
                            ).where(Ticket.id == row["id"])
        await audit.record("staff:ticket:close", client=client, identity_id=actor.identity_id,
                           account_id=row["account"], ticket_id=row["id"])
