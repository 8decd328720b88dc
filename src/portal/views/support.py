"""The support centre (/support): the help sections and "Moje zgłoszenia" — creating a ticket,
the list with statuses, a ticket's thread with replies, closing it."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from portal.security.permissions import Permission
from portal.services import catalogue, support
from portal.services.errors import DomainError, NotFound
from portal.views.apps import open_form_headers
from portal.views.forms import (
    INVALID,
    client_of,
    field_errors,
    form_values,
    searches_companies,
)
from portal.views.rendering import is_htmx, language_of, redirect, render, scope_of, settings_of
from portal.web.guards import requires_permission

#: The four help sections of DESIGN.md, in order: (anchor, catalogue slug); their headings
#: are in the template.
HELP_SECTIONS = (
    ("docs", "dokumentacja"),
    ("help", "centrum-pomocy"),
    ("community", "spolecznosc"),
    ("voice", "glos-klienta"),
)


def _not_found(error: DomainError) -> None:
    if isinstance(error, NotFound):
        raise NotFoundException() from error


async def _help_sections(request: Request) -> list[dict[str, Any]]:
    found = {row["slug"]: row for row in await catalogue.applications(
        scope_of(request), "knowledge", language=language_of(request))}
    return [{"anchor": anchor, "app": found.get(slug)} for anchor, slug in HELP_SECTIONS]


async def support_page(request: Request, *, status_filter: object = None,
                       values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                       status: int = 200, partial: str = "partials/ticket_list.html") -> Template:
    scope = scope_of(request)
    chosen = support.parse_status(status_filter)
    # Help and knowledge need no account; tickets belong to one.
    in_account = scope.account is not None
    return render(request, "support.html", {
        "title": "Centrum wsparcia",
        "sections": await _help_sections(request),
        "in_account": in_account,
        "tickets": await support.tickets(scope, chosen) if in_account else [],
        "status": chosen,
        "statuses": support.STATUSES,
        "categories": support.CATEGORIES,
        "picker": await support.companies_for_form(
            scope, (values or {}).get("company_q"), (values or {}).get("company"))
        if in_account else None,
        "sees_every_ticket": support.sees_every_ticket(scope),
        "values": values or {"category": "technical"},
        "errors": errors or {},
        "htmx": is_htmx(request),
    }, partial=partial, status=status, headers=await open_form_headers())


async def thread_page(request: Request, ticket_id: str, *, errors: dict[str, str] | None = None,
                      values: dict[str, Any] | None = None, sent: bool = False,
                      status: int = 200) -> Template:
    try:
        found = await support.ticket(scope_of(request), ticket_id)
    except DomainError as error:
        _not_found(error)
        raise
    return render(request, "ticket.html", {
        "title": "Zgłoszenie",
        "title_detail": found["subject"],
        "ticket": found,
        "errors": errors or {},
        "values": values or {},
        "sent": sent,
        "htmx": is_htmx(request),
        "base": "/support/tickets",
        "staff_view": False,
    }, partial="partials/ticket_thread.html", status=status)


class SupportController(Controller):
    path = "/support"
    guards = [requires_permission]
    opt = {"permission": Permission.SUPPORT_USE}

    @get("/", opt={"without_account": True})
    async def index(self, request: Request, status: FromQuery[str | None] = None) -> Template:
        return await support_page(request, status_filter=status)

    @post("/tickets")
    async def create(self, request: Request) -> Response:
        values = await form_values(request, *support.FIELDS, "company_q", "company_search",
                                   "company_default", "company_q_shown")
        if searches_companies(values):  # "Szukaj firmy": the form again, its list narrowed
            return await support_page(request, values=values,
                                      partial="partials/ticket_form.html")
        try:
            ticket_id = await support.create(settings_of(request), scope_of(request), values,
                                             client_of(request))
        except DomainError as error:
            _not_found(error)
            return await support_page(request, values=values, errors=field_errors(error),
                                      status=INVALID, partial="partials/ticket_form.html")
        return redirect(request, f"/support/tickets/{ticket_id}",
                        flash="Wysłano zgłoszenie. Odpowiemy najszybciej, jak to możliwe.")

    @get("/tickets/{ticket_id:str}")
    async def show(self, request: Request, ticket_id: FromPath[str]) -> Template:
        return await thread_page(request, ticket_id)

    @post("/tickets/{ticket_id:str}")
    async def reply(self, request: Request, ticket_id: FromPath[str]) -> Response:
        values = await form_values(request, "message")
        try:
            await support.reply(scope_of(request), ticket_id, values["message"],
                                client_of(request))
        except DomainError as error:
            _not_found(error)
            return await thread_page(request, ticket_id, errors=field_errors(error),
                                     values=values, status=INVALID)
        if is_htmx(request):
            return await thread_page(request, ticket_id, sent=True)
        return redirect(request, f"/support/tickets/{ticket_id}", flash="Wysłano odpowiedź.")

    @post("/tickets/{ticket_id:str}/close")
    async def close(self, request: Request, ticket_id: FromPath[str]) -> Response:
        try:
            await support.close(scope_of(request), ticket_id, client_of(request))
        except DomainError as error:
            _not_found(error)
            return await thread_page(request, ticket_id, errors=field_errors(error),
                                     status=INVALID)
        return redirect(request, f"/support/tickets/{ticket_id}",
                        flash="Zamknięto zgłoszenie.")
