"""Company accounts (tenants): creating one with its owner and main company, the account card,
editing it, the accounts a person belongs to (the switcher) and choosing the current one.

Two accounts are never merged or linked and nothing is copied between them; any number of
accounts may carry the same NIP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from piccolo.query import WhereRaw

from portal.db import ENGINE
from portal.security.permissions import DELEGATE, Permission
from portal.security.tokens import new_hex_id
from portal.services import (
    audit,
    companies,
    company_data,
    delegation_access,
    sessions,
    tenancy,
)
from portal.services.errors import DomainError, NotFound
from portal.services.scope import Client, Scope
from portal.tables import Account, Company, Identity, Membership

FIELDS = ("name", "nip", "is_accounting_office", "street", "postal_code", "city", "country")
PUBLIC_ID = re.compile(r"^[0-9a-f]{12}$")

#: The switcher shows at most this many accounts at once; the filter narrows the rest.
SWITCHER_LIMIT = 50
#: From this many accounts on, the switcher offers filter-as-you-type.
FILTER_FROM = 8


class NotAllowed(DomainError):
    message = "Nie masz uprawnień do tej operacji."


def require(scope: Scope, permission: Permission) -> None:
    """The service's own check, behind the route guard: rules live here, not in handlers."""
    if not scope.can(permission):
        raise NotAllowed()


def flag(value: object) -> bool:
    return str(value or "").strip().lower() in {"1", "on", "true", "yes", "tak"}


def validate(values: dict[str, str]) -> dict[str, Any]:
    """The account form as stored: a PL account needs a valid NIP, others may leave it empty."""
    clean: dict[str, Any] = company_data.clean(values, nip_required=True)
    clean["is_accounting_office"] = flag(values.get("is_accounting_office"))
    return clean


async def _insert_account(clean: dict[str, Any]) -> dict[str, Any]:
    """Insert with a fresh 12-hex public id; a (very unlikely) clash just draws another."""
    for _ in range(8):
        rows = await (
            Account.insert(Account(public_id=new_hex_id(12), **clean))
            .on_conflict(target=Account.public_id, action="DO NOTHING")
            .returning(Account.id, Account.public_id, Account.name)
        )
        if rows:
            return rows[0]
    raise RuntimeError("no free account id after 8 draws")


async def make_current(scope: Scope, public_id: str) -> None:
    """This session works in the account from now on, and the next sign-in starts there."""
    await sessions.choose_account(scope, public_id)
    await Identity.update({Identity.last_account_id: public_id}).where(
        Identity.id == scope.identity_id
    )


async def create(scope: Scope, values: dict[str, str], client: Client) -> dict[str, Any]:
    """A new account owned by its creator, with its main company, made current; all or nothing."""
    clean = validate(values)
    async with ENGINE.transaction():
        account = await _insert_account(clean)
        await Membership.insert(
            Membership(account=account["id"], identity=scope.identity_id, role="owner")
        )
        main = {field: clean[field] for field in company_data.FIELDS}
        company = await companies.insert(account["id"], main, is_main=True)
        await make_current(scope, account["public_id"])
        await audit.record(
            "account:account:create",
            client=client,
            identity_id=scope.identity_id,
            account_id=account["id"],
            public_id=account["public_id"],
            name=clean["name"],
            nip=clean["nip"],
            main_company_id=company["id"],
        )
    return account


async def card(scope: Scope) -> dict[str, Any]:
    """The account card: its data, main company, numbers of companies and users, ID konta."""
    account_id = tenancy.account_id(scope)
    row = await Account.select().where(Account.id == account_id).first()
    if row is None:
        raise NotFound()
    # The main company's name is a fact about the account, shown to every member; its page
    # is linked for those who manage every company.
    main = await (
        tenancy.select(Company, scope, Company.id, Company.name, every_company=True)
        .where(Company.is_main.eq(True))
        .first()
    )
    if main is not None:
        main["linked"] = scope.role in tenancy.ALL_COMPANIES_ROLES
    return {
        **row,
        "main_company": main,
        "company_count": await tenancy.count(Company, scope, every_company=True),
        "user_count": await tenancy.count(Membership, scope),
    }


