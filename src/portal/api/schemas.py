"""What the API accepts and answers (msgspec structs: validated, and documented in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

Short = Annotated[str, msgspec.Meta(max_length=200)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Tiny = Annotated[str, msgspec.Meta(max_length=20)]
City = Annotated[str, msgspec.Meta(max_length=100)]
Country = Annotated[str, msgspec.Meta(max_length=2)]
#: A list's way to its next page (issue 20): read by key, not by OFFSET.
NextCursor = Annotated[str, msgspec.Meta(description=(
    "Give it as after (with page + 1) for the next page, read by key; empty on the last page"))]


class ErrorBody(msgspec.Struct):
    status: int
    code: str
    message: str
    #: field → message for each input error; empty when the error is not about the input
    fields: dict[str, str] = msgspec.field(default_factory=dict)


class Error(msgspec.Struct):
    """Every error of the API has this shape, whatever its status (api/errors.py)."""

    error: ErrorBody


class AccountOut(msgspec.Struct):
    id: str
    name: str
    nip: str
    is_accounting_office: bool
    street: str
    postal_code: str
    city: str
    country: str
    company_count: int
    user_count: int


class CompanyOut(msgspec.Struct):
    id: UUID
    key: str
    name: str
    nip: str
    is_main: bool
    street: str
    postal_code: str
    city: str
    country: str


class CompanyPage(msgspec.Struct):
    items: list[CompanyOut]
    total: Annotated[int, msgspec.Meta(description=(
        "Matching companies; a search (q) counts up to 1,000 (see more)"))]
    page: int
    pages: int
    per_page: int
    next_cursor: NextCursor = ""
    more: Annotated[bool, msgspec.Meta(description=(
        "More companies match the search than total (the count stopped at 1,000)"))] = False


class CompanyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    nip: Tiny = ""
    street: Short = ""
    postal_code: Tiny = ""
    city: City = ""
    country: Country = "PL"


class CompanyPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    nip: Tiny | None = None
    street: Short | None = None
    postal_code: Tiny | None = None
    city: City | None = None
    country: Country | None = None


class CompanyAccessOut(msgspec.Struct):
    company_id: UUID
    level: str


class PersonOut(msgspec.Struct):
    """A member of the account (``id`` is the membership's id)."""

    id: UUID
    email: str
    name: str
    role: str
    company_count: int


class PersonDetail(msgspec.Struct):
    id: UUID
    email: str
    name: str
    role: str
    all_companies: bool
    companies: list[CompanyAccessOut]


class PeoplePage(msgspec.Struct):
    items: list[PersonOut]
    total: int
    page: int
    pages: int
    per_page: int
    next_cursor: NextCursor = ""


class AuditEventOut(msgspec.Struct):
    id: UUID
    tag: str
    at: datetime
    actor_id: UUID | None
    actor_email: str | None
    ip: str
    data: dict[str, str]


class AuditPage(msgspec.Struct):
    items: list[AuditEventOut]
    total: Annotated[int, msgspec.Meta(description=(
        "Matching events, counted up to 10,000 (see more); the pages cover the newest"))]
    page: int
    pages: int
    per_page: int
    more: Annotated[bool, msgspec.Meta(description=(
        "More events than total exist (older than the newest 10,000)"))] = False
    next_cursor: NextCursor = ""


class DelegatedCompanyOut(msgspec.Struct):
    """A company of the client in a delegation, with the client's ceiling for it."""

    id: UUID
    key: str
    name: str
    level: str


class DelegationOut(msgspec.Struct):
    """An accounting office's delegation, seen from one side. ``account_id`` and
    ``account_name`` are the other account's (the client for an office, the office for a
    client); an office sees the client only once it approved (``""`` while pending)."""

    id: UUID
    status: str  # pending | active | ended | refused
    account_id: str
    account_name: str
    level: str
    ends_at: datetime | None
    companies: list[DelegatedCompanyOut]
    #: The office's people assigned to it (their emails), each once.
    people: list[str]


class DelegationsOut(msgspec.Struct):
    #: As an accounting office: the client delegations asked for or given.
    clients: list[DelegationOut]
    #: As a client: the offices that asked for or have access.
    offices: list[DelegationOut]
