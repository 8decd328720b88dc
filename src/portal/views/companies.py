"""The companies of the current account: the list (search as you type, sort, pages), a
company's page, adding and editing (inline with htmx, plain pages without JavaScript)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from portal.security.permissions import Permission
from portal.services import companies
from portal.services.errors import DomainError, NotFound
from portal.views.account import form_context, refuse
from portal.views.forms import INVALID, client_of, field_errors, form_values
from portal.views.rendering import is_htmx, redirect, render, scope_of
from portal.web.guards import requires_permission

VIEW = {"permission": Permission.COMPANY_VIEW}
EDIT = {"permission": Permission.COMPANY_EDIT}


async def _company(request: Request, company_id: str) -> dict[str, Any]:
    try:
        return await companies.get(scope_of(request), company_id)
    except DomainError as error:
        refuse(error)
        raise


async def _company_page(
    request: Request,
    company: dict[str, Any],
    *,
    editing: bool = False,
    saved: bool = False,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    scope = scope_of(request)
    return render(
        request,
        "company.html",
        form_context(
            request,
            title="Firma",
            title_detail=company["name"],
            company=company,
            can_edit=await companies.can_edit(scope, company["id"]),
            editing=editing,
            saved=saved,
            values=values if values is not None else companies.form_values(company),
            errors=errors or {},
        ),
        partial="partials/company_form.html" if editing else "partials/company_card.html",
        status=status,
    )


def _new_page(request: Request, values: dict[str, Any], errors: dict[str, str],
              status: int = 200, duplicate: dict[str, Any] | None = None) -> Template:
    return render(
        request,
        "company_new.html",
        form_context(request, title="Dodaj firmę", values=values, errors=errors, company=None,
                     duplicate=duplicate),
        partial="partials/company_form.html",
        status=status,
    )


class CompaniesController(Controller):
    path = "/companies"
    guards = [requires_permission]

    @get("/", opt=VIEW)
    async def index(
        self,
        request: Request,
        q: FromQuery[str | None] = None,
        sort: FromQuery[str | None] = None,
        page: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
    ) -> Template:
        scope = scope_of(request)
        listing = await companies.list_page(scope, q, sort, page, after, before)
        return render(
            request,
            "companies.html",
            {
                "title": "Firmy",
                "listing": listing,
                "sorts": companies.SORTS,
                "can_edit": scope.can(Permission.COMPANY_EDIT),
                "htmx": is_htmx(request),
            },
            partial="partials/company_list.html",
        )

    @get("/new", opt=EDIT)
    async def new_form(self, request: Request) -> Template:
        return _new_page(request, {"country": "PL"}, {})

    @post("/new", opt=EDIT)
    async def create(self, request: Request) -> Response:
        values = await form_values(request, *companies.FIELDS, "confirm_duplicate")
        try:
            row = await companies.create(scope_of(request), values, client_of(request),
                                         confirmed=values.pop("confirm_duplicate"))
        except (NotFound, companies.NotAllowed) as error:
            refuse(error)
            raise
        except companies.PossibleDuplicate as duplicate:
            # Asked, not refused: the same form again with the company it resembles and a
            # button that adds this one anyway (it carries the resembled company's id).
            return _new_page(request, values, {}, INVALID, duplicate=duplicate.existing)
        except DomainError as error:
            return _new_page(request, values, field_errors(error), INVALID)
        return redirect(request, f"/companies/{row['id']}", flash="Dodano firmę.")

    @get("/{company_id:str}", opt=VIEW)
    async def show(self, request: Request, company_id: FromPath[str]) -> Template:
        return await _company_page(request, await _company(request, company_id))

    @get("/{company_id:str}/edit", opt=VIEW)
    async def edit(self, request: Request, company_id: FromPath[str]) -> Template:
        company = await _company(request, company_id)
        if not await companies.can_edit(scope_of(request), company["id"]):
            raise PermissionDeniedException()
        return await _company_page(request, company, editing=True)

    @post("/{company_id:str}", opt=VIEW)
    async def save(self, request: Request, company_id: FromPath[str]) -> Response:
        scope = scope_of(request)
        values = await form_values(request, *companies.FIELDS)
        try:
            company = await companies.update(scope, company_id, values, client_of(request))
        except (NotFound, companies.NotAllowed) as error:
            refuse(error)
            raise
        except DomainError as error:
            stored = await _company(request, company_id)
            return await _company_page(request, stored, editing=True, values=values,
                                       errors=field_errors(error), status=INVALID)
        if is_htmx(request):
            return await _company_page(request, company, saved=True)
        return redirect(request, f"/companies/{company['id']}", flash="Zapisano dane firmy.")