def form_values(row: dict[str, Any]) -> dict[str, Any]:
    """A stored account as the edit form shows it."""
    return {field: row.get(field, "") for field in FIELDS}


async def update(scope: Scope, values: dict[str, str], client: Client) -> dict[str, Any]:
    """Change the current account's data (owners and admins); the NIP keeps its rules."""
    require(scope, Permission.ACCOUNT_EDIT)
    clean = validate(values)
    account_id = tenancy.account_id(scope)
    async with ENGINE.transaction():
        before = await Account.select(*[getattr(Account, f) for f in FIELDS]).where(
            Account.id == account_id
        ).first()
        if before is None:
            raise NotFound()
        await Account.update({getattr(Account, f): clean[f] for f in FIELDS}).where(
            Account.id == account_id
        )
        changed = sorted(f for f in FIELDS if before[f] != clean[f])
        await audit.record(
            "account:account:update",
            client=client,
            identity_id=scope.identity_id,
            account_id=account_id,
            changed=",".join(changed),
        )
    return clean


@dataclass(frozen=True)
class AccountChoice:
    public_id: str
    name: str
    nip: str
    role: str
    current: bool


@dataclass(frozen=True)
class Choices:
    accounts: list[AccountChoice]
    total: int  # every account of the person
    matching: int  # those matching the filter
    query: str

    @property
    def filterable(self) -> bool:
        return self.total >= FILTER_FROM


#: Each of the person's accounts looked up by id (a LATERAL with LIMIT is never flattened into
#: a join): planned for a typed filter, PostgreSQL would otherwise scan all 50,000 accounts
#: with the ILIKE and hash them against the person's 1,000 memberships.
_YOURS = ("(SELECT public_id, name, nip, sort_name FROM account WHERE id = m.account LIMIT 1)"
          " AS a")

_CHOICES = """
SELECT a.public_id, a.name, a.nip, m.role
FROM membership m CROSS JOIN LATERAL YOURS
WHERE m.identity = {} MATCHES
ORDER BY a.sort_name, a.public_id
LIMIT {}
"""

_CHOICE_COUNTS = """
SELECT count(*) AS total, count(*) FILTER (WHERE true MATCHES) AS matching
FROM membership m CROSS JOIN LATERAL YOURS
WHERE m.identity = {}
"""

_MATCHES = " AND (a.name ILIKE {} OR a.public_id ILIKE {} OR a.nip LIKE {})"
_CHOICES = _CHOICES.replace("YOURS", _YOURS)
_CHOICE_COUNTS = _CHOICE_COUNTS.replace("YOURS", _YOURS)


async def choices(scope: Scope, query: str | None = None) -> Choices:
    """The accounts this person belongs to, with their role, for the switcher (two queries,
    however many accounts: an accounting office may be in hundreds). With nothing typed there
    is no filter at all (``ILIKE '%%'`` would still be evaluated for every account)."""
    text = companies.clean_query(query)
    if text:
        pattern = companies.like_pattern(text)
        digits = company_data.nip_digits(text)
        # A NIP typed with dashes still finds the stored digits; LIKE NULL never matches.
        nip_pattern = companies.like_pattern(digits) if digits.isdigit() else None
        matches, args = _MATCHES, (pattern, pattern, nip_pattern)
    else:
        matches, args = "", ()
    counts = (await Membership.raw(_CHOICE_COUNTS.replace(" MATCHES", matches),
                                   *args, scope.identity_id))[0]
    rows = await Membership.raw(
        _CHOICES.replace(" MATCHES", matches), scope.identity_id, *args, SWITCHER_LIMIT
    )
    current = scope.account.public_id if scope.account else None
    return Choices(
        accounts=[
            AccountChoice(r["public_id"], r["name"], r["nip"], r["role"], r["public_id"] == current)
            for r in rows
        ],
        total=counts["total"],
        matching=counts["matching"],
        query=text,
    )


