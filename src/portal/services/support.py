"""Support tickets ("Moje zgłoszenia"): a person of an account asks, support staff answer.

A ticket belongs to its account (every read goes through ``tenancy``: another account's ticket
is NotFound) and to the person who opened it. Who sees which tickets of the account: the
person who opened a ticket, and the account's owners and admins, who see every ticket of the
account (they answer for its licences, invoices and people). A plain member sees only their own;
someone else's ticket is NotFound for them, as if it did not exist.

Status: ``open`` (waiting for support), ``answered`` (support replied; the person is mailed on
each reply), ``closed`` (by the person or by staff). A reply from the person reopens a closed
ticket. Staff work on tickets from the back office (services/staff.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from piccolo.query import Select

from portal.db import ENGINE
from portal.services import audit, companies, mail, tenancy
from portal.services.errors import DomainError, InvalidInput, NotFound
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import Company, Identity, Profile, Ticket, TicketMessage

#: Ticket categories in the order the form offers them (labels: partials/catalogue_labels.html).
CATEGORIES = ("technical", "billing", "access", "licence", "other")
STATUSES = ("open", "answered", "closed")

SUBJECT_MAX = 200
MESSAGE_MAX = 10_000

FIELDS = ("subject", "category", "company", "message")


class TicketClosed(DomainError):
    message = "To zgłoszenie jest już zamknięte."


class SubjectRequired(DomainError):
    field = "subject"
    message = "Podaj temat zgłoszenia."


class SubjectTooLong(DomainError):
    field = "subject"
    message = "Temat może mieć najwyżej 200 znaków."


class UnknownCategory(DomainError):
    field = "category"
    message = "Wybierz kategorię z listy."


class UnknownCompany(DomainError):
    field = "company"
    message = "Wybierz firmę z listy."


class MessageRequired(DomainError):
    field = "message"
    message = "Napisz wiadomość."


class MessageTooLong(DomainError):
    field = "message"
    message = "Wiadomość może mieć najwyżej 10 000 znaków."


def parse_status(raw: object) -> str:
    return raw if isinstance(raw, str) and raw in STATUSES else ""


def sees_every_ticket(scope: Scope) -> bool:
    """Owners and admins see every ticket of their account; members only their own."""
    return scope.role in tenancy.ALL_COMPANIES_ROLES


def _visible(scope: Scope, *columns: Any) -> Select:
    """The tickets of the current account this person may see."""
    query = tenancy.select(Ticket, scope, *columns)
    if not sees_every_ticket(scope):
        query = query.where(Ticket.identity == scope.identity_id)
    return query


def _clean_text(raw: str | None, limit: int) -> str:
    """Text as typed, without control characters other than line breaks and tabs."""
    text = (raw or "").replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or (ord(ch) >= 32 and ord(ch) != 127))
    return text.strip()[: limit + 1]


def clean_message(raw: str | None) -> str:
    text = _clean_text(raw, MESSAGE_MAX)
    if not text:
        raise MessageRequired()
    if len(text) > MESSAGE_MAX:
        raise MessageTooLong()
    return text


async def companies_for_form(scope: Scope, query: str | None = None,
                             chosen: str | None = None) -> companies.Picker:
    """The companies a ticket may name: those of the account this person can see (a page of
    them, searchable, the chosen one kept)."""
    return await companies.picker(scope, query, [chosen] if chosen else [])


async def validate(scope: Scope, values: dict[str, str]) -> dict[str, Any]:
    """The ticket form as stored; InvalidInput lists every field's problem."""
    errors: dict[str, str] = {}

    def fail(error: DomainError) -> None:
        errors.setdefault(error.field or "form", error.message)

    subject = " ".join(_clean_text(values.get("subject"), SUBJECT_MAX).split())
    if not subject:
        fail(SubjectRequired())
    elif len(subject) > SUBJECT_MAX:
        fail(SubjectTooLong())
    category = values.get("category") or ""
    if category not in CATEGORIES:
        fail(UnknownCategory())
    company_id = None
    if values.get("company"):
        try:
            company_id = (await tenancy.get(Company, scope, values["company"], Company.id))["id"]
        except NotFound:
            fail(UnknownCompany())
    message = ""
    try:
        message = clean_message(values.get("message"))
    except DomainError as error:
        fail(error)
    if errors:
        raise InvalidInput(errors)
    return {"subject": subject, "category": category, "company": company_id, "message": message}


