"""Accounting offices: the office's screen (/office/clients: ask a client for access, assign
its people, end) and the client's (/account/offices: approve, refuse, end). Every form works
as a plain POST with a redirect, and with htmx (a refused form comes back as its fragment)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Template

from portal.security.permissions import Permission
from portal.services import offices
from portal.services.errors import DomainError, NotFound
from portal.views.forms import INVALID, client_of, field_errors
from portal.views.rendering import is_htmx, redirect, render, scope_of, settings_of
from portal.web.guards import requires_permission

OFFICE = {"permission": Permission.OFFICE_CLIENTS_MANAGE}
CLIENT = {"permission": Permission.OFFICES_MANAGE}

def _refuse(error: DomainError) -> None:
    if isinstance(error, NotFound):
        raise NotFoundException() from error
    if isinstance(error, offices.NotAllowed):
        raise PermissionDeniedException(error.message) from error


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    values: dict[str, Any] = {}
    for name in ("account_id", "owner_email", "level", "ends_on", "membership_id"):
        value = form.get(name, "")
        values[name] = value if isinstance(value, str) else ""
    values["company_ids"] = [v for v in form.getall("company_ids", []) if isinstance(v, str)]
    return values


class OfficeClientsController(Controller):
    """The office's clients: requests, delegations, and which of its people work on which."""

    path = "/office/clients"
    guards = [requires_permission]

    async def _page(self, request: Request, *, values: dict[str, Any] | None = None,
                    errors: dict[str, str] | None = None, assigning: Any = None,
                    assign_values: dict[str, Any] | None = None,
                    assign_errors: dict[str, str] | None = None,
                    partial: str = "partials/office_clients.html", status: int = 200,
                    extra: dict[str, Any] | None = None) -> Template:
        scope = scope_of(request)
        try:
            board = await offices.office_board(scope)
        except offices.NotAnOffice as error:
            return render(request, "office_clients.html",
                          {"title": "Klienci biura", "not_office": error.message,
                           "htmx": is_htmx(request)},
                          partial="partials/office_clients.html", status=403)
        except DomainError as error:
            _refuse(error)
            raise
        return render(
            request,
            "office_clients.html",
            {
                "title": "Klienci biura",
                "board": board,
                "values": values or {"level": "view", "company_ids": []},
                "errors": errors or {},
                "assigning": assigning,
                "assign_values": assign_values or {},
                "assign_errors": assign_errors or {},
                "levels": offices.LEVELS,
                "htmx": is_htmx(request),
                **(extra or {}),
            },
            partial=partial,
            status=status,
        )

    @get("/", opt=OFFICE)
    async def index(self, request: Request) -> Template:
        return await self._page(request)

    @post("/request", opt=OFFICE)
    async def ask(self, request: Request) -> Response:
        values = await _form(request)
        try:
            await offices.request_access(settings_of(request), scope_of(request), values,
                                         client_of(request))
        except (NotFound, offices.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            kept = {**values, "company_ids": "\n".join(values["company_ids"])}
            return await self._page(request, values=kept, errors=field_errors(error),
                                    partial="partials/office_request_form.html",
                                    status=INVALID)
        # The same answer whether an account matched or not (no enumeration).
        return redirect(request, "/office/clients", flash=(
            "Jeśli takie konto istnieje i dane się zgadzają, jego właściciele i administratorzy "
            "dostali prośbę o dostęp."))

    @post("/{delegation_id:str}/assign", opt=OFFICE)
    async def assign(self, request: Request, delegation_id: FromPath[str]) -> Response:
        values = await _form(request)
        try:
            await offices.assign(scope_of(request), delegation_id, values, client_of(request))
        except (NotFound, offices.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            board = await offices.office_board(scope_of(request))
            delegation = next((d for d in board.active if str(d.id) == delegation_id), None)
            if delegation is None:  # ended meanwhile: the page says so
                return redirect(request, "/office/clients", flash=error.message)
            return await self._page(request, assigning=delegation_id, assign_values=values,
                                    assign_errors=field_errors(error), status=INVALID,
                                    partial="partials/office_assign_form.html",
                                    extra={"delegation": delegation})
        return redirect(request, "/office/clients", flash="Zapisano przydział firm.")

    @post("/assignments/{assignment_id:str}/remove", opt=OFFICE)
    async def unassign(self, request: Request, assignment_id: FromPath[str]) -> Response:
        try:
            await offices.unassign(scope_of(request), assignment_id, client_of(request))
        except DomainError as error:
            _refuse(error)
            raise
        return redirect(request, "/office/clients", flash="Odebrano dostęp do firmy.")

    @post("/{delegation_id:str}/end", opt=OFFICE)
    async def end(self, request: Request, delegation_id: FromPath[str]) -> Response:
        try:
            await offices.end(scope_of(request), delegation_id, client_of(request),
                              side="office")
        except (NotFound, offices.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            return redirect(request, "/office/clients", flash=error.message)
        return redirect(request, "/office/clients", flash="Zakończono dostęp do konta klienta.")


class ClientOfficesController(Controller):
    """The client's side: offices that ask for or have access, approve, refuse, end."""

    path = "/account/offices"
    guards = [requires_permission]

    async def _page(self, request: Request, *, approving: str | None = None,
                    values: dict[str, Any] | None = None,
                    errors: dict[str, str] | None = None, status: int = 200,
                    partial: str = "partials/client_offices.html",
                    extra: dict[str, Any] | None = None) -> Template:
        try:
            board = await offices.client_board(scope_of(request))
        except DomainError as error:
            _refuse(error)
            raise
        return render(
            request,
            "account_offices.html",
            {
                "title": "Dostęp biura rachunkowego",
                "board": board,
                "approving": approving,
                "values": values or {},
                "errors": errors or {},
                "levels": offices.LEVELS,
                "htmx": is_htmx(request),
                **(extra or {}),
            },
            partial=partial,
            status=status,
        )

    @get("/", opt=CLIENT)
    async def index(self, request: Request) -> Template:
        return await self._page(request)

    @post("/{delegation_id:str}/approve", opt=CLIENT)
    async def approve(self, request: Request, delegation_id: FromPath[str]) -> Response:
        values = await _form(request)
        try:
            await offices.approve(scope_of(request), delegation_id, values, client_of(request))
        except (NotFound, offices.NotAllowed) as error:
            _refuse(error)
            raise
        except offices.NotPending as error:
            return redirect(request, "/account/offices", flash=error.message)
        except DomainError as error:
            board = await offices.client_board(scope_of(request))
            pending = next((d for d in board.pending if str(d.id) == delegation_id), None)
            if pending is None:
                return redirect(request, "/account/offices", flash=error.message)
            return await self._page(request, approving=delegation_id, values=values,
                                    errors=field_errors(error), status=INVALID,
                                    partial="partials/client_approve_form.html",
                                    extra={"delegation": pending})
        return redirect(request, "/account/offices", flash="Zgodzono się na dostęp biura.")

    @post("/{delegation_id:str}/refuse", opt=CLIENT)
    async def refuse(self, request: Request, delegation_id: FromPath[str]) -> Response:
        try:
            await offices.refuse(scope_of(request), delegation_id, client_of(request))
        except (NotFound, offices.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            return redirect(request, "/account/offices", flash=error.message)
        return redirect(request, "/account/offices", flash="Odmówiono dostępu biuru.")

    @post("/{delegation_id:str}/end", opt=CLIENT)
    async def end(self, request: Request, delegation_id: FromPath[str]) -> Response:
        try:
            await offices.end(scope_of(request), delegation_id, client_of(request),
                              side="client")
        except (NotFound, offices.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            return redirect(request, "/account/offices", flash=error.message)
        return redirect(request, "/account/offices", flash="Zakończono dostęp biura.")
