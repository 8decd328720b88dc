"""The companies of an account: the list (search, sort, pages), one company, adding, editing.

A company belongs to its account forever. Nothing here changes ``company.account`` (no move,
no merge), and the database refuses it anyway (the ``company_account_is_fixed`` trigger).
Every read goes through ``tenancy``, so an id from another account is NotFound.

The list costs the same two queries (a count and one page) whatever the number of companies:
the ``company (account, sort_name, id)`` index serves the default order, from either end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from piccolo.columns.combination import Where
from piccolo.query import OrderByRaw

from portal.db import ENGINE
from portal.security.permissions import Permission
from portal.security.tokens import new_hex_id
from portal.services import audit, company_data, tenancy
from portal.services.errors import DomainError
from portal.services.paging import Window, page_count, parse_page
from portal.services.scope import Client, Scope
from portal.tables import Company, CompanyAccess

FIELDS = company_data.FIELDS
PER_PAGE = 25
KEY_LENGTH = 16

#: Sort keys offered by the list; anything else falls back to DEFAULT_SORT.
SORTS = ("name", "-name", "nip", "-nip", "newest", "oldest")
DEFAULT_SORT = "name"

_LIST_COLUMNS = (Company.id, Company.name, Company.nip, Company.key, Company.is_main, Company.city)


class NotAllowed(DomainError):
    message = "Nie możesz zmieniać firm tego konta."


def require_edit(scope: Scope) -> None:
    """Adding companies: owners and admins (and write API keys not limited to companies)."""
    if not scope.can(Permission.COMPANY_EDIT):
        raise NotAllowed()


#: Company access levels that let a member change that company's data.
EDITING_LEVELS = ("edit", "manage")


async def can_edit(scope: Scope, company_id: UUID) -> bool:
    """Whether the scope may change this company's data: owners and admins every company, a
    member the companies they were given at the edit or manage level (read on every request,
    so a changed level counts at the next click)."""
    if scope.can(Permission.COMPANY_EDIT):
        return True
    if scope.delegation is not None:  # the lower of the client's ceiling and the assignment
        return scope.delegation.company_levels.get(company_id) in EDITING_LEVELS
    if scope.api_key_id is not None or scope.account is None:
        return False
    return await CompanyAccess.exists().where(
        (CompanyAccess.company == company_id)
        & (CompanyAccess.membership.account == scope.account.id)
        & (CompanyAccess.membership.identity == scope.identity_id)
        & CompanyAccess.level.is_in(list(EDITING_LEVELS))
    )


@dataclass(frozen=True)
class CompanyPage(Window):
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    query: str
    sort: str
    per_page: int = PER_PAGE


def parse_sort(raw: object) -> str:
    return raw if isinstance(raw, str) and raw in SORTS else DEFAULT_SORT


def clean_query(raw: str | None, limit: int = 100) -> str:
    text = "".join(ch for ch in (raw or "")[: limit * 4] if ord(ch) >= 32 and ord(ch) != 127)
    return text.strip()[:limit]


def like_pattern(text: str) -> str:
    """``%text%`` for LIKE, with the wildcards typed by the person taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_condition(text: str) -> Where | None:
    """Name contains the text (any case), or the NIP contains its digits (dashes ignored)."""
    if not text:
        return None
    condition = Company.name.ilike(like_pattern(text))
    digits = company_data.nip_digits(text)
    if digits.isascii() and digits.isalnum():
        condition = condition | Company.nip.like(like_pattern(digits))
    return condition


#: The company's name as a Polish reader orders it (``company.sort_name``, a column the database
#: generates with ``portal_sort_key``; see the polish_order migration). Not a Piccolo column,
#: so that inserts never name it.
SORT_NAME = OrderByRaw("sort_name")


def by_name(query):
    """Companies in the alphabetical order of their names (ties by id)."""
    return query.order_by(SORT_NAME).order_by(Company.id)


def _ordered(query, sort: str, *, reverse: bool = False):
    """``sort``'s order, ties by id in the same direction (so the whole order reads backwards
    as well, along the ``company (account, sort_name, id)`` index); ``reverse`` reads it
    from the end."""
    descending = (sort.startswith("-") or sort == "newest") != reverse
    if sort in ("name", "-name"):
        query = query.order_by(SORT_NAME, ascending=not descending)
    elif sort in ("nip", "-nip"):
        query = query.order_by(Company.nip, ascending=not descending)
    else:
        query = query.order_by(Company.created_at, ascending=not descending)
    return query.order_by(Company.id, ascending=not descending)


