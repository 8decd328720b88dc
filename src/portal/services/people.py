"""The people of an account as a list (search, sort, filters, pages) and one person's detail,
with whether each meets the account's MFA policy.

Members see the list read-only: who belongs to the account, their role and number of
companies; not the invitations, last sign-ins or MFA status, which are admin matters.
Changing people is ``membership_changes``; per-company access levels are ``company_access``.

The list costs two statements however many people the account has and whichever page is
asked: the count (an index-only scan) and the page, read by key along the index of its sort
order (the people_pages migration), never by sorting everybody. Searching matches
``membership.search_text`` (the lower-cased email and name, kept by triggers) with LIKE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from portal.services import companies, tenancy
from portal.services.errors import NotFound
from portal.services.membership import ROLES, can_manage, require_manage
from portal.services.paging import (
    Keyed,
    decode_cursor,
    encode_cursor,
    page_count,
    parse_page,
)
from portal.services.scope import Scope
from portal.tables import Membership

PER_PAGE = 25

SORTS = ("email", "-email", "name", "-name", "role", "last_login", "newest")
MEMBER_SORTS = tuple(sort for sort in SORTS if sort != "last_login")
DEFAULT_SORT = "email"
STATUSES = ("active", "invited")
MFA_FILTERS = ("missing",)


# --- reading ---------------------------------------------------------------------------------


def meets_policy(policy: str, has_app: bool, has_email: bool,
                 has_passkey: bool = False) -> bool:
    """Each level accepts the stronger factors too: "any" < "app" < "passkey"."""
    if policy == "passkey":
        return has_passkey
    if policy == "app":
        return has_app or has_passkey
    if policy == "any":
        return has_app or has_email or has_passkey
    return True


@dataclass(frozen=True)
class PeoplePage(Keyed):
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    query: str
    sort: str
    role: str
    status: str
    mfa: str
    #: Whether the reader manages people (and so sees invitations, sign-ins and MFA).
    full: bool
    policy: str
    per_page: int = PER_PAGE
    #: Cursors of the pages after and before this one ("" at either end).
    next_cursor: str = ""
    prev_cursor: str = ""

    @property
    def sorts(self) -> tuple[str, ...]:
        return SORTS if self.full else MEMBER_SORTS

    @property
    def filtered(self) -> bool:
        return bool(self.query or self.role or self.status or self.mfa)

    def params(self, **changes: Any) -> dict[str, Any]:
        """The query string of this listing (for links), with ``changes`` applied."""
        values = {"q": self.query, "sort": self.sort, "role": self.role,
                  "status": self.status, "mfa": self.mfa, **changes}
        return {key: value for key, value in values.items() if value}


def _choice(raw: object, allowed: tuple[str, ...], default: str = "") -> str:
    return raw if isinstance(raw, str) and raw in allowed else default


# --- the list's statements -------------------------------------------------------------------
# Members and (for those who manage people) pending invitations, as one list. Each sort is a
# tuple of keys, the last one the id, all in one direction, none ever NULL, and each member key
# is the column of an index (the people_pages migration): a page is the 25 entries after (or
# before) the edge row of the page shown, read along that index in either direction, merged
# with the few pending invitations in the same order. Only the page's rows are then joined
# with the identity, profile and invitation details.

#: Emails sort by their bytes (technical); ``search_text`` starts with the lower-cased email.
_SEARCH = ('m.search_text COLLATE "C"', 'lower(v.email) COLLATE "C"')
_ID = ("m.id", "v.id")
#: Names in Polish alphabetical order (``membership.sort_name`` is ``portal_sort_key`` of the
#: name, kept by triggers); people without a name last, whichever the direction.
_LAST_TEXT = "E'\\U0010FFFF'"
_RANK = "CASE {}.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END"

#: sort → (descending, keys as (member expression, invitation expression)).
_KEYS: dict[str, tuple[bool, tuple[tuple[str, str], ...]]] = {
    "email": (False, (_SEARCH, _ID)),
    "-email": (True, (_SEARCH, _ID)),
    "name": (False, ((f"coalesce(m.sort_name, {_LAST_TEXT})", f'{_LAST_TEXT} COLLATE "C"'),
                     _SEARCH, _ID)),
    "-name": (True, (("coalesce(m.sort_name, '')", "'' COLLATE \"C\""), _SEARCH, _ID)),
    "role": (False, ((_RANK.format("m"), _RANK.format("v")), _SEARCH, _ID)),
    "last_login": (True, (("coalesce(m.last_login_at, '-infinity')",
                           "'-infinity'::timestamptz"), _SEARCH, _ID)),
    "newest": (True, (("m.created_at", "v.created_at"), _ID)),
}

_HAS_PASSKEY = "EXISTS (SELECT 1 FROM passkey k WHERE k.identity = i.id)"
#: The policy is the placeholder (fixed texts only).
#: Per person, by the identity's primary key: as a join, PostgreSQL hashes all 200,000
#: identities of a vendor's database to count one account's 5,000 people (82 ms against 5).
_MFA_MISSING = f"""NOT (SELECT CASE {{}}
    WHEN 'passkey' THEN {_HAS_PASSKEY}
    WHEN 'app' THEN i.totp_confirmed_at IS NOT NULL OR {_HAS_PASSKEY}
    WHEN 'any' THEN i.totp_confirmed_at IS NOT NULL OR i.mfa_email_enabled OR {_HAS_PASSKEY}
    ELSE true END FROM identity i WHERE i.id = m.identity)"""  # noqa: S608

_DETAILS = """
SELECT page.id, page.status, page.role, page.created_at, page.identity_id,
       coalesce(i.email, v.email) AS email,
       btrim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')) AS name,
       i.last_login_at, coalesce(i.totp_confirmed_at IS NOT NULL, false) AS has_app,
       coalesce(i.mfa_email_enabled, false) AS has_email,
       coalesce(EXISTS (SELECT 1 FROM passkey k WHERE k.identity = i.id), false)
           AS has_passkey,
       v.expires_at, coalesce(v.expires_at <= now(), false) AS lapsed,
       CASE WHEN page.role IN ('owner', 'admin') THEN
                (SELECT count(*) FROM company c WHERE c.account = {})
            WHEN page.status = 'invited' THEN
                (SELECT count(*) FROM jsonb_each_text(v.company_levels) AS level
                 WHERE level.value <> 'none')
            ELSE (SELECT count(*) FROM company_access ca WHERE ca.membership = page.id)
       END::int AS company_count