@dataclass(frozen=True)
class OfficeGroup:
    """The switcher's group of client accounts an office's person works in ("Klienci biura")."""

    office: str
    accounts: list[AccountChoice]


async def delegated_choices(scope: Scope, query: str | None = None) -> list[OfficeGroup]:
    """The client accounts delegated to the person, grouped by the office they come through
    (read at every request, like the memberships: an ended delegation is gone at once)."""
    text = companies.clean_query(query).lower()
    current = scope.account.public_id if scope.account else None
    groups: dict[str, list[AccountChoice]] = {}
    for access in await delegation_access.every(scope.identity_id):
        client = access.client
        if text and text not in client.name.lower() and text not in client.public_id:
            continue
        groups.setdefault(access.delegation.office.name, []).append(
            AccountChoice(client.public_id, client.name, "", "delegate",
                          client.public_id == current))
    return [OfficeGroup(office, sorted(found, key=lambda c: c.name.lower()))
            for office, found in groups.items()]


async def count_for(scope: Scope) -> int:
    """How many accounts the person belongs to (one count, no rows)."""
    return await Membership.count().where(Membership.identity == scope.identity_id)


async def switch(scope: Scope, public_id: str) -> dict[str, Any]:
    """Make one of the person's accounts current; an account they are not in is NotFound."""
    public_id = (public_id or "").strip().lower()
    if not PUBLIC_ID.match(public_id):
        raise NotFound()
    row = await (
        Membership.select(Membership.role, Membership.account.id.as_alias("account_id"))
        .where(
            (Membership.identity == scope.identity_id)
            & WhereRaw(
                "account IN (SELECT id FROM account WHERE public_id = {})", public_id
            )
        )
        .first()
    )
    if row is None:
        # An accounting office's person may switch to a client account delegated to them.
        delegated = await delegation_access.find(scope.identity_id, public_id=public_id)
        if delegated is None:
            raise NotFound()
        row = {"role": DELEGATE, "account_id": delegated.client.id}
    async with ENGINE.transaction():
        await make_current(scope, public_id)
    return {"public_id": public_id, "role": row["role"], "account_id": row["account_id"]}


MFA_POLICIES = ("none", "any", "app", "passkey")


class UnknownMfaPolicy(DomainError):
    field = "mfa_policy"
    message = "Wybierz jedno z ustawień."


class MfaPolicyNotMetByYou(DomainError):
    field = "mfa_policy"
    message = (
        "Najpierw sam włącz taką metodę logowania dwuetapowego (Bezpieczeństwo logowania), "
        "inaczej stracisz dostęp do tego konta."
    )


async def set_mfa_policy(scope: Scope, raw: object, client: Client) -> str:
    """What second factor the account demands of everyone in it (owners and admins decide).
    Those who do not meet it are led to /security before they can act in the account."""
    require(scope, Permission.ACCOUNT_EDIT)
    policy = raw.strip() if isinstance(raw, str) else ""
    if policy not in MFA_POLICIES:
        raise UnknownMfaPolicy()
    if not replace(scope, account_mfa_policy=policy).meets_account_mfa_policy:
        raise MfaPolicyNotMetByYou()
    account_id = tenancy.account_id(scope)
    async with ENGINE.transaction():
        rows = await Account.raw(
            "SELECT mfa_policy FROM account WHERE id = {} FOR NO KEY UPDATE", account_id)
        if not rows:
            raise NotFound()
        before = rows[0]["mfa_policy"]
        if before != policy:
            await Account.update({Account.mfa_policy: policy}).where(Account.id == account_id)
            await audit.record(
                "account:mfa_policy:change", client=client, identity_id=scope.identity_id,
                account_id=account_id, before=before, after=policy,
            )
    return policy