async def list_page(
    scope: Scope, query: str | None = None, sort: object = None, page: object = None
) -> CompanyPage:
    """One page of the account's companies matching ``query``, in ``sort`` order.

    Two queries whatever the page: the count, and the page. A page in the second half of the
    list is read from the end, in the reverse order (and turned round), so the last page of
    20,000 companies skips as few rows as the first instead of all of them."""
    text = clean_query(query)
    sort = parse_sort(sort)
    wanted = parse_page(page)
    condition = search_condition(text)
    counting = tenancy.count(Company, scope)
    selecting = tenancy.select(Company, scope, *_LIST_COLUMNS)
    if condition is not None:
        counting = counting.where(condition)
        selecting = selecting.where(condition)
    total = await counting
    pages = page_count(total, PER_PAGE)
    current = min(wanted, pages)
    skipped = (current - 1) * PER_PAGE
    from_end = total - skipped - PER_PAGE  # rows after this page
    if current > 1 and from_end < skipped:
        rows = await _ordered(selecting, sort, reverse=True).limit(
            min(PER_PAGE, total - skipped)).offset(max(0, from_end))
        rows.reverse()
    else:
        rows = await _ordered(selecting, sort).limit(PER_PAGE).offset(skipped)
    return CompanyPage(rows=rows, total=total, page=current, pages=pages, query=text, sort=sort)


async def get(scope: Scope, company_id: object) -> dict[str, Any]:
    """One company of the current account (NotFound for any other id)."""
    return await tenancy.get(Company, scope, company_id)


def form_values(row: dict[str, Any]) -> dict[str, Any]:
    return {field: row.get(field, "") for field in FIELDS}


def validate(values: dict[str, str]) -> dict[str, str]:
    """A company's NIP is optional (not every company has one), but checked when given."""
    return company_data.clean(values, nip_required=False)


async def insert(account_id: UUID, clean: dict[str, str], *, is_main: bool = False) -> dict:
    """Insert a company with a fresh unique key (a clash just draws another)."""
    for _ in range(8):
        rows = await (
            Company.insert(
                Company(account=account_id, key=new_hex_id(KEY_LENGTH), is_main=is_main, **clean)
            )
            .on_conflict(target=Company.key, action="DO NOTHING")
            .returning(Company.id, Company.key)
        )
        if rows:
            return rows[0]
    raise RuntimeError("no free company key after 8 draws")


async def create(scope: Scope, values: dict[str, str], client: Client) -> dict[str, Any]:
    """Add a company to the current account (owners and admins)."""
    require_edit(scope)
    clean = validate(values)
    account_id = tenancy.account_id(scope)
    async with ENGINE.transaction():
        row = await insert(account_id, clean)
        await audit.record(
            "account:company:create",
            client=client,
            identity_id=scope.identity_id,
            account_id=account_id,
            company_id=row["id"],
            name=clean["name"],
            nip=clean["nip"],
        )
    return {**row, **clean}


async def update(
    scope: Scope, company_id: object, values: dict[str, str], client: Client
) -> dict[str, Any]:
    """Change a company's data. Its account is not among the fields: it never changes."""
    before = await tenancy.get(Company, scope, company_id)  # NotFound before any validation
    if not await can_edit(scope, before["id"]):
        raise NotAllowed()
    clean = validate(values)
    async with ENGINE.transaction():
        updated = await (
            tenancy.update(Company, scope, {getattr(Company, f): clean[f] for f in FIELDS})
            .where(Company.id == before["id"])
            .returning(Company.id)
        )
        if not updated:  # deleted meanwhile
            await tenancy.get(Company, scope, before["id"])
        await audit.record(
            "account:company:update",
            client=client,
            identity_id=scope.identity_id,
            account_id=before["account"],
            company_id=before["id"],
            changed=",".join(sorted(f for f in FIELDS if before[f] != clean[f])),
        )
    return {**before, **clean}
