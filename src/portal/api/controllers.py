"""API v1 endpoints: the key's account, its companies, people and audit log."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from portal.api.auth import principal_of
from portal.api.errors import RESPONSES
from portal.api.schemas import (
    AccountOut,
    AuditEventOut,
    AuditPage,
    CompanyAccessOut,
    CompanyIn,
    CompanyOut,
    CompanyPage,
    CompanyPatch,
    DelegatedCompanyOut,
    DelegationOut,
    DelegationsOut,
    PeoplePage,
    PersonDetail,
    PersonOut,
)
from portal.services import accounts, audit, audit_log, companies, offices, people, tenancy
from portal.services.errors import NotFound
from portal.services.scope import Client

ERRORS = RESPONSES
WRITE = {"api_scope": "write"}

Page = Annotated[int, Parameter(ge=1, le=1_000_000, description="Page number, from 1")]
Query = Annotated[str, Parameter(max_length=100, description="Search by name or NIP")]
After = Annotated[str, Parameter(max_length=2000, description=(
    "The previous answer's next_cursor (send page as its page + 1): the page after it, read "
    "by key, as fast at page 800 as at page 2. A cursor that does not fit (tampered, old, "
    "another list's) is ignored and the page is counted by number"))]


def _client(request: Request) -> Client:
    key_id = principal_of(request).key_id
    agent = request.headers.get("user-agent", "")[:400]
    return Client(ip=request.client.host if request.client else "",
                  user_agent=f"api-key:{key_id} {agent}".strip())


def _company(row: dict) -> CompanyOut:
    return CompanyOut(id=row["id"], key=row["key"], name=row["name"], nip=row["nip"] or "",
                      is_main=row["is_main"], street=row.get("street") or "",
                      postal_code=row.get("postal_code") or "", city=row.get("city") or "",
                      country=row.get("country") or "")


class AccountApi(Controller):
    path = "/account"
    tags = ["account"]

    @get("/", responses=ERRORS, summary="The key's account card")
    async def card(self, request: Request) -> AccountOut:
        row = await accounts.card(principal_of(request).scope)
        return AccountOut(id=row["public_id"], name=row["name"], nip=row["nip"] or "",
                          is_accounting_office=row["is_accounting_office"],
                          street=row["street"] or "", postal_code=row["postal_code"] or "",
                          city=row["city"] or "", country=row["country"] or "",
                          company_count=row["company_count"], user_count=row["user_count"])


class CompaniesApi(Controller):
    path = "/companies"
    tags = ["companies"]

    @get("/", responses=ERRORS, summary="The account's companies, a page at a time")
    async def list_companies(self, request: Request, page: Page = 1, q: Query = "",
                             after: After = "") -> CompanyPage:
        result = await companies.list_page(principal_of(request).scope, q, None, page, after)
        return CompanyPage(items=[_company(r) for r in await _full(request, result.rows)],
                           total=result.total, page=result.page, pages=result.pages,
                           per_page=result.per_page, next_cursor=result.next_cursor,
                           more=result.more)

    @get("/{company_id:uuid}", responses=ERRORS, summary="One company")
    async def get_company(self, request: Request, company_id: FromPath[UUID]) -> CompanyOut:
        return _company(await companies.get(principal_of(request).scope, company_id))

    @post("/", responses=ERRORS, opt=WRITE, status_code=201, summary="Add a company")
    async def create_company(self, request: Request, data: JSONBody[CompanyIn]) -> CompanyOut:
        scope = principal_of(request).scope
        if scope.company_ids is not None:
            raise companies.NotAllowed("A key limited to some companies cannot add companies.")
        created = await companies.create(scope, msgspec.structs.asdict(data), _client(request))
        await audit.record("api:company:create", client=_client(request),
                           identity_id=scope.identity_id, account_id=scope.account.id,
                           key_id=scope.api_key_id, company_id=created["id"])
        return _company(await companies.get(scope, created["id"]))

    @patch("/{company_id:uuid}", responses=ERRORS, opt=WRITE, summary="Change a company")
    async def update_company(self, request: Request, company_id: FromPath[UUID],
                             data: JSONBody[CompanyPatch]) -> CompanyOut:
        scope = principal_of(request).scope
        before = await companies.get(scope, company_id)
        values = {f: before.get(f) or "" for f in companies.FIELDS}
        values.update({k: v for k, v in msgspec.structs.asdict(data).items() if v is not None})
        await companies.update(scope, company_id, values, _client(request))
        await audit.record("api:company:update", client=_client(request),
                           identity_id=scope.identity_id, account_id=scope.account.id,
                           key_id=scope.api_key_id, company_id=company_id)
        return _company(await companies.get(scope, company_id))


async def _full(request: Request, rows: list[dict]) -> list[dict]:
    """The list shows a few columns; the API gives whole companies (one more query)."""
    from portal.services import tenancy
    from portal.tables import Company

    if not rows:
        return []
    full = await tenancy.select(Company, principal_of(request).scope).where(
        Company.id.is_in([r["id"] for r in rows]))
    by_id = {r["id"]: r for r in full}
    return [by_id[r["id"]] for r in rows if r["id"] in by_id]


class PeopleApi(Controller):
    path = "/people"
    tags = ["people"]

    @get("/", responses=ERRORS, summary="The account's people, a page at a time")
    async def list_people(self, request: Request, page: Page = 1, q: Query = "",
                          after: After = "") -> PeoplePage:
        result = await people.list_page(principal_of(request).scope, q, None, page,
                                        after=after, members_only=True)
        items = [PersonOut(id=r["id"], email=r["email"], name=r["name"], role=r["role"],
                           company_count=r["company_count"])
                 for r in result.rows]
        return PeoplePage(items=items, total=result.total, page=result.page,
                          pages=result.pages, per_page=result.per_page,
                          next_cursor=result.next_cursor)

    @get("/{membership_id:uuid}", responses=ERRORS, summary="One person and their access")
    async def get_person(self, request: Request, membership_id: FromPath[UUID]) -> PersonDetail:
        from portal.tables import CompanyAccess, Membership

        scope = principal_of(request).scope
        rows = await tenancy.raw(Membership, scope, _PERSON, membership_id)
        if not rows:
            raise NotFound()
        person = rows[0]
        every = person["role"] in tenancy.ALL_COMPANIES_ROLES
        levels = [] if every else await CompanyAccess.select(
            CompanyAccess.company, CompanyAccess.level).where(
            CompanyAccess.membership == membership_id)
        return PersonDetail(id=person["id"], email=person["email"], name=person["name"],
                            role=person["role"], all_companies=every,
                            companies=[CompanyAccessOut(company_id=r["company"], level=r["level"])
                                       for r in levels])


_PERSON = """
SELECT m.id, m.role, i.email,
       btrim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')) AS name
