"""The people of an account: the list (search, sort, filters, pages), one person, adding by
email, roles, per-company access levels, removing a person and leaving an account.

Who may do what (the service decides; the route guard only lets the right roles in):

- owners and admins manage people: add, change roles and company levels, remove, invitations;
- only owners give or take the owner role (make, demote or remove an owner, invite an owner);
- members see the list read-only: who belongs to the account, their role and number of
  companies; not the invitations, last sign-ins or MFA status, which are admin matters;
- an account always keeps at least one owner: every change that could take the last owner
  away first locks the account row (``FOR NO KEY UPDATE``), so two owners demoting each other
  at the same moment are serialised and the second is refused; the database trigger
  ``membership_keeps_an_owner`` refuses it too, whoever writes;
- removing a person, and granting the owner or admin role, need a fresh re-authentication
  (``mfa.require_fresh``);
- owners and admins manage every company of the account; members only the companies they were
  given, at a level (view, edit, manage). Promoting a member to admin or owner drops their
  per-company rows, so a later demotion starts from no access rather than forgotten grants.

Permissions are read from the database on every request (``sessions.load``), so a removed or
downgraded person loses access at their next click. Every change of access is an audit event
written in the same transaction.

The list costs one query however many people the account has (the count comes with the page
as a window function); a page number beyond the end costs a second one. Searching matches
``membership.search_text`` (the lower-cased email and name, kept by triggers) with LIKE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from portal.db import ENGINE
from portal.security.permissions import Permission
from portal.services import (
    audit,
    companies,
    identity,
    invitations,
    mail,
    mfa,
    tenancy,
)
from portal.services.errors import DomainError, InvalidInput, NotFound
from portal.services.membership import (  # noqa: F401 (people.X is the public name too)
    LEVELS,
    NO_ACCESS,
    PRIVILEGED_ROLES,
    RANK,
    ROLES,
    EmailAlreadyInvited,
    NotAllowed,
    OwnersOnly,
    actor_name,
    can_manage,
    grant,
    lock_account,
    lock_email,
    owner_rule,
    require_manage,
)
from portal.services.paging import Window, page_count, parse_page
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import Company, CompanyAccess, Identity, Membership, Session

PER_PAGE = 25
#: Companies per page of the access matrix (and of the add form).
MATRIX_PER_PAGE = 50
#: A form may carry at most this many company levels.
MAX_LEVELS = 500

SORTS = ("email", "-email", "name", "-name", "role", "last_login", "newest")
MEMBER_SORTS = tuple(sort for sort in SORTS if sort != "last_login")
DEFAULT_SORT = "email"
STATUSES = ("active", "invited")
MFA_FILTERS = ("missing",)


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


class UnknownLevel(DomainError):
    field = "levels"
    message = "Wybierz poziom dostępu z listy."


class TooManyLevels(DomainError):
    field = "levels"
    message = "Za dużo firm naraz. Zapisz dostęp w mniejszych częściach."


class AllCompaniesRole(DomainError):
    field = "levels"
    message = "Właściciele i administratorzy zarządzają wszystkimi firmami konta."


class UseLeave(DomainError):
    message = "Aby odejść z konta, użyj przycisku „Opuść konto”."


# --- reading ---------------------------------------------------------------------------------


def assignable_roles(scope: Scope) -> tuple[str, ...]:
    """The roles this person may give (and take): owners all three, admins not the owner."""
    if scope.can(Permission.OWNERS_MANAGE):
        return ROLES
    if can_manage(scope):
        return ("admin", "member")
    return ()


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


@dataclass(frozen=True)
class AccessPage:
    """A page of the access matrix: companies of the account with the person's level."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    query: str
    per_page: int = MATRIX_PER_PAGE


async def _company_page(scope: Scope, query: str | None, page: object) -> tuple[list, int, int,
                                                                                int, str]:
    text = companies.clean_query(query)
    condition = companies.search_condition(text)
    counting = tenancy.count(Company, scope)
    selecting = tenancy.select(Company, scope, Company.id, Company.name, Company.nip,
                               Company.is_main)
    if condition is not None:
        counting = counting.where(condition)
        selecting = selecting.where(condition)
    total = await counting
    pages = page_count(total, MATRIX_PER_PAGE)
    current = min(parse_page(page), pages)
    rows = await companies._ordered(selecting, "name").limit(MATRIX_PER_PAGE).offset(
        (current - 1) * MATRIX_PER_PAGE)
    return rows, total, current, pages, text


async def access_page(scope: Scope, membership_id: UUID | None, query: str | None = None,
                      page: object = None) -> AccessPage:
    """The companies (one page, searchable) with ``membership_id``'s level on each; with no
    membership (the add form) every level is "no access"."""
    require_manage(scope)
    rows, total, current, pages, text = await _company_page(scope, query, page)
    levels: dict[UUID, str] = {}
    if membership_id is not None and rows:
        granted = await CompanyAccess.select(CompanyAccess.company, CompanyAccess.level).where(
            (CompanyAccess.membership == membership_id)
            & CompanyAccess.company.is_in([row["id"] for row in rows])
        )
        levels = {row["company"]: row["level"] for row in granted}
    for row in rows:
        row["level"] = levels.get(row["id"], NO_ACCESS)
    return AccessPage(rows=rows, total=total, page=current, pages=pages, query=text)


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


# --- input ------------------------------------------------------------------------------------


def parse_role(raw: object) -> str:
    if not isinstance(raw, str) or raw.strip() not in ROLES:
        raise UnknownRole()
    return raw.strip()


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


async def _check_companies(scope: Scope, company_ids: list[UUID]) -> dict[UUID, str]:
    """Every id is a company of the current account (else NotFound); returns their names."""
    if not company_ids:
        return {}
    found = await tenancy.select(Company, scope, Company.id, Company.name).where(
        Company.id.is_in(company_ids))
    if len(found) != len(set(company_ids)):
        raise NotFound()
    return {row["id"]: row["name"] for row in found}


# --- changing ---------------------------------------------------------------------------------


async def _locked_member(scope: Scope, membership_id: object) -> dict[str, Any]:
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
    levels = parse_levels(raw_levels)
    if errors:
        raise InvalidInput(errors)
    owner_rule(scope, role)
    if role in PRIVILEGED_ROLES:
        mfa.require_fresh(scope)
    await _check_companies(scope, list(levels))
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


def _describe(levels: dict[UUID, str]) -> str:
    return ",".join(f"{company}={level}" for company, level in sorted(
        (str(key), value) for key, value in levels.items()))


async def change_role(scope: Scope, membership_id: object, raw_role: object,
                      client: Client) -> dict[str, Any]:
    """Give a person another role. Only owners touch the owner role; the last owner stays."""
    require_manage(scope)
    role = parse_role(raw_role)
    account_id = tenancy.account_id(scope)
    try:
        async with ENGINE.transaction():
            await lock_account(account_id)
            target = await _locked_member(scope, membership_id)
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


async def set_levels(scope: Scope, membership_id: object, raw_levels: dict[str, str],
                     client: Client) -> int:
    """Set a member's level on the given companies ("none": no access); returns how many
    changed. Companies not in the form keep their level (the matrix is paged)."""
    require_manage(scope)
    levels = parse_levels(raw_levels)
    account_id = tenancy.account_id(scope)
    names = await _check_companies(scope, list(levels))
    async with ENGINE.transaction():
        target = await _locked_member(scope, membership_id)
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
            target = await _locked_member(scope, membership_id)
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
        "ORDER BY portal_sort_key(a.name), a.public_id",
        identity_id,
    )


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
