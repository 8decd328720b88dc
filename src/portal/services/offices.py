"""Accounting offices and their clients: asking for access, the client's decision, the
office's assignments of its own people, and ending it.

Two accounts are never merged or linked and nothing is copied between them: a delegation is a
permission the client gives, and can end, for the office's people to act in the client's
account. The rules:

- an account with the accounting-office flag asks (its owners and admins), by the client's
  "ID konta" or by NIP plus the email of one of its owners, for some companies (or all) at a
  highest level and with an optional end date. The office always gets the same answer and sees
  the request as it typed it, whether an account matched or not (no enumeration); the client's
  owners and admins are mailed only when one did;
- the client's owners and admins approve (with fewer companies or a lower ceiling, or an
  earlier end), refuse, or end it at any time; the office may withdraw or end it too;
- the office's owners and admins assign their own people to the delegated companies at levels
  up to the ceiling; a person removed from the office loses the assignments with the
  membership (the foreign key cascades);
- who may act is decided at every request by ``delegation_access`` (through the Scope), so an
  end, a lower ceiling or an assignment taken away counts at the next click.

The database keeps what concurrency could break (one active delegation per office and client, a
company of the client, assignments within the ceiling): see the offices migration. Every
change is an audit event in both accounts' logs, in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from portal.db import ENGINE
from portal.i18n import end_of_day, today
from portal.security.permissions import Permission
from portal.services import audit, company_data, mail, tenancy
from portal.services.delegation_access import LIVE
from portal.services.errors import DomainError, InvalidInput, NotFound
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import Delegation, DelegationAssignment, DelegationCompany, Membership

LEVELS = ("view", "edit", "manage")
RANK = {level: index for index, level in enumerate(LEVELS)}
PUBLIC_ID = re.compile(r"^[0-9a-f]{12}$")
#: A request may name at most this many companies (keys, ids or NIPs).
MAX_COMPANIES = 200
#: Ended and refused delegations shown under the active ones.
HISTORY = 20


class NotAllowed(DomainError):
    message = "Tę operację wykonują właściciele i administratorzy konta."


class NotAnOffice(NotAllowed):
    message = (
        "Klientów biura mają konta z zaznaczonym polem „Prowadzę biuro rachunkowe” "
        "(Konto, Edytuj dane konta)."
    )


class AboveCeiling(DomainError):
    field = "level"
    message = "Klient pozwolił na niższy poziom dostępu do tej firmy."


class InvalidEndDate(DomainError):
    field = "ends_on"
    message = "Podaj datę w formacie RRRR-MM-DD albo zostaw puste pole."


class EndDateInPast(DomainError):
    field = "ends_on"
    message = "Data końca nie może być w przeszłości."


class NotPending(DomainError):
    message = "Ta prośba została już rozpatrzona."


class NotLive(DomainError):
    message = "Ten dostęp już się zakończył."


# --- who may -----------------------------------------------------------------------------------


def require_office(scope: Scope) -> None:
    """The office's side: owners and admins of an account with the accounting-office flag."""
    if not scope.can(Permission.OFFICE_CLIENTS_MANAGE) or scope.delegation is not None:
        raise NotAllowed()
    if scope.account is None or not scope.account.is_accounting_office:
        raise NotAnOffice()


def require_client(scope: Scope) -> None:
    """The client's side: its owners and admins (never an office's person acting in it)."""
    if not scope.can(Permission.OFFICES_MANAGE) or scope.delegation is not None:
        raise NotAllowed()


def is_office(scope: Scope) -> bool:
    try:
        require_office(scope)
    except NotAllowed:
        return False
    return True


# --- the request form ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessRequest:
    public_id: str | None
    nip: str | None
    owner_email: str | None
    companies: list[str]
    level: str
    ends_at: datetime | None
    asked_for: str


def _ends_at(raw: str, errors: dict[str, str], name: str = "ends_on") -> datetime | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text[:10]) if len(text) <= 10 else None
    except ValueError:
        day = None
    if day is None or day.year > 2999:
        errors[name] = InvalidEndDate.message
        return None
    if day < today():
        errors[name] = EndDateInPast.message
        return None
    return end_of_day(day)


