"""Invitations: how an email without an ID joins an account.

An invitation carries the role and company levels chosen when it was made, and a state:
pending → accepted | declined | withdrawn | expired. Its link (``/invitations/{token}``) is a
random token shown once, in the mail; only its SHA-256 is stored. The link works once and for
``LIFETIME``; resending draws a new token, so the old link stops working. A lapsed invitation
becomes ``expired`` when its email is added again (the slot of "one pending invitation per
email and account" is then free). Accepting is one
conditional UPDATE (``state = 'pending'``), so two clicks at once make one membership.

Following the link proves the address, so a person without an ID sets a password right there
and is signed in, with the account in their switcher. A person who has an ID (or made one
meanwhile) signs in and accepts; pending invitations also wait in their account switcher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from portal.db import ENGINE
from portal.i18n import when
from portal.security import passwords
from portal.security.passwords import hash_password, password_problems
from portal.security.tokens import new_token, token_hash
from portal.services import audit, mail, throttle
from portal.services.errors import DomainError, InvalidInput, NotFound
from portal.services.membership import (
    EmailAlreadyInvited,
    actor_name,
    grant,
    lock_email,
    owner_rule,
    require_manage,
)
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import Identity, Invitation, Profile

LIFETIME = timedelta(days=7)
#: Invitation mails to one address, from every account together, per hour.
MAIL_LIMIT = throttle.Limit("mail:invitation", 5, timedelta(hours=1))


class InvitationInvalid(DomainError):
    message = "To zaproszenie jest nieważne: zostało już użyte, wycofane albo wysłane ponownie."


class InvitationExpired(InvitationInvalid):
    message = "To zaproszenie wygasło. Poproś administratora konta o nowe."


class HasId(DomainError):
    message = "Masz już Konto ID dla tego adresu. Zaloguj się, aby przyjąć zaproszenie."


class WrongPerson(DomainError):
    message = (
        "To zaproszenie jest dla innego adresu e-mail. Wyloguj się i otwórz link ponownie "
        "albo zaloguj się na właściwe Konto ID."
    )


class TooManyMails(DomainError):
    field = "email"
    message = "Wysłaliśmy już kilka wiadomości na ten adres. Spróbuj ponownie za godzinę."


async def mail_allowed(email: str) -> bool:
    return await throttle.take(MAIL_LIMIT, email)


def _role_owner_check(scope: Scope, role: str) -> None:

    require_manage(scope)
    owner_rule(scope, role)


# --- made by an admin ------------------------------------------------------------------------


async def pending_exists(account_id: UUID, email: str) -> bool:
    rows = await Invitation.raw(
        "SELECT 1 FROM invitation WHERE account = {} AND lower(email) = lower({}) "
        "AND state = 'pending' AND expires_at > now()",
        account_id, email,
    )
    return bool(rows)


async def expire_lapsed(account_id: UUID, email: str, client: Client) -> None:
    """A pending invitation past its date becomes ``expired`` (it frees the email)."""
    rows = await Invitation.raw(
        "UPDATE invitation SET state = 'expired' WHERE account = {} AND lower(email) = lower({})"
        " AND state = 'pending' AND expires_at <= now() RETURNING id, email",
        account_id, email,
    )
    for row in rows:
        await audit.record("invitation:invitation:expire", client=client, account_id=account_id,
                           invitation_id=row["id"], email=row["email"])


async def create(settings: Settings, scope: Scope, email: str, role: str,
                 levels: dict[UUID, str], client: Client) -> UUID:
    """A pending invitation and its mail, in the caller's transaction (which holds the
    per-email lock and has checked the email is new to the account)."""
    assert scope.account is not None
    raw = new_token()
    rows = await Invitation.raw(
        "INSERT INTO invitation (id, created_at, account, email, role, company_levels, "
        "token_hash, state, invited_by, expires_at) VALUES (gen_random_uuid(), now(), {}, {}, "
        "{}, {}::jsonb, {}, 'pending', {}, now() + {}::interval) "
        "ON CONFLICT (account, lower(email)) WHERE state = 'pending' DO NOTHING "
        "RETURNING id, expires_at",
        scope.account.id, email, role, json.dumps({str(k): v for k, v in levels.items()}),
        token_hash(raw), scope.identity_id, LIFETIME,
    )
    if not rows:
        raise EmailAlreadyInvited()
    invitation = rows[0]
    await audit.record(
        "invitation:invitation:create", client=client, identity_id=scope.identity_id,
        account_id=scope.account.id, invitation_id=invitation["id"], email=email, role=role,
        levels=",".join(f"{k}={v}" for k, v in sorted((str(k), v) for k, v in levels.items())),
    )
    await _mail(settings, scope, email, role, raw, invitation["expires_at"])
    return invitation["id"]


async def _mail(settings: Settings, scope: Scope, email: str, role: str, raw: str,
                expires_at: datetime) -> None:
    await mail.queue(
        settings, email, "invitation", language=scope.language, token=raw,
        account=scope.account.name if scope.account else "", role=role,
        inviter=actor_name(scope), expires=when(expires_at),
    )


async def _locked(scope: Scope, invitation_id: object, states: tuple[str, ...]) -> dict:
    from portal.services import tenancy

    parsed = tenancy.parse_id(invitation_id)
    if parsed is None:
        raise NotFound()
    rows = await tenancy.raw(
        Invitation, scope,
        "SELECT id, email, role, state FROM invitation WHERE account = {} AND id = {} "
        "AND state = ANY({}) FOR UPDATE",
        parsed, list(states),
    )
    if not rows:
        raise NotFound()
    return rows[0]


async def resend(settings: Settings, scope: Scope, invitation_id: object,
                 client: Client) -> dict[str, Any]:
    """A new link (and seven more days) for a pending or expired invitation; the old link
    stops working."""

    _role_owner_check(scope, "member")
    async with ENGINE.transaction():
        row = await _locked(scope, invitation_id, ("pending", "expired"))
        _role_owner_check(scope, row["role"])
        await lock_email(scope.account.id, row["email"])
        if row["state"] == "expired" and await pending_exists(scope.account.id, row["email"]):
            raise EmailAlreadyInvited()
        if not await mail_allowed(row["email"]):
            raise TooManyMails()
        raw = new_token()
        updated = await Invitation.raw(
            "UPDATE invitation SET token_hash = {}, state = 'pending', "
            "expires_at = now() + {}::interval WHERE id = {} RETURNING expires_at",
            token_hash(raw), LIFETIME, row["id"],
        )
        await audit.record(
            "invitation:invitation:resend", client=client, identity_id=scope.identity_id,
            account_id=scope.account.id, invitation_id=row["id"], email=row["email"],
        )
        await _mail(settings, scope, row["email"], row["role"], raw, updated[0]["expires_at"])
    return row


async def withdraw(scope: Scope, invitation_id: object, client: Client) -> dict[str, Any]:
    """The invitation's link stops working; the email may be invited again."""
    _role_owner_check(scope, "member")
    async with ENGINE.transaction():
        row = await _locked(scope, invitation_id, ("pending",))
        _role_owner_check(scope, row["role"])
        await Invitation.update({Invitation.state: "withdrawn"}).where(
            Invitation.id == row["id"])
        await audit.record(
            "invitation:invitation:withdraw", client=client, identity_id=scope.identity_id,
            account_id=scope.account.id, invitation_id=row["id"], email=row["email"],
        )
    return row