FROM membership m JOIN identity i ON i.id = m.identity
LEFT JOIN profile p ON p.identity = m.identity
WHERE m.account = {} AND m.id = {}
"""


class AuditApi(Controller):
    path = "/audit"
    tags = ["audit"]

    @get("/", responses=ERRORS, summary="The account's audit log, newest first")
    async def events(self, request: Request, page: Page = 1, after: After = "") -> AuditPage:
        result = await audit_log.page(principal_of(request).scope, audit_log.Filters(), page,
                                      after)
        return AuditPage(
            items=[AuditEventOut(id=r["id"], tag=r["tag"], at=r["created_at"],
                                 actor_id=r["identity_id"], actor_email=r.get("actor_email"),
                                 ip=r["ip"], data={k: str(v) for k, v in r["data"].items()})
                   for r in result.rows],
            total=result.total, page=result.page, pages=result.pages, per_page=result.per_page,
            more=result.more, next_cursor=result.next_cursor)


def _delegation(view: offices.DelegationView) -> DelegationOut:
    people_emails: list[str] = []
    for assignment in view.assignments:
        if assignment.email not in people_emails:
            people_emails.append(assignment.email)
    return DelegationOut(
        id=view.id, status=view.status, account_id=view.other_public_id,
        account_name=view.other_name, level=view.level, ends_at=view.ends_at,
        companies=[DelegatedCompanyOut(id=c.id, key=c.key, name=c.name, level=c.level)
                   for c in view.companies],
        people=people_emails,
    )


class DelegationsApi(Controller):
    path = "/delegations"
    tags = ["accounting offices"]

    @get("/", responses=ERRORS, summary=(
        "Accounting offices: the key's account's client delegations (as an office) and the "
        "offices with access to it (as a client)"))
    async def list_delegations(self, request: Request) -> DelegationsOut:
        found = await offices.for_api(principal_of(request).scope)
        return DelegationsOut(clients=[_delegation(v) for v in found["clients"]],
                              offices=[_delegation(v) for v in found["offices"]])