def _level(raw: str, errors: dict[str, str]) -> str:
    level = (raw or "").strip()
    if level not in LEVELS:
        errors["level"] = "Wybierz poziom dostępu z listy."
    return level


def _company_entries(raw: list[str]) -> list[str]:
    """The companies named: each entry may hold several, split by spaces, commas or lines."""
    found: list[str] = []
    for value in raw:
        for part in re.split(r"[\s,;]+", value or ""):
            part = part.strip()[:64]
            if part and part not in found:
                found.append(part)
    return found


def parse_request(values: dict[str, Any]) -> AccessRequest:
    """The request form (``account_id``, ``owner_email``, ``company_ids``, ``level``,
    ``ends_on``) as asked, or InvalidInput with a message per field."""
    from portal.services.identity import normalise_email

    errors: dict[str, str] = {}
    raw_id = str(values.get("account_id") or "").strip()
    public_id = nip = email = None
    compact = raw_id.lower().replace(" ", "")
    if PUBLIC_ID.match(compact):
        public_id = compact
    elif raw_id:
        digits = company_data.nip_digits(raw_id)
        if company_data.nip_is_valid(digits):
            nip = digits
            try:
                email = normalise_email(str(values.get("owner_email") or ""))
            except InvalidInput as error:
                errors["owner_email"] = (
                    "Do NIP-u dopisz adres e-mail jednego z właścicieli konta klienta."
                    if not str(values.get("owner_email") or "").strip()
                    else error.errors["email"])
        else:
            errors["account_id"] = (
                "Podaj ID konta klienta (12 znaków 0-9 i a-f) albo jego NIP (10 cyfr).")
    else:
        errors["account_id"] = "Podaj ID konta klienta albo jego NIP."
    entries = _company_entries(list(values.get("company_ids") or []))
    if len(entries) > MAX_COMPANIES:
        errors["company_ids"] = "Za dużo firm naraz."
    level = _level(str(values.get("level") or ""), errors)
    ends_at = _ends_at(str(values.get("ends_on") or ""), errors)
    if errors:
        raise InvalidInput(errors)
    asked_for = public_id or f"NIP {nip}, {email}"
    return AccessRequest(public_id, nip, email, entries, level, ends_at, asked_for)


_CLIENT_BY_ID = "SELECT id, name FROM account WHERE public_id = {}"
#: The accounts with this NIP of which the email is an owner (the oldest first).
_CLIENT_BY_NIP = """
SELECT a.id, a.name FROM account a
JOIN membership m ON m.account = a.id AND m.role = 'owner'
JOIN identity i ON i.id = m.identity AND lower(i.email) = lower({})
WHERE a.nip = {}
ORDER BY a.created_at, a.id LIMIT 1
"""

_ASK_COMPANIES = """
INSERT INTO delegation_company (id, created_at, delegation, company, level)
SELECT gen_random_uuid(), now(), {}, c.id, {} FROM company c
WHERE c.account = {} AND (cardinality({}::text[]) = 0 OR c.id::text = ANY({}::text[])
                          OR c.key = ANY({}::text[]) OR c.nip = ANY({}::text[]))
"""

_RECIPIENTS = """
SELECT i.email, coalesce(p.language, '') AS language FROM membership m
JOIN identity i ON i.id = m.identity LEFT JOIN profile p ON p.identity = i.id
WHERE m.account = {} AND m.role IN ('owner', 'admin')
ORDER BY i.email
"""


async def _end_expired(office_id: UUID, client_id: UUID) -> None:
    """A delegation past its end date is ended for good, so a new request may take its place."""
    await Delegation.raw(
        "UPDATE delegation SET state = 'ended', ended_at = ends_at WHERE office = {} "
        "AND client = {} AND state = 'approved' AND ends_at IS NOT NULL AND ends_at <= now()",
        office_id, client_id)