# --- seen by the invitee ---------------------------------------------------------------------


@dataclass(frozen=True)
class InvitationInfo:
    id: UUID
    email: str
    role: str
    account_name: str
    account_public_id: str
    inviter: str
    expires_at: datetime
    has_id: bool  # an ID with a password exists for the email


_BY_LINK = """
SELECT v.id, v.email, v.role, v.state, v.expires_at, v.expires_at <= now() AS lapsed,
       a.name AS account_name, a.public_id, coalesce(i.email, '') AS inviter,
       EXISTS (SELECT 1 FROM identity x WHERE lower(x.email) = lower(v.email)
               AND x.password_hash IS NOT NULL) AS has_id
FROM invitation v
JOIN account a ON a.id = v.account
LEFT JOIN identity i ON i.id = v.invited_by
WHERE v.token_hash = {}
"""


async def by_token(raw: str) -> InvitationInfo:
    """The pending invitation a link belongs to. A lapsed one is refused but stays pending
    (the admins see it as expired, with "send again"); it becomes ``expired`` when the email
    is added anew (``expire_lapsed``)."""
    rows = await Invitation.raw(_BY_LINK, token_hash(raw or ""))
    if not rows or rows[0]["state"] != "pending":
        raise InvitationInvalid()
    row = rows[0]
    if row["lapsed"]:
        raise InvitationExpired()
    return InvitationInfo(row["id"], row["email"], row["role"], row["account_name"],
                          row["public_id"], row["inviter"], row["expires_at"], row["has_id"])


