"""The people of an account as a list (search, sort, filters, pages) and one person's detail,
with whether each meets the account's MFA policy.

Members see the list read-only: who belongs to the account, their role and number of
companies; not the invitations, last sign-ins or MFA status, which are admin matters.
Changing people is ``membership_changes``; per-company access levels are ``company_access``.

The list costs one query however many people the account has (the count comes with the page
as a window function); a page number beyond the end costs a second one. Searching matches
``membership.search_text`` (the lower-cased email and name, kept by triggers) with LIKE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portal.services import companies, tenancy
from portal.services.errors import NotFound
from portal.services.membership import ROLES, can_manage, require_manage
from portal.services.paging import Window, page_count, parse_page
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
class PeoplePage(Window):
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


#: Names in Polish alphabetical order ("Łukasz" between "Lucyna" and "Marek") in any database:
#: ``membership.sort_name`` is ``portal_sort_key`` of the person's name, kept by triggers (the
#: polish_order migration), NULL without a name; emails sort by their bytes (technical).
_NAME = "people.sort_name"
_EMAIL = 'people.search COLLATE "C"'
#: A lookup per person by primary key: as a join, PostgreSQL hashes all 200,000 identities of a
#: vendor's database to sort one account's 5,000 people (190 ms against 10 ms).
_LAST_LOGIN = "(SELECT l.last_login_at FROM identity l WHERE l.id = people.identity_id)"

#: Each sort as its keys: (expression over the narrow rows, direction). ``search`` starts with
#: the lower-cased email, so it orders by email; ``i`` (identity) and ``p`` (profile) are joined
#: in the first step only when a key or filter names them (the planner drops unused joins).
_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "email": ((_EMAIL, "ASC"), ("people.id", "ASC")),
    "-email": ((_EMAIL, "DESC"), ("people.id", "ASC")),
    "name": ((_NAME, "ASC NULLS LAST"), (_EMAIL, "ASC"), ("people.id", "ASC")),
    "-name": ((_NAME, "DESC NULLS LAST"), (_EMAIL, "ASC"), ("people.id", "ASC")),
    "role": (("CASE people.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END", "ASC"),
             (_EMAIL, "ASC"), ("people.id", "ASC")),
    "last_login": ((_LAST_LOGIN, "DESC NULLS LAST"), (_EMAIL, "ASC"),
                   ("people.id", "ASC")),
    "newest": (("people.created_at", "DESC"), ("people.id", "ASC")),
}

_HAS_PASSKEY = "EXISTS (SELECT 1 FROM passkey k WHERE k.identity = i.id)"
_MFA_MISSING = f"""people.status = 'active' AND NOT CASE {{}}
    WHEN 'passkey' THEN {_HAS_PASSKEY}
    WHEN 'app' THEN i.totp_confirmed_at IS NOT NULL OR {_HAS_PASSKEY}
    WHEN 'any' THEN i.totp_confirmed_at IS NOT NULL OR i.mfa_email_enabled OR {_HAS_PASSKEY}
    ELSE true END"""

# Members and (for those who manage people) pending invitations, as one list, in two steps:
# narrow rows are filtered, counted, sorted and cut to a page; only that page is joined with
# the identity, profile and invitation details. The account id is the first placeholder
# (tenancy.raw), repeated for the invitations and the company count.
_PEOPLE = """
WITH people AS (
    SELECT m.id, 'active' AS status, m.role, m.created_at, m.search_text AS search,
           m.identity AS identity_id, m.sort_name
    FROM membership m
    WHERE m.account = {}
    UNION ALL
    SELECT v.id, 'invited', v.role, v.created_at, lower(v.email), NULL, NULL
    FROM invitation v
    WHERE v.account = {} AND v.state = 'pending' AND {}
), found AS (
    SELECT people.*, count(*) OVER () AS total, KEYS
    FROM people
    LEFT JOIN identity i ON i.id = people.identity_id
    LEFT JOIN profile p ON p.identity = people.identity_id
    WHERE ({} = '' OR people.search LIKE lower({}))
      AND ({} = '' OR people.role = {})
      AND ({} = '' OR people.status = {})
      AND (MFA)
    ORDER BY ORDER
    LIMIT {} OFFSET {}
)
SELECT found.id, found.status, found.role, found.created_at, found.identity_id, found.total,
       coalesce(i.email, v.email) AS email,
       btrim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')) AS name,
       i.last_login_at, coalesce(i.totp_confirmed_at IS NOT NULL, false) AS has_app,
       coalesce(i.mfa_email_enabled, false) AS has_email,
       coalesce(EXISTS (SELECT 1 FROM passkey k WHERE k.identity = i.id), false)
           AS has_passkey,
       v.expires_at, coalesce(v.expires_at <= now(), false) AS lapsed,
       CASE WHEN found.role IN ('owner', 'admin') THEN
                (SELECT count(*) FROM company c WHERE c.account = {})
            WHEN found.status = 'invited' THEN
                (SELECT count(*) FROM jsonb_each_text(v.company_levels) AS level
                 WHERE level.value <> 'none')
            ELSE (SELECT count(*) FROM company_access ca WHERE ca.membership = found.id)
       END::int AS company_count