async def request_access(settings: Settings, scope: Scope, values: dict[str, Any],
                         client: Client) -> None:
    """Ask a client account for access. The office learns nothing from the answer: the same
    for an account that exists, one that does not, one that does not match the email, and one
    that already gave (or was asked for) access; only the first is asked."""
    require_office(scope)
    asked = parse_request(values)
    office_id = tenancy.account_id(scope)
    async with ENGINE.transaction():
        if asked.public_id:
            found = await Delegation.raw(_CLIENT_BY_ID, asked.public_id)
        else:
            found = await Delegation.raw(_CLIENT_BY_NIP, asked.owner_email, asked.nip)
        target = found[0] if found and found[0]["id"] != office_id else None
        created = None
        if target is not None:
            await _end_expired(office_id, target["id"])
            created = await Delegation.raw(
                "INSERT INTO delegation (id, created_at, office, client, asked_for, state, level,"
                " ends_at, requested_by) VALUES (gen_random_uuid(), now(), {}, {}, {}, "
                "'pending', {}, {}, {}) ON CONFLICT (office, client) WHERE client IS NOT NULL "
                "AND state IN ('pending', 'approved') DO NOTHING RETURNING id",
                office_id, target["id"], asked.asked_for, asked.level, asked.ends_at,
                scope.identity_id)
        if created:
            delegation_id = created[0]["id"]
            entries = asked.companies
            await DelegationCompany.raw(_ASK_COMPANIES, delegation_id, asked.level,
                                        target["id"], entries, entries, entries, entries)
            if not await DelegationCompany.exists().where(
                    DelegationCompany.delegation == delegation_id):
                # None of the named companies is the client's: ask for all of them, the
                # client chooses (naming a company must not tell whether it exists).
                await DelegationCompany.raw(_ASK_COMPANIES, delegation_id, asked.level,
                                            target["id"], [], [], [], [])
        else:
            # No account, no match, or already asked: kept as typed, shown like the others.
            delegation_id = (await Delegation.raw(
                "INSERT INTO delegation (id, created_at, office, client, asked_for, state, level,"
                " ends_at, requested_by) VALUES (gen_random_uuid(), now(), {}, NULL, {}, "
                "'pending', {}, {}, {}) RETURNING id",
                office_id, asked.asked_for, asked.level, asked.ends_at, scope.identity_id,
            ))[0]["id"]
        await audit.record("office:delegation:request", client=client,
                           identity_id=scope.identity_id, account_id=office_id,
                           delegation_id=delegation_id, asked_for=asked.asked_for,
                           level=asked.level)
        if created:
            await audit.record("account:delegation:request", client=client,
                               identity_id=scope.identity_id, account_id=target["id"],
                               delegation_id=delegation_id, office_name=scope.account.name,
                               office_id=office_id, level=asked.level)
            for recipient in await Delegation.raw(_RECIPIENTS, target["id"]):
                await mail.queue(
                    settings, recipient["email"], "office_request",
                    language=recipient["language"] or "pl", office=scope.account.name,
                    office_public_id=scope.account.public_id, client=target["name"],
                    requested_by=scope.email, level=asked.level,
                    ends_on=asked.ends_at.strftime("%d.%m.%Y") if asked.ends_at else "",
                )


# --- reading -------------------------------------------------------------------------------------


@dataclass
class DelegatedCompany:
    id: UUID
    name: str
    key: str
    level: str


@dataclass
class Assignment:
    id: UUID
    membership_id: UUID
    person: str
    email: str
    company_id: UUID
    company_name: str
    level: str


@dataclass
class DelegationView:
    id: UUID
    state: str
    live: bool
    level: str
    asked_for: str
    ends_at: datetime | None
    created_at: datetime
    decided_at: datetime | None
    ended_at: datetime | None
    other_name: str  # the client (office side) or the office (client side), when known
    other_public_id: str
    other_nip: str
    requested_by: str = ""
    companies: list[DelegatedCompany] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)

    @property
    def status(self) -> str:
        """pending | active | ended | refused (an approved one past its end date is ended)."""
        if self.state == "approved":
            return "active" if self.live else "ended"
        return self.state

    @property
    def people(self) -> list[str]:
        """The office's people who currently use it, each once."""
        seen: list[str] = []
        for assignment in self.assignments:
            if assignment.person not in seen:
                seen.append(assignment.person)
        return seen

    def ceiling(self, company_id: UUID) -> str | None:
        for company in self.companies:
            if company.id == company_id:
                return company.level
        return None