_CLAIM = """
UPDATE invitation v SET state = {} FROM account a
WHERE a.id = v.account AND v.state = 'pending' AND v.expires_at > now() AND (CONDITION)
RETURNING v.id, v.account, v.email, v.role, v.company_levels, a.public_id, a.name
"""


async def _claim(state: str, condition: str, *args: Any) -> dict[str, Any]:
    """Move one pending invitation to ``state``; exactly one concurrent caller wins.
    ``condition`` is one of this module's fixed texts, its values are placeholders."""
    rows = await Invitation.raw(_CLAIM.replace("CONDITION", condition), state, *args)
    if not rows:
        raise InvitationInvalid()
    row = rows[0]
    levels = row["company_levels"]
    row["company_levels"] = json.loads(levels) if isinstance(levels, str) else (levels or {})
    return row


async def _join(claimed: dict[str, Any], identity_id: UUID, client: Client) -> None:

    await lock_email(claimed["account"], claimed["email"])
    membership_id = await grant(claimed["account"], identity_id, claimed["role"],
                                claimed["company_levels"])
    await audit.record(
        "invitation:invitation:accept", client=client, identity_id=identity_id,
        account_id=claimed["account"], invitation_id=claimed["id"], email=claimed["email"],
        role=claimed["role"], membership_id=membership_id or "",
    )


async def accept_with_registration(raw: str, password: str, confirm: str,
                                   client: Client) -> tuple[UUID, str]:
    """Accept a link as someone without an ID: the link proves the email, so the ID is made
    (or its first password set) here. Returns the identity and the account's public id."""
    info = await by_token(raw)
    if info.has_id:
        raise HasId()
    passwords.admit()  # at capacity: HashBusy before the password's checks cost anything
    problems = password_problems(password, confirm, info.email)
    if problems:
        raise InvalidInput(problems)
    password_hash = await hash_password(password)
    async with ENGINE.transaction():
        claimed = await _claim("accepted", "v.token_hash = {}", token_hash(raw))
        rows = await Identity.raw(
            "INSERT INTO identity (id, created_at, email, password_hash, email_verified_at, "
            "is_staff, mfa_email_enabled, last_account_id) VALUES (gen_random_uuid(), now(), "
            "{}, {}, now(), false, false, {}) ON CONFLICT (lower(email)) DO NOTHING RETURNING id",
            claimed["email"], password_hash, claimed["public_id"],
        )
        if rows:
            identity_id = rows[0]["id"]
            await Profile.insert(Profile(identity=identity_id, language=""))
        else:  # registered meanwhile: only an ID that never got a password takes this one
            updated = await Identity.raw(
                "UPDATE identity SET password_hash = {}, email_verified_at = now(), "
                "last_account_id = {} WHERE lower(email) = lower({}) AND password_hash IS NULL "
                "RETURNING id",
                password_hash, claimed["public_id"], claimed["email"],
            )
            if not updated:
                raise HasId()
            identity_id = updated[0]["id"]
        await audit.record("identity:email:verify", client=client, identity_id=identity_id,
                           via="invitation")
        await audit.record("identity:password:set", client=client, identity_id=identity_id)
        await _join(claimed, identity_id, client)
    return identity_id, claimed["public_id"]