async def create(settings: Settings, scope: Scope, values: dict[str, str], client: Client
                 ) -> UUID:
    """Open a ticket in the current account with its first message; the person gets a
    confirmation mail. All in one transaction."""
    clean = await validate(scope, values)
    account_id = tenancy.account_id(scope)
    now = datetime.now(UTC)
    async with ENGINE.transaction():
        ticket_id = (await Ticket.insert(Ticket(
            account=account_id, identity=scope.identity_id, company=clean["company"],
            subject=clean["subject"], category=clean["category"], status="open", updated_at=now,
        )).returning(Ticket.id))[0]["id"]
        await TicketMessage.insert(TicketMessage(
            ticket=ticket_id, author=scope.identity_id, from_staff=False, body=clean["message"]))
        await audit.record("support:ticket:create", client=client, identity_id=scope.identity_id,
                           account_id=account_id, ticket_id=ticket_id,
                           category=clean["category"])
        await mail.queue(settings, scope.email, "ticket_created", language=scope.language,
                         subject=clean["subject"], ticket_id=ticket_id)
    return ticket_id


_LIST_COLUMNS = (
    Ticket.id, Ticket.subject, Ticket.category, Ticket.status, Ticket.created_at,
    Ticket.updated_at, Ticket.company.name.as_alias("company_name"),
    Ticket.identity.email.as_alias("author_email"), Ticket.identity.as_alias("author_id"),
)

#: The list shows this many most recently changed tickets.
TICKETS_SHOWN = 200


async def tickets(scope: Scope, status: object = None) -> list[dict[str, Any]]:
    """The tickets this person may see in the current account, most recently changed first."""
    query = _visible(scope, *_LIST_COLUMNS)
    wanted = parse_status(status)
    if wanted:
        query = query.where(Ticket.status == wanted)
    return await query.order_by(Ticket.updated_at, ascending=False).limit(TICKETS_SHOWN)


async def _ticket_row(scope: Scope, ticket_id: object) -> dict[str, Any]:
    parsed = tenancy.parse_id(ticket_id)
    if parsed is None:
        raise NotFound()
    row = await _visible(scope, *_LIST_COLUMNS, Ticket.account).where(Ticket.id == parsed).first()
    if row is None:
        raise NotFound()
    return row


async def messages(ticket_id: UUID) -> list[dict[str, Any]]:
    """A ticket's thread, oldest first. Staff appear as the support team, not by name."""
    return await TicketMessage.select(
        TicketMessage.id, TicketMessage.body, TicketMessage.from_staff, TicketMessage.created_at,
        TicketMessage.author.as_alias("author_id"),
        TicketMessage.author.email.as_alias("author_email"),
    ).where(TicketMessage.ticket == ticket_id).order_by(TicketMessage.created_at).order_by(
        TicketMessage.id)


async def ticket(scope: Scope, ticket_id: object) -> dict[str, Any]:
    """One ticket the person may see, with its thread (NotFound otherwise)."""
    row = await _ticket_row(scope, ticket_id)
    return {**row, "messages": await messages(row["id"])}


async def reply(scope: Scope, ticket_id: object, raw_message: str, client: Client) -> None:
    """The person's reply: the ticket waits for support again (a closed one reopens)."""
    row = await _ticket_row(scope, ticket_id)
    body = clean_message(raw_message)
    async with ENGINE.transaction():
        await TicketMessage.insert(TicketMessage(
            ticket=row["id"], author=scope.identity_id, from_staff=False, body=body))
        await tenancy.update(Ticket, scope, {Ticket.status: "open",
                                             Ticket.updated_at: datetime.now(UTC)}
                             ).where(Ticket.id == row["id"])
        await audit.record("support:ticket:reply", client=client, identity_id=scope.identity_id,
                           account_id=row["account"], ticket_id=row["id"])


async def close(scope: Scope, ticket_id: object, client: Client) -> None:
    row = await _ticket_row(scope, ticket_id)
    if row["status"] == "closed":
        raise TicketClosed()
    async with ENGINE.transaction():
        await tenancy.update(Ticket, scope, {Ticket.status: "closed",
                                             Ticket.updated_at: datetime.now(UTC)}
                             ).where(Ticket.id == row["id"])
        await audit.record("support:ticket:close", client=client, identity_id=scope.identity_id,
                           account_id=row["account"], ticket_id=row["id"])


async def language_of(identity_id: UUID | None) -> str:
    if identity_id is None:
        return "pl"
    row = await Profile.select(Profile.language).where(Profile.identity == identity_id).first()
    return (row or {}).get("language") or "pl"


async def email_of(identity_id: UUID | None) -> str | None:
    if identity_id is None:
        return None
    row = await Identity.select(Identity.email).where(Identity.id == identity_id).first()
    return row["email"] if row else None