_DELEGATIONS = """
SELECT d.id, d.state, (LIVE) AS live, d.level, d.asked_for, d.ends_at, d.created_at,
       d.decided_at, d.ended_at, d.client, d.office,
       coalesce(o.name, '') AS other_name, coalesce(o.public_id, '') AS other_public_id,
       coalesce(o.nip, '') AS other_nip, coalesce(r.email, '') AS requested_by
FROM delegation d
LEFT JOIN account o ON o.id = OTHER
LEFT JOIN identity r ON r.id = d.requested_by
WHERE SIDE = {}
ORDER BY d.created_at DESC, d.id DESC
LIMIT {}
""".replace("LIVE", LIVE)

_COMPANIES = """
SELECT dc.delegation, c.id, c.name, c.key, dc.level FROM delegation_company dc
JOIN company c ON c.id = dc.company
WHERE dc.delegation = ANY({}::uuid[]) ORDER BY c.sort_name, c.id
"""

_ASSIGNMENTS = """
SELECT a.id, a.delegation, a.membership, a.company, a.level, c.name AS company_name,
       i.email, trim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')) AS name
FROM delegation_assignment a
JOIN company c ON c.id = a.company
JOIN membership m ON m.id = a.membership
JOIN identity i ON i.id = m.identity LEFT JOIN profile p ON p.identity = i.id
WHERE a.delegation = ANY({}::uuid[]) ORDER BY lower(i.email), c.sort_name
"""


async def _delegations(side: str, account_id: UUID, limit: int = 200) -> list[DelegationView]:
    other = "d.client" if side == "office" else "d.office"
    rows = await Delegation.raw(
        _DELEGATIONS.replace("OTHER", other).replace("SIDE", f"d.{side}"), account_id, limit)
    views = []
    for row in rows:
        # The office learns the client's name only from the client's approval.
        known = side == "client" or row["decided_at"] is not None
        views.append(DelegationView(
            id=row["id"], state=row["state"], live=bool(row["live"]), level=row["level"],
            asked_for=row["asked_for"], ends_at=row["ends_at"], created_at=row["created_at"],
            decided_at=row["decided_at"], ended_at=row["ended_at"],
            other_name=row["other_name"] if known else "",
            other_public_id=row["other_public_id"] if known else "",
            other_nip=row["other_nip"] if known else "",
            requested_by=row["requested_by"] if side == "client" else "",
        ))
    ids = [view.id for view in views if side == "client" or view.decided_at is not None]
    by_id = {view.id: view for view in views}
    if ids:
        for row in await DelegationCompany.raw(_COMPANIES, ids):
            by_id[row["delegation"]].companies.append(
                DelegatedCompany(row["id"], row["name"], row["key"], row["level"]))
        for row in await DelegationAssignment.raw(_ASSIGNMENTS, ids):
            by_id[row["delegation"]].assignments.append(Assignment(
                row["id"], row["membership"], row["name"] or row["email"], row["email"],
                row["company"], row["company_name"], row["level"]))
    return views


@dataclass
class Board:
    """One side's delegations, grouped as the screens show them."""

    pending: list[DelegationView]
    active: list[DelegationView]
    history: list[DelegationView]
    people: list[dict[str, Any]] = field(default_factory=list)


def _board(views: list[DelegationView]) -> Board:
    return Board(
        pending=[v for v in views if v.status == "pending"],
        active=[v for v in views if v.status == "active"],
        history=[v for v in views if v.status in ("ended", "refused")][:HISTORY],
    )


async def office_board(scope: Scope) -> Board:
    """The office's requests and delegations, and its own people (to assign)."""
    require_office(scope)
    board = _board(await _delegations("office", tenancy.account_id(scope)))
    board.people = await tenancy.select(
        Membership, scope, Membership.id, Membership.identity.email.as_alias("email"),
    ).order_by(Membership.identity.email)
    return board


async def client_board(scope: Scope) -> Board:
    """The offices that asked for or have access to the client account."""
    require_client(scope)
    return _board(await _delegations("client", tenancy.account_id(scope)))


_OWN = """
SELECT d.*, (LIVE) AS live, o.name AS office_name, c.name AS client_name
FROM delegation d JOIN account o ON o.id = d.office LEFT JOIN account c ON c.id = d.client
WHERE d.id = {} AND SIDE = {}
""".replace("LIVE", LIVE)