async def accept_signed_in(scope: Scope, raw: str, client: Client) -> str:
    """Accept a link while signed in as its addressee; returns the account's public id."""
    info = await by_token(raw)
    if info.email.lower() != scope.email.lower():
        raise WrongPerson()
    async with ENGINE.transaction():
        claimed = await _claim("accepted", "v.token_hash = {}", token_hash(raw))
        await _join(claimed, scope.identity_id, client)
        await _make_current(scope, claimed["public_id"])
    return claimed["public_id"]


async def _make_current(scope: Scope, public_id: str) -> None:
    from portal.services import accounts

    await accounts.make_current(scope, public_id)


def _own(scope: Scope, invitation_id: object) -> tuple[str, UUID, str]:
    from portal.services import tenancy

    parsed = tenancy.parse_id(invitation_id)
    if parsed is None:
        raise NotFound()
    return "v.id = {} AND lower(v.email) = lower({})", parsed, scope.email


async def accept_by_id(scope: Scope, invitation_id: object, client: Client) -> dict[str, Any]:
    """Accept one of the invitations waiting in the person's switcher."""
    condition, parsed, email = _own(scope, invitation_id)
    async with ENGINE.transaction():
        try:
            claimed = await _claim("accepted", condition, parsed, email)
        except InvitationInvalid as error:
            raise NotFound() from error
        await _join(claimed, scope.identity_id, client)
        await _make_current(scope, claimed["public_id"])
    return claimed


async def decline_by_id(scope: Scope, invitation_id: object, client: Client) -> dict[str, Any]:
    condition, parsed, email = _own(scope, invitation_id)
    async with ENGINE.transaction():
        try:
            claimed = await _claim("declined", condition, parsed, email)
        except InvitationInvalid as error:
            raise NotFound() from error
        await _declined(claimed, scope.identity_id, client)
    return claimed


async def decline_by_token(raw: str, client: Client) -> dict[str, Any]:
    """Anyone holding the link may decline it (it was mailed to them)."""
    await by_token(raw)
    async with ENGINE.transaction():
        claimed = await _claim("declined", "v.token_hash = {}", token_hash(raw))
        await _declined(claimed, None, client)
    return claimed


async def _declined(claimed: dict[str, Any], identity_id: UUID | None, client: Client) -> None:
    await audit.record(
        "invitation:invitation:decline", client=client, identity_id=identity_id,
        account_id=claimed["account"], invitation_id=claimed["id"], email=claimed["email"],
    )


_PENDING_FOR = """
SELECT v.id, a.name AS account_name, a.public_id, v.role, v.expires_at,
       coalesce(i.email, '') AS inviter
FROM invitation v
JOIN account a ON a.id = v.account
LEFT JOIN identity i ON i.id = v.invited_by
WHERE lower(v.email) = lower({}) AND v.state = 'pending' AND v.expires_at > now()
  AND NOT EXISTS (SELECT 1 FROM membership m WHERE m.account = v.account AND m.identity = {})
ORDER BY v.created_at, v.id
LIMIT 20
"""


async def pending_for(scope: Scope) -> list[dict[str, Any]]:
    """Invitations waiting for this person (by their email), newest last."""
    return await Invitation.raw(_PENDING_FOR, scope.email, scope.identity_id)
