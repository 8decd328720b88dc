"""Changing who belongs to an account and with which role: adding a person by email (always
an invitation), changing a role, removing a person, leaving an account yourself, and the
accounts an identity alone owns.

- owners and admins manage people; only owners give or take the owner role (make, demote or
  remove an owner, invite an owner);
- an account always keeps at least one owner: every change that could take the last owner
  away first locks the account row (``FOR NO KEY UPDATE``), so two owners demoting each other
  at the same moment are serialised and the second is refused; the database trigger
  ``membership_keeps_an_owner`` refuses it too, whoever writes;
- removing a person, and granting the owner or admin role, need a fresh re-authentication
  (``mfa.require_fresh``);
- promoting a member to admin or owner drops their per-company rows, so a later demotion
  starts from no access rather than forgotten grants.

Permissions are read from the database on every request (``sessions.load``), so a removed or
downgraded person loses access at their next click. Every change is an audit event written in
the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from portal.db import ENGINE
from portal.security.permissions import Permission
from portal.services import audit, company_access, identity, invitations, mail, mfa, tenancy
from portal.services.errors import DomainError, InvalidInput, NotFound
from portal.services.membership import (
    PRIVILEGED_ROLES,
    RANK,
    ROLES,
    EmailAlreadyInvited,
    can_manage,
    lock_account,
    lock_email,
    locked_member,
    owner_rule,
    require_manage,
)
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import CompanyAccess, Identity, Membership, Session


class LastOwner(DomainError):
    field = "role"
    message = (
        "Konto musi mieć co najmniej jednego właściciela. Najpierw nadaj rolę właściciela "
        "innej osobie."
    )


class EmailAlreadyMember(DomainError):
    field = "email"
    message = "Ta osoba już należy do tego konta."


class UnknownRole(DomainError):
    field = "role"
    message = "Wybierz rolę z listy."


class UseLeave(DomainError):
    message = "Aby odejść z konta, użyj przycisku „Opuść konto”."


def assignable_roles(scope: Scope) -> tuple[str, ...]:
    """The roles this person may give (and take): owners all three, admins not the owner."""
    if scope.can(Permission.OWNERS_MANAGE):
        return ROLES
    if can_manage(scope):
        return ("admin", "member")
    return ()


def parse_role(raw: object) -> str:
    if not isinstance(raw, str) or raw.strip() not in ROLES:
        raise UnknownRole()
    return raw.strip()


async def _owners(account_id: UUID) -> int:
    return await Membership.count().where(
        (Membership.account == account_id) & (Membership.role == "owner"))


@dataclass(frozen=True)
class Added:
    """What adding a person did: always an invitation, whether the email has an ID or not,
    so the answer (and the list's "invited" state) never tells which emails have one."""

    kind: str  # "invitation"
    email: str


async def add(settings: Settings, scope: Scope, values: dict[str, str],
              raw_levels: dict[str, str], client: Client) -> Added:
    """Add a person by email: an invitation mailed to that address, with or without an ID
    (an ID's owner signs in and accepts; a new address sets a password). The same email once
    per account. Granting the owner or admin role needs a fresh re-authentication."""
    require_manage(scope)
    account_id = tenancy.account_id(scope)
    errors: dict[str, str] = {}
    email = role = ""
    try:
        email = identity.normalise_email(values.get("email", ""))
    except InvalidInput as error:
        errors.update(error.errors)
    try:
        role = parse_role(values.get("role"))
    except UnknownRole as error:
        errors["role"] = error.message
    levels = company_access.parse_levels(raw_levels)
    if errors:
        raise InvalidInput(errors)
    owner_rule(scope, role)
    if role in PRIVILEGED_ROLES:
        mfa.require_fresh(scope)
    await company_access.check_companies(scope, list(levels))
    if role != "member":
        levels = {}
    async with ENGINE.transaction():
        await lock_email(account_id, email)
        existing = await identity.find_by_email(email)
        if existing is not None and await Membership.exists().where(
            (Membership.account == account_id) & (Membership.identity == existing["id"])
        ):
            raise EmailAlreadyMember()
        await invitations.expire_lapsed(account_id, email, client)
        if await invitations.pending_exists(account_id, email):
            raise EmailAlreadyInvited()
        # Counted in this transaction: a refused add does not use up the address's mails.
        if not await invitations.mail_allowed(email):
            raise invitations.TooManyMails()
        # To the address as the ID spells it (the admin sees the same either way).
        email = existing["email"] if existing is not None else email
        await invitations.create(settings, scope, email, role, levels, client)
    return Added("invitation", email)


async def change_role(scope: Scope, membership_id: object, raw_role: object,
                      client: Client) -> dict[str, Any]:
    """Give a person another role. Only owners touch the owner role; the last owner stays."""
    require_manage(scope)
    role = parse_role(raw_role)
    account_id = tenancy.account_id(scope)
    try:
        async with ENGINE.transaction():
            await lock_account(account_id)
            target = await locked_member(scope, membership_id)
            if target["role"] == role:
                return target
            owner_rule(scope, target["role"], role)
            if RANK[role] > RANK[target["role"]]:  # a promotion, not a demotion
                mfa.require_fresh(scope)
            if target["role"] == "owner" and await _owners(account_id) <= 1:
                raise LastOwner()
            await Membership.update({Membership.role: role}).where(
                (Membership.id == target["id"]) & (Membership.account == account_id))
            cleared = 0
            if role in tenancy.ALL_COMPANIES_ROLES:
                cleared = len(await CompanyAccess.delete().where(
                    CompanyAccess.membership == target["id"]).returning(CompanyAccess.id))
            await audit.record(
                "membership:role:change", client=client, identity_id=scope.identity_id,
                account_id=account_id, membership_id=target["id"], email=target["email"],
                before=target["role"], after=role, company_access_cleared=cleared,
            )
    except asyncpg.CheckViolationError as error:  # the database's own owner rule
        raise LastOwner() from error
    return {**target, "role": role}


async def _forget_account(identity_id: UUID, public_id: str) -> None:
    """Sessions and the next sign-in stop pointing at an account the person left."""
    await Session.update({Session.account_public_id: None}).where(
        (Session.identity == identity_id) & (Session.account_public_id == public_id))
    await Identity.update({Identity.last_account_id: None}).where(
        (Identity.id == identity_id) & (Identity.last_account_id == public_id))


async def remove(settings: Settings, scope: Scope, membership_id: object,
                 client: Client) -> dict[str, Any]:
    """Remove a person from the account (after a fresh re-authentication). Their access ends
    at their next request; they get a mail."""
    require_manage(scope)
    mfa.require_fresh(scope)
    account_id = tenancy.account_id(scope)
    try:
        async with ENGINE.transaction():
            await lock_account(account_id)
            target = await locked_member(scope, membership_id)
            if target["identity"] == scope.identity_id:
                raise UseLeave()
            owner_rule(scope, target["role"])
            if target["role"] == "owner" and await _owners(account_id) <= 1:
                raise LastOwner()
            await Membership.delete().where(
                (Membership.id == target["id"]) & (Membership.account == account_id))
            await _forget_account(target["identity"], scope.account.public_id)
            await audit.record(
                "membership:person:remove", client=client, identity_id=scope.identity_id,
                account_id=account_id, membership_id=target["id"], email=target["email"],
                role=target["role"],
            )
            await mail.queue(
                settings, target["email"], "membership_removed",
                language=await identity._language(target["identity"], scope.language),
                account=scope.account.name,
            )
    except asyncpg.CheckViolationError as error:
        raise LastOwner() from error
    return target


async def leave(scope: Scope, client: Client) -> None:
    """Leave the current account yourself; the last owner cannot."""
    account_id = tenancy.account_id(scope)
    try:
        async with ENGINE.transaction():
            await lock_account(account_id)
            rows = await tenancy.raw(
                Membership, scope,
                "SELECT id, role FROM membership WHERE account = {} AND identity = {} "
                "FOR UPDATE", scope.identity_id,
            )
            if not rows:
                raise NotFound()
            if rows[0]["role"] == "owner" and await _owners(account_id) <= 1:
                raise LastOwner()
            await Membership.delete().where(Membership.id == rows[0]["id"])
            await _forget_account(scope.identity_id, scope.account.public_id)
            await audit.record(
                "membership:person:leave", client=client, identity_id=scope.identity_id,
                account_id=account_id, membership_id=rows[0]["id"], email=scope.email,
                role=rows[0]["role"],
            )
    except asyncpg.CheckViolationError as error:
        raise LastOwner() from error


async def sole_owner_accounts(identity_id: UUID) -> list[dict[str, Any]]:
    """Accounts where this identity is the only owner: deleting the ID (support staff, on
    request) would leave them without one, so the back office should ask first."""
    return await Membership.raw(
        "SELECT a.public_id, a.name FROM membership m JOIN account a ON a.id = m.account "
        "WHERE m.identity = {} AND m.role = 'owner' AND NOT EXISTS (SELECT 1 FROM membership o "
        "WHERE o.account = m.account AND o.role = 'owner' AND o.id <> m.id) "
        "ORDER BY a.sort_name, a.public_id",
        identity_id,
    )