async def _own(side: str, scope: Scope, delegation_id: object, *, lock: bool = False
               ) -> dict[str, Any]:
    """A delegation of the current account (as office or as client), or NotFound."""
    parsed = tenancy.parse_id(delegation_id)
    if parsed is None:
        raise NotFound()
    query = _OWN.replace("SIDE", "d.office" if side == "office" else "d.client")
    rows = await Delegation.raw(query + (" FOR UPDATE OF d" if lock else ""),
                                parsed, tenancy.account_id(scope))
    if not rows:
        raise NotFound()
    return rows[0]


# --- the client decides --------------------------------------------------------------------------


def _chosen_ids(raw: list[str]) -> set[UUID]:
    return {parsed for value in raw if (parsed := tenancy.parse_id(value)) is not None}


async def approve(scope: Scope, delegation_id: object, values: dict[str, Any],
                  client: Client) -> None:
    """Approve a pending request, with possibly fewer companies, a lower ceiling and an
    earlier end (never more than was asked)."""
    require_client(scope)
    errors: dict[str, str] = {}
    level = _level(str(values.get("level") or ""), errors)
    ends_at = _ends_at(str(values.get("ends_on") or ""), errors)
    chosen = _chosen_ids(list(values.get("company_ids") or []))
    async with ENGINE.transaction():
        row = await _own("client", scope, delegation_id, lock=True)
        if row["state"] != "pending":
            raise NotPending()
        if not errors and RANK[level] > RANK[row["level"]]:
            errors["level"] = "Biuro prosiło o niższy poziom: możesz go tylko obniżyć."
        asked = {r["company"] for r in await DelegationCompany.select(
            DelegationCompany.company).where(DelegationCompany.delegation == row["id"])}
        if not chosen & asked:
            errors["company_ids"] = "Wybierz co najmniej jedną firmę."
        if errors:
            raise InvalidInput(errors)
        if ends_at is None:
            ends_at = row["ends_at"]
        elif row["ends_at"] is not None and ends_at > row["ends_at"]:
            ends_at = row["ends_at"]  # never longer than asked
        await DelegationCompany.delete().where(
            (DelegationCompany.delegation == row["id"])
            & DelegationCompany.company.not_in(list(chosen & asked)))
        await DelegationCompany.update({DelegationCompany.level: level}).where(
            DelegationCompany.delegation == row["id"])
        await Delegation.update({
            Delegation.state: "approved", Delegation.level: level, Delegation.ends_at: ends_at,
            Delegation.decided_by: scope.identity_id,
            Delegation.decided_at: datetime.now(UTC),
        }).where(Delegation.id == row["id"])
        await _record_both("delegation:approve", scope, row, client, level=level,
                           companies=len(chosen & asked))


async def refuse(scope: Scope, delegation_id: object, client: Client) -> None:
    require_client(scope)
    async with ENGINE.transaction():
        row = await _own("client", scope, delegation_id, lock=True)
        if row["state"] != "pending":
            raise NotPending()
        await Delegation.update({
            Delegation.state: "refused", Delegation.decided_by: scope.identity_id,
            Delegation.decided_at: datetime.now(UTC),
        }).where(Delegation.id == row["id"])
        await _record_both("delegation:refuse", scope, row, client)


async def end(scope: Scope, delegation_id: object, client: Client, *, side: str) -> None:
    """End a delegation (the client) or withdraw a request or end it (the office). The office's
    people lose the access at their next request."""
    (require_client if side == "client" else require_office)(scope)
    async with ENGINE.transaction():
        row = await _own(side, scope, delegation_id, lock=True)
        if row["state"] not in ("pending", "approved"):
            raise NotLive()
        await Delegation.update({
            Delegation.state: "ended", Delegation.ended_by: scope.identity_id,
            Delegation.ended_at: datetime.now(UTC),
        }).where(Delegation.id == row["id"])
        await _record_both("delegation:end", scope, row, client, by=side)