FROM page
LEFT JOIN identity i ON i.id = page.identity_id
LEFT JOIN profile p ON p.identity = page.identity_id
LEFT JOIN invitation v ON v.id = page.id AND page.status = 'invited'
"""


@dataclass(frozen=True)
class Filters:
    """What a listing asks for, parsed (the statements' texts depend only on these flags)."""

    account_id: UUID
    text: str
    role: str
    mfa: bool
    policy: str
    members: bool
    invitations: bool


class _Statement:
    """SQL text with its arguments in placeholder order (the first is the account id, which
    tenancy.raw puts first itself)."""

    def __init__(self) -> None:
        self.args: list[Any] = []
        self.sql = ""

    def __call__(self, value: Any) -> str:
        self.args.append(value)
        return "{}"

    async def run(self, scope: Scope) -> list[dict[str, Any]]:
        assert self.args[0] == tenancy.account_id(scope)
        # One account may hold 5,000 people and the next one two: the connection plans every
        # statement for its values (db.SERVER_SETTINGS), never with a plan cached for "an
        # account".
        return await tenancy.raw(Membership, scope, self.sql, *self.args[1:])


def _member_where(q: _Statement, f: Filters) -> str:
    where = f"m.account = {q(f.account_id)}"
    if f.text:
        where += f" AND m.search_text LIKE lower({q(companies.like_pattern(f.text))})"
    if f.role:  # by the role index's rank: an office's 100 admins, not its 5,000 people
        where += (f" AND {_RANK.format('m')} = {q(ROLES.index(f.role))}"
                  f" AND m.role = {q(f.role)}")
    if f.mfa:
        where += f" AND {_MFA_MISSING.format(q(f.policy))}"
    return where


def _invitation_where(q: _Statement, f: Filters) -> str:
    where = f"v.account = {q(f.account_id)} AND v.state = 'pending'"
    if f.text:
        where += f" AND lower(v.email) LIKE lower({q(companies.like_pattern(f.text))})"
    if f.role:
        where += f" AND v.role = {q(f.role)}"
    return where


def count_statement(f: Filters) -> _Statement:
    """The count of the listing (bench/scale_people.py times it as the portal runs it)."""
    q = _Statement()
    parts = []
    if f.members:  # an index-only scan of the account's entries (and the identity for MFA)
        parts.append(f"(SELECT count(*) FROM membership m "  # noqa: S608 (fixed texts)
                     f"WHERE {_member_where(q, f)})")
    if f.invitations:
        parts.append(f"(SELECT count(*) FROM invitation v WHERE {_invitation_where(q, f)})")  # noqa: S608 (fixed texts)
    q.sql = f"SELECT {' + '.join(parts)} AS total"
    return q


async def _count(scope: Scope, f: Filters) -> int:
    return (await count_statement(f).run(scope))[0]["total"]


async def _page(scope: Scope, f: Filters, sort: str, **where: Any) -> list[dict[str, Any]]:
    return await page_statement(f, sort, **where).run(scope)


def page_statement(f: Filters, sort: str, *, edge: UUID | None = None, reverse: bool = False,
                   limit: int = PER_PAGE, offset: int = 0) -> _Statement:
    """``limit`` rows in ``sort`` order (``reverse``: read from the other end) after ``edge``
    (a row's id; its keys are read in the same account, so an id from elsewhere, or of a row
    gone since, gives no rows) or after ``offset`` rows."""
    descending, keys = _KEYS[sort]
    direction = "DESC" if descending != reverse else "ASC"
    beyond = "<" if descending != reverse else ">"
    names = [f"k{n}" for n in range(len(keys))]
    order = ", ".join(f"{name} {direction}" for name in names)
    member_keys = [m for m, _ in keys]
    invitation_keys = [v for _, v in keys]
    q = _Statement()
    parts = ["WITH "]
    if edge is not None:
        columns = ", ".join(f"{m} AS {n}" for m, n in zip(member_keys, names, strict=True))
        parts.append(
            f"edge AS (SELECT {columns}"  # noqa: S608
            + f" FROM membership m WHERE m.account = {q(f.account_id)} AND m.id = {q(edge)}"
            + " UNION ALL SELECT " + ", ".join(invitation_keys)
            + f" FROM invitation v WHERE v.account = {q(f.account_id)} AND v.id = {q(edge)}"
            + " AND v.state = 'pending'), ")

    def keyed(exprs: list[str]) -> str:
        if edge is None:
            return ""
        return (f" AND ({', '.join(exprs)}) {beyond} "  # noqa: S608
                f"(SELECT {', '.join(names)} FROM edge LIMIT 1)")

    branches = []
    if f.members:
        branches.append(
            "(SELECT m.id, 'active' AS status, m.role, m.created_at, m.identity AS identity_id, "  # noqa: S608
            + ", ".join(f"{m} AS {n}" for m, n in zip(member_keys, names, strict=True))
            + " FROM membership m"
            + f" WHERE {_member_where(q, f)}{keyed(member_keys)}"
            + f" ORDER BY {order} LIMIT {q(limit + offset)})")
    if f.invitations:
        branches.append(
            "(SELECT v.id, 'invited' AS status, v.role, v.created_at, "  # noqa: S608
            "NULL::uuid AS identity_id, "
            + ", ".join(f"{v} AS {n}" for v, n in zip(invitation_keys, names, strict=True))
            + f" FROM invitation v WHERE {_invitation_where(q, f)}{keyed(invitation_keys)}"
            + f" ORDER BY {order} LIMIT {q(limit + offset)})")
    parts.append("page AS (SELECT * FROM (" + "\n UNION ALL\n".join(branches)  # noqa: S608
                 + f") AS people ORDER BY {order} LIMIT {q(limit)} OFFSET {q(offset)})")
    parts.append(_DETAILS.replace("{}", q(f.account_id)))
    parts.append("ORDER BY " + ", ".join(f"page.{name} {direction}" for name in names))
    q.sql = "".join(parts)
    return q


async def list_page(
    scope: Scope,
    query: str | None = None,
    sort: object = None,
    page: object = None,
    role: object = None,
    status: object = None,
    mfa: object = None,
    after: object = None,
    before: object = None,
    *,
    members_only: bool = False,
) -> PeoplePage:
    """One page of the account's people matching the search and filters, in ``sort`` order
    (``members_only``: without pending invitations, as the API lists them).

    Two statements whatever the account's size and the page: the count, and the page. The
    page after (``after``) or before (``before``) a cursor of the page shown is read by key
    (keyset: no OFFSET); a page asked by number alone is read from the nearer end, so the
    last page of 5,000 people skips as few rows as the first. A cursor that does not fit (from
    another sort, tampered, its row gone) falls back to the page number."""
    account_id = tenancy.account_id(scope)
    full = can_manage(scope)
    text = companies.clean_query(query)
    # Members do not see sign-ins, so they cannot sort by them either.
    sort = _choice(sort, SORTS if full else MEMBER_SORTS, DEFAULT_SORT)
    role = _choice(role, ROLES)
    status = _choice(status, STATUSES) if full else ""
    mfa = _choice(mfa, MFA_FILTERS) if full else ""
    wanted = parse_page(page)
    policy = scope.account_mfa_policy
    filters = Filters(
        account_id=account_id, text=text, role=role, mfa=bool(mfa), policy=policy,
        # Without an MFA policy nobody misses a second factor.
        members=status != "invited" and not (mfa and policy == "none"),
        # People who have not joined yet have no second factor to miss.
        invitations=full and not members_only and status != "active" and not mfa,
    )
    total = await _count(scope, filters) if filters.members or filters.invitations else 0
    pages = page_count(total, PER_PAGE)
    current = min(wanted, pages)
    rows: list[dict[str, Any]] | None = None if total else []
    for raw, backwards in ((after, False), (before, True)):
        edge = decode_cursor(raw, sort, (UUID,))
        if rows is None and edge is not None and 1 < current < pages + (not backwards):
            rows = await _page(scope, filters, sort, edge=edge[0], reverse=backwards)
            if backwards:
                rows.reverse()
            if len(rows) != (PER_PAGE if current < pages else total - (pages - 1) * PER_PAGE):
                rows = None  # not the page the link promised: count from an end
    if rows is None:
        skipped = (current - 1) * PER_PAGE
        from_end = total - skipped - PER_PAGE  # rows after this page
        if current > 1 and from_end < skipped:
            rows = await _page(scope, filters, sort, reverse=True,
                               limit=min(PER_PAGE, total - skipped), offset=max(0, from_end))
            rows.reverse()
        else:
            rows = await _page(scope, filters, sort, offset=skipped)
    for row in rows:
        row["is_self"] = row["identity_id"] == scope.identity_id
        row["meets_policy"] = meets_policy(policy, row["has_app"], row["has_email"],
                                           row["has_passkey"])
    return PeoplePage(
        rows=rows, total=total, page=current, pages=pages, query=text, sort=sort, role=role,
        status=status, mfa=mfa, full=full, policy=policy,
        next_cursor=encode_cursor(sort, [rows[-1]["id"]]) if rows and current < pages else "",
        prev_cursor=encode_cursor(sort, [rows[0]["id"]]) if rows and current > 1 else "",
    )


_PERSON = """
SELECT m.id, m.role, m.created_at, m.identity AS identity_id, i.email, i.last_login_at,
       btrim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')) AS name,
       i.totp_confirmed_at IS NOT NULL AS has_app, i.mfa_email_enabled AS has_email,
       EXISTS (SELECT 1 FROM passkey k WHERE k.identity = i.id) AS has_passkey,
       (SELECT count(*) FROM company_access ca WHERE ca.membership = m.id)::int AS granted
FROM membership m
JOIN identity i ON i.id = m.identity
LEFT JOIN profile p ON p.identity = m.identity
WHERE m.account = {} AND m.id = {}
"""


async def get(scope: Scope, membership_id: object) -> dict[str, Any]:
    """One person of the current account by membership id (NotFound for any other id)."""
    require_manage(scope)
    parsed = tenancy.parse_id(membership_id)
    if parsed is None:
        raise NotFound()
    rows = await tenancy.raw(Membership, scope, _PERSON, parsed)
    if not rows:
        raise NotFound()
    person = rows[0]
    person["is_self"] = person["identity_id"] == scope.identity_id
    person["meets_policy"] = meets_policy(scope.account_mfa_policy, person["has_app"],
                                          person["has_email"], person["has_passkey"])
    person["all_companies"] = person["role"] in tenancy.ALL_COMPANIES_ROLES
    return person


#: Fixed texts only (the policy is a parameter).
_MFA_MISSING_COUNT = (
    "SELECT count(*) AS missing FROM membership m WHERE m.account = {} AND "  # noqa: S608
    + _MFA_MISSING
)


async def mfa_missing(scope: Scope) -> int:
    """How many people of the account do not meet its MFA policy (0 when there is none)."""
    policy = scope.account_mfa_policy
    if policy == "none":
        return 0
    rows = await tenancy.raw(
        Membership, scope,
        _MFA_MISSING_COUNT,
        policy,
    )
    return rows[0]["missing"]
