"""The one tenant gate: every query of account-owned rows starts here.

Each helper filters by the Scope's current account (``scope.account.id``), so an id from
another account simply finds nothing and the caller answers 404: the row is never loaded, not
merely hidden. Companies are narrowed once more for plain members, who see only the companies
they were given access to (owners and admins manage every company of the account), and for an
accounting office's people, who see only the companies assigned to them (``scope.delegation``).

Use ``select``/``count``/``exists``/``update``/``get`` instead of ``Table.select()`` for any table
with an ``account`` column; a test walks the services to keep it that way.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from piccolo.columns.combination import Where
from piccolo.query import Count, Exists, Select, Update
from piccolo.table import Table

from portal.services.errors import NotFound
from portal.services.scope import Scope
from portal.tables import Company, CompanyAccess

#: Roles that see and manage every company of their account.
ALL_COMPANIES_ROLES = frozenset({"owner", "admin"})


def account_id(scope: Scope) -> UUID:
    """The current account's id; a scope with no account owns nothing."""
    if scope.account is None:
        raise NotFound()
    return scope.account.id


def parse_id(raw: object) -> UUID | None:
    """A row id from a URL or a form, or None when it is not a UUID at all."""
    if isinstance(raw, UUID):
        return raw
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    try:
        return UUID(raw)
    except ValueError:
        return None


def owned(table: type[Table], scope: Scope, *, every_company: bool = False) -> Where:
    """The WHERE clause that keeps ``table`` inside the scope's account.

    ``every_company`` lifts the member's company limit for account-level facts (the number of
    companies on the account card), never for the rows themselves."""
    condition = table.account == account_id(scope)  # type: ignore[attr-defined]
    if table is Company and not every_company and scope.company_ids is not None:
        condition = condition & Company.id.is_in(list(scope.company_ids) or [None])
    if table is Company and not every_company and scope.delegation is not None:
        # An office's person: the companies assigned to them within the client's ceiling.
        condition = condition & Company.id.is_in(list(scope.delegation.company_levels) or [None])
    elif table is Company and not every_company and scope.role not in ALL_COMPANIES_ROLES:
        granted = CompanyAccess.select(CompanyAccess.company).where(
            (CompanyAccess.membership.account == scope.account.id)  # type: ignore[union-attr]
            & (CompanyAccess.membership.identity == scope.identity_id)
        )
        condition = condition & Company.id.is_in(granted)
    return condition


def select(table: type[Table], scope: Scope, *columns: Any, every_company: bool = False) -> Select:
    return table.select(*columns).where(owned(table, scope, every_company=every_company))


def count(table: type[Table], scope: Scope, *, every_company: bool = False) -> Count:
    return table.count().where(owned(table, scope, every_company=every_company))


def exists(table: type[Table], scope: Scope) -> Exists:
    return table.exists().where(owned(table, scope))


def update(table: type[Table], scope: Scope, values: dict[Any, Any]) -> Update:
    return table.update(values).where(owned(table, scope))


async def get(table: type[Table], scope: Scope, row_id: object, *columns: Any) -> dict[str, Any]:
    """One row of the current account by id, or NotFound (also for ids that are not UUIDs)."""
    parsed = parse_id(row_id)
    if parsed is None:
        raise NotFound()
    row = await select(table, scope, *columns).where(table.id == parsed).first()
    if row is None:
        raise NotFound()
    return row


def raw(table: type[Table], scope: Scope, sql: str, *args: Any):
    """A raw query of account-owned rows (lists that need joins Piccolo cannot express).

    The first placeholder of ``sql`` is always the scope's account id, so the query is filtered
    by the account like every helper above; write ``WHERE x.account = {}`` first."""
    return table.raw(sql, account_id(scope), *args)