async def _record_both(action: str, scope: Scope, row: dict[str, Any], client: Client,
                       **data: Any) -> None:
    """The same event in the client's log (``account:…``) and the office's (``office:…``).
    The client's people stay unnamed in the office's log (the office never sees who they are);
    the office's people are named in the client's (the client sees who works for it)."""
    common = {"delegation_id": row["id"], "office_name": row["office_name"],
              "client_name": row["client_name"] or row["asked_for"], **data}
    by_office = scope.account is not None and scope.account.id == row["office"]
    if row["client"] is not None:
        await audit.record(f"account:{action}", client=client, identity_id=scope.identity_id,
                           account_id=row["client"], **common)
    await audit.record(f"office:{action}", client=client if by_office else None,
                       identity_id=scope.identity_id if by_office else None,
                       account_id=row["office"], **common)


# --- the office assigns its people ---------------------------------------------------------------


async def assign(scope: Scope, delegation_id: object, values: dict[str, Any],
                 client: Client) -> int:
    """Give one of the office's people some of the delegated companies at a level within the
    client's ceiling for each. Returns how many companies were assigned."""
    require_office(scope)
    errors: dict[str, str] = {}
    level = _level(str(values.get("level") or ""), errors)
    person = tenancy.parse_id(values.get("membership_id"))
    chosen = _chosen_ids(list(values.get("company_ids") or []))
    membership = None
    if person is not None:
        membership = await tenancy.select(
            Membership, scope, Membership.id, Membership.identity.email.as_alias("email"),
        ).where(Membership.id == person).first()
    if membership is None:
        errors["membership_id"] = "Wybierz osobę biura z listy."
    if not chosen:
        errors["company_ids"] = "Wybierz co najmniej jedną firmę."
    if errors:
        raise InvalidInput(errors)
    async with ENGINE.transaction():
        row = await _own("office", scope, delegation_id)
        if row["state"] != "approved" or not row["live"]:
            raise NotLive()
        ceilings = {r["company"]: r["level"] for r in await DelegationCompany.raw(
            "SELECT company, level FROM delegation_company WHERE delegation = {} FOR SHARE",
            row["id"])}
        if not chosen <= set(ceilings):
            raise InvalidInput({"company_ids": "Wybierz firmy z listy."})
        if any(RANK[level] > RANK[ceilings[company]] for company in chosen):
            raise AboveCeiling()
        try:
            async with ENGINE.transaction():  # a savepoint: the trigger may still refuse
                for company in sorted(chosen):
                    await DelegationAssignment.raw(
                        "INSERT INTO delegation_assignment (id, created_at, delegation, "
                        "membership, company, level) VALUES (gen_random_uuid(), now(), {}, {}, "
                        "{}, {}) ON CONFLICT (delegation, membership, company) "
                        "DO UPDATE SET level = EXCLUDED.level",
                        row["id"], membership["id"], company, level)
        except asyncpg.CheckViolationError as error:  # the ceiling lowered meanwhile
            raise AboveCeiling() from error
        await _record_both("delegation:assign", scope, row, client,
                           email=membership["email"], level=level, companies=len(chosen))
    return len(chosen)


async def unassign(scope: Scope, assignment_id: object, client: Client) -> None:
    """Take one company of a delegation away from one of the office's people."""
    require_office(scope)
    parsed = tenancy.parse_id(assignment_id)
    if parsed is None:
        raise NotFound()
    async with ENGINE.transaction():
        rows = await DelegationAssignment.raw(
            "DELETE FROM delegation_assignment a USING delegation d, membership m, identity i "
            "WHERE a.id = {} AND d.id = a.delegation AND d.office = {} AND m.id = a.membership "
            "AND i.id = m.identity RETURNING a.delegation, i.email, a.company",
            parsed, tenancy.account_id(scope))
        if not rows:
            raise NotFound()
        row = await _own("office", scope, rows[0]["delegation"])
        await _record_both("delegation:unassign", scope, row, client, email=rows[0]["email"],
                           company_id=rows[0]["company"])


# --- the API -------------------------------------------------------------------------------------


async def for_api(scope: Scope) -> dict[str, list[DelegationView]]:
    """What an API key of the account may read: as an office its client delegations, as a
    client the offices with access (the same rows the screens show, never the other side's
    people). A key limited to some companies reads none: they are facts of the account."""
    account_id = tenancy.account_id(scope)
    if scope.company_ids is not None:
        return {"clients": [], "offices": []}
    return {"clients": await _delegations("office", account_id),
            "offices": await _delegations("client", account_id)}
