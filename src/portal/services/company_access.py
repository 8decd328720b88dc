"""Per-company access levels of the account's people: the access matrix (the account's
companies, one page, searchable, with one person's level on each), a member's own companies
(``my_access``), and setting levels from the matrix's form.

Owners and admins manage every company of the account; members only the companies they were
given, at a level (view, edit, manage). Every change of a level is an audit event written in
the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from portal.db import ENGINE
from portal.services import audit, companies, tenancy
from portal.services.errors import DomainError, NotFound
from portal.services.membership import LEVELS, NO_ACCESS, locked_member, require_manage
from portal.services.paging import Keyed
from portal.services.scope import Client, Scope
from portal.tables import Company, CompanyAccess, Membership

#: Companies per page of the access matrix (and of the add form).
MATRIX_PER_PAGE = 50
#: A form may carry at most this many company levels.
MAX_LEVELS = 500


class UnknownLevel(DomainError):
    field = "levels"
    message = "Wybierz poziom dostępu z listy."


class TooManyLevels(DomainError):
    field = "levels"
    message = "Za dużo firm naraz. Zapisz dostęp w mniejszych częściach."


class AllCompaniesRole(DomainError):
    field = "levels"
    message = "Właściciele i administratorzy zarządzają wszystkimi firmami konta."


@dataclass(frozen=True)
class AccessPage(Keyed):
    """A page of the access matrix: companies of the account with the person's level."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    query: str
    per_page: int = MATRIX_PER_PAGE
    #: Cursors of the pages after and before this one ("" at either end).
    next_cursor: str = ""
    prev_cursor: str = ""


async def access_page(scope: Scope, membership_id: UUID | None, query: str | None = None,
                      page: object = None, after: object = None,
                      before: object = None) -> AccessPage:
    """The companies (one page, searchable, by name) with ``membership_id``'s level on each;
    with no membership (the add form) every level is "no access". The companies are the
    company list's page (read by key after or before a cursor of the page shown, from the
    nearer end by number), so page 400 of an office's 20,000 companies costs what page 2
    does: a count, the page, and the levels of its 50 companies."""
    require_manage(scope)
    listing = await companies.list_page(scope, query, "name", page, after, before,
                                        per_page=MATRIX_PER_PAGE)
    rows = listing.rows
    levels: dict[UUID, str] = {}
    if membership_id is not None and rows:
        granted = await CompanyAccess.select(CompanyAccess.company, CompanyAccess.level).where(
            (CompanyAccess.membership == membership_id)
            & CompanyAccess.company.is_in([row["id"] for row in rows])
        )
        levels = {row["company"]: row["level"] for row in granted}
    for row in rows:
        row["level"] = levels.get(row["id"], NO_ACCESS)
    return AccessPage(rows=rows, total=listing.total, page=listing.page, pages=listing.pages,
                      query=listing.query, next_cursor=listing.next_cursor,
                      prev_cursor=listing.prev_cursor)


async def my_access(scope: Scope) -> dict[str, Any]:
    """The reader's own role and, for members, the companies they were given and at which
    level (shown on /users next to "leave the account")."""
    account_id = tenancy.account_id(scope)
    granted: list[dict[str, Any]] = []
    if scope.role not in tenancy.ALL_COMPANIES_ROLES:
        granted = await tenancy.raw(
            CompanyAccess, scope,
            "SELECT c.id, c.name, ca.level FROM membership m "
            "JOIN company_access ca ON ca.membership = m.id "
            "JOIN company c ON c.id = ca.company "
            "WHERE m.account = {} AND m.identity = {} ORDER BY c.sort_name, c.id LIMIT 200",
            scope.identity_id,
        )
    owners = await tenancy.count(Membership, scope).where(Membership.role == "owner")
    return {"role": scope.role, "companies": granted, "account_id": account_id,
            "last_owner": scope.role == "owner" and owners <= 1}


def parse_levels(raw: dict[str, str]) -> dict[UUID, str]:
    """``{company id: level or "none"}`` from the matrix's fields; odd ids are NotFound (like
    any id from elsewhere), odd levels a field error."""
    if len(raw) > MAX_LEVELS:
        raise TooManyLevels()
    levels: dict[UUID, str] = {}
    for key, value in raw.items():
        company_id = tenancy.parse_id(key)
        if company_id is None:
            raise NotFound()
        if value not in (*LEVELS, NO_ACCESS):
            raise UnknownLevel()
        levels[company_id] = value
    return levels


async def check_companies(scope: Scope, company_ids: list[UUID]) -> dict[UUID, str]:
    """Every id is a company of the current account (else NotFound); returns their names."""
    if not company_ids:
        return {}
    found = await tenancy.select(Company, scope, Company.id, Company.name).where(
        Company.id.is_in(company_ids))
    if len(found) != len(set(company_ids)):
        raise NotFound()
    return {row["id"]: row["name"] for row in found}


async def set_levels(scope: Scope, membership_id: object, raw_levels: dict[str, str],
                     client: Client) -> int:
    """Set a member's level on the given companies ("none": no access); returns how many
    changed. Companies not in the form keep their level (the matrix is paged)."""
    require_manage(scope)
    levels = parse_levels(raw_levels)
    account_id = tenancy.account_id(scope)
    names = await check_companies(scope, list(levels))
    async with ENGINE.transaction():
        target = await locked_member(scope, membership_id)
        if target["role"] in tenancy.ALL_COMPANIES_ROLES:
            raise AllCompaniesRole()
        if not levels:
            return 0
        current = {
            row["company"]: row["level"]
            for row in await CompanyAccess.select(CompanyAccess.company, CompanyAccess.level)
            .where((CompanyAccess.membership == target["id"])
                   & CompanyAccess.company.is_in(list(levels)))
        }
        changes = [(company, current.get(company, NO_ACCESS), level)
                   for company, level in levels.items()
                   if current.get(company, NO_ACCESS) != level]
        revoked = [company for company, _, level in changes if level == NO_ACCESS]
        if revoked:
            await CompanyAccess.delete().where(
                (CompanyAccess.membership == target["id"]) & CompanyAccess.company.is_in(revoked))
        for company, _, level in changes:
            if level != NO_ACCESS:
                await CompanyAccess.raw(
                    "INSERT INTO company_access (id, created_at, membership, company, level) "
                    "VALUES (gen_random_uuid(), now(), {}, {}, {}) "
                    "ON CONFLICT (membership, company) DO UPDATE SET level = EXCLUDED.level",
                    target["id"], company, level,
                )
        for company, before, after in changes:
            await audit.record(
                "company_access:level:change", client=client, identity_id=scope.identity_id,
                account_id=account_id, membership_id=target["id"], email=target["email"],
                company_id=company, company_name=names.get(company, ""), before=before,
                after=after,
            )
    return len(changes)
