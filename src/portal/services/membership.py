"""What both ways into an account share (adding a person, an invitation accepted): the roles,
who may manage people, the owner rule, the per-account and per-email locks, and the one write
that makes a membership with its company levels, and one membership read under a row lock.
people, membership_changes, company_access and invitations all build on this room, so none
imports another's private helpers.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from portal.security.permissions import Permission
from portal.services import accounts, tenancy
from portal.services.errors import DomainError, NotFound
from portal.services.scope import Scope
from portal.tables import CompanyAccess, Membership

ROLES = ("owner", "admin", "member")
#: Roles whose grant takes over the account: granting them needs a fresh re-authentication.
PRIVILEGED_ROLES = frozenset({"owner", "admin"})
RANK = {"member": 0, "admin": 1, "owner": 2}
LEVELS = ("view", "edit", "manage")
#: The matrix's "no access" choice.
NO_ACCESS = "none"


class NotAllowed(accounts.NotAllowed):
    message = "Nie możesz zmieniać osób tego konta."


class OwnersOnly(NotAllowed):
    field = "role"
    message = "Tylko właściciel konta może nadawać i odbierać rolę właściciela."


class EmailAlreadyInvited(DomainError):
    field = "email"
    message = (
        "Ta osoba ma już zaproszenie do tego konta. Możesz je wysłać ponownie z listy osób."
    )


def can_manage(scope: Scope) -> bool:
    return scope.can(Permission.PEOPLE_MANAGE)


def require_manage(scope: Scope) -> None:
    if not can_manage(scope):
        raise NotAllowed()


async def lock_account(account_id: UUID) -> None:
    """Serialise changes of one account's people (the owner rule): hold its row until commit."""
    await Membership.raw("SELECT 1 FROM account WHERE id = {} FOR NO KEY UPDATE", account_id)


async def lock_email(account_id: UUID, email: str) -> None:
    """Serialise adding one email to one account (a member and an invitation at once)."""
    await Membership.raw(
        "SELECT pg_advisory_xact_lock(hashtextextended({} || lower({}), 0))",
        str(account_id), email,
    )


async def locked_member(scope: Scope, membership_id: object) -> dict[str, Any]:
    """A membership of the current account (id, role, identity, email), locked until commit
    so a role change and a level change of one person run one after the other; NotFound for
    any other id."""
    parsed = tenancy.parse_id(membership_id)
    if parsed is None:
        raise NotFound()
    rows = await tenancy.raw(
        Membership, scope,
        "SELECT m.id, m.role, m.identity, i.email FROM membership m "
        "JOIN identity i ON i.id = m.identity WHERE m.account = {} AND m.id = {} "
        "FOR UPDATE OF m",
        parsed,
    )
    if not rows:
        raise NotFound()
    return rows[0]


def owner_rule(scope: Scope, *roles: str) -> None:
    if "owner" in roles and not scope.can(Permission.OWNERS_MANAGE):
        raise OwnersOnly()


async def grant(account_id: UUID, identity_id: UUID, role: str,
                levels: dict[UUID, str] | dict[str, str]) -> UUID | None:
    """Make the membership and its company levels (companies of other accounts, or gone
    meanwhile, are skipped). None when the person already belongs to the account."""
    rows = await Membership.raw(
        "INSERT INTO membership (id, created_at, account, identity, role) "
        "VALUES (gen_random_uuid(), now(), {}, {}, {}) "
        "ON CONFLICT (account, identity) DO NOTHING RETURNING id",
        account_id, identity_id, role,
    )
    if not rows:
        return None
    membership_id = rows[0]["id"]
    wanted = {str(key): value for key, value in levels.items() if value in LEVELS}
    if role == "member" and wanted:
        await CompanyAccess.raw(
            "INSERT INTO company_access (id, created_at, membership, company, level) "
            "SELECT gen_random_uuid(), now(), {}, c.id, l.value "
            "FROM jsonb_each_text({}::jsonb) AS l JOIN company c ON c.id::text = l.key "
            "WHERE c.account = {}",
            membership_id, json.dumps(wanted), account_id,
        )
    return membership_id


def actor_name(scope: Scope) -> str:
    return f"{scope.display_name} ({scope.email})" if scope.display_name else scope.email


#: Identities whose memberships' copy of the last sign-in one round brings up to date.
LAST_LOGIN_BATCH = 20


async def copy_due_last_logins() -> int:
    """Bring ``membership.last_login_at`` up to date for the people the sign-in left it to
    (those in more than 20 accounts; migration 2026-12-04T12:30), a batch at a time; returns
    how many people were done (0: none due). Safe in any number of processes (SKIP LOCKED);
    a sign-in during the copy notes its person again, so the next round has the newer time."""
    rows = await Membership.raw("""
        WITH due AS (
            DELETE FROM membership_last_login_due WHERE identity IN (
                SELECT identity FROM membership_last_login_due
                ORDER BY identity LIMIT {} FOR UPDATE SKIP LOCKED)
            RETURNING identity),
        copied AS (
            UPDATE membership m SET last_login_at = i.last_login_at
            FROM due JOIN identity i ON i.id = due.identity
            WHERE m.identity = due.identity AND m.last_login_at IS DISTINCT FROM i.last_login_at)
        SELECT count(*) AS done FROM due""", LAST_LOGIN_BATCH)
    return rows[0]["done"]