FROM found
LEFT JOIN identity i ON i.id = found.identity_id
LEFT JOIN profile p ON p.identity = found.identity_id
LEFT JOIN invitation v ON v.id = found.id AND found.status = 'invited'
ORDER BY FINAL
"""


def _people_sql(sort: str, mfa: bool) -> str:
    """The list query for one sort (fixed texts from _ORDER, never input)."""
    keys = _ORDER[sort]
    return (
        _PEOPLE.replace("KEYS", ", ".join(f"{expr} AS sort_{n}" for n, (expr, _) in
                                          enumerate(keys)))
        .replace("ORDER BY ORDER", "ORDER BY " + ", ".join(
            f"sort_{n} {direction}" for n, (_, direction) in enumerate(keys)))
        .replace("ORDER BY FINAL", "ORDER BY " + ", ".join(
            f"found.sort_{n} {direction}" for n, (_, direction) in enumerate(keys)))
        .replace("(MFA)", f"({_MFA_MISSING})" if mfa else "(true)")
    )


async def list_page(
    scope: Scope,
    query: str | None = None,
    sort: object = None,
    page: object = None,
    role: object = None,
    status: object = None,
    mfa: object = None,
) -> PeoplePage:
    """One page of the account's people matching the search and filters, in ``sort`` order."""
    account_id = tenancy.account_id(scope)
    full = can_manage(scope)
    text = companies.clean_query(query)
    # Members do not see sign-ins, so they cannot sort by them either.
    sort = _choice(sort, SORTS if full else MEMBER_SORTS, DEFAULT_SORT)
    role = _choice(role, ROLES)
    status = _choice(status, STATUSES) if full else ""
    mfa = _choice(mfa, MFA_FILTERS) if full else ""
    wanted = parse_page(page)
    pattern = companies.like_pattern(text)
    policy = scope.account_mfa_policy
    sql = _people_sql(sort, bool(mfa))
    mfa_args = (policy,) if mfa else ()

    async def fetch(number: int) -> list[dict[str, Any]]:
        # One account may hold 10,000 people and the next one two: the connection plans every
        # statement for its values (db.SERVER_SETTINGS), never with a plan cached for "an
        # account".
        return await tenancy.raw(
            Membership, scope, sql,
            account_id, full,
            text, pattern,
            role, role,
            status, status,
            *mfa_args,
            PER_PAGE, (number - 1) * PER_PAGE,
            account_id,
        )

    rows = await fetch(wanted)
    if not rows and wanted > 1:  # beyond the end: the first page tells the total
        rows = await fetch(1)
    total = rows[0]["total"] if rows else 0
    pages = page_count(total, PER_PAGE)
    current = min(wanted, pages)
    if rows and current != wanted and current > 1:
        rows = await fetch(current)
    for row in rows:
        row["is_self"] = row["identity_id"] == scope.identity_id
        row["meets_policy"] = meets_policy(policy, row["has_app"], row["has_email"],
                                           row["has_passkey"])
    return PeoplePage(rows=rows, total=total, page=current, pages=pages, query=text, sort=sort,
                      role=role, status=status, mfa=mfa, full=full, policy=policy)


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
    "SELECT count(*) AS missing FROM membership m JOIN identity i ON i.id = m.identity "  # noqa: S608
    "WHERE m.account = {} AND NOT CASE {} "
    f"WHEN 'passkey' THEN {_HAS_PASSKEY} "
    f"WHEN 'app' THEN i.totp_confirmed_at IS NOT NULL OR {_HAS_PASSKEY} "
    f"ELSE i.totp_confirmed_at IS NOT NULL OR i.mfa_email_enabled OR {_HAS_PASSKEY} END"
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
