"""The back office (/staff), for support staff only: find an ID by email, see its accounts and
memberships, resend its verification link, delete it on request, and answer tickets. The
registration of applications (/staff/clients) is its own controller, linked from here."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from portal.security.permissions import Permission
from portal.services import staff, support
from portal.services.errors import DomainError, NotFound
from portal.views.forms import INVALID, client_of, field_errors, form_values
from portal.views.rendering import is_htmx, redirect, render, scope_of, settings_of
from portal.web.guards import requires_permission


def refuse(error: DomainError) -> None:
    if isinstance(error, NotFound):
        raise NotFoundException() from error
    if isinstance(error, staff.StaffOnly):
        raise PermissionDeniedException() from error


class StaffController(Controller):
    path = "/staff"
    guards = [requires_permission]
    opt = {"permission": Permission.STAFF}

    @get("/")
    async def index(self, request: Request, q: FromQuery[str | None] = None) -> Template:
        found = await staff.find(scope_of(request), q, client_of(request))
        return render(request, "staff.html", {
            "title": "Back office",
            "query": staff.clean_query(q, limit=320),
            "found": found,
            "htmx": is_htmx(request),
        }, partial="partials/staff_identity_results.html")

    async def _identity(self, request: Request, identity_id: str, *, sent: bool = False,
                        errors: dict[str, str] | None = None, status: int = 200) -> Template:
        try:
            card = await staff.identity_card(scope_of(request), identity_id, client_of(request))
        except DomainError as error:
            refuse(error)
            raise
        return render(request, "staff_identity.html", {
            "title": "Konto ID", "card": card, "sent": sent, "errors": errors or {},
            "htmx": is_htmx(request),
        }, partial="partials/staff_identity_card.html", status=status)

    @get("/identities/{identity_id:str}")
    async def identity(self, request: Request, identity_id: FromPath[str]) -> Template:
        return await self._identity(request, identity_id)

    @post("/identities/{identity_id:str}/verification")
    async def resend_verification(self, request: Request, identity_id: FromPath[str]
                                  ) -> Response:
        try:
            await staff.resend_verification(settings_of(request), scope_of(request), identity_id,
                                            client_of(request))
        except (NotFound, staff.StaffOnly) as error:
            refuse(error)
            raise
        except DomainError as error:
            return await self._identity(request, identity_id, errors=field_errors(error),
                                        status=INVALID)
        if is_htmx(request):
            return await self._identity(request, identity_id, sent=True)
        return redirect(request, f"/staff/identities/{identity_id}",
                        flash="Wysłano ponownie link weryfikacyjny.")

    async def _delete_page(self, request: Request, identity_id: str, *,
                           values: dict[str, str] | None = None,
                           errors: dict[str, str] | None = None, status: int = 200
                           ) -> Template:
        try:
            card = await staff.identity_card(scope_of(request), identity_id, client_of(request))
        except DomainError as error:
            refuse(error)
            raise
        return render(request, "staff_delete.html", {
            "title": "Usuń Konto ID", "card": card, "values": values or {},
            "errors": errors or {}, "htmx": is_htmx(request),
        }, partial="partials/staff_delete_form.html", status=status)

    @get("/identities/{identity_id:str}/delete")
    async def confirm_delete(self, request: Request, identity_id: FromPath[str]) -> Template:
        return await self._delete_page(request, identity_id)

    @post("/identities/{identity_id:str}/delete")
    async def delete(self, request: Request, identity_id: FromPath[str]) -> Response:
        values = await form_values(request, "confirm_email", "reason")
        try:
            await staff.delete_identity(settings_of(request), scope_of(request), identity_id,
                                        values["confirm_email"], values["reason"],
                                        client_of(request))
        except (NotFound, staff.StaffOnly) as error:
            refuse(error)
            raise
        except DomainError as error:
            return await self._delete_page(request, identity_id, values=values,
                                           errors=field_errors(error), status=INVALID)
        return redirect(request, "/staff", flash="Usunięto Konto ID.")

    @get("/tickets")
    async def tickets(self, request: Request, status: FromQuery[str | None] = None) -> Template:
        chosen = status if status == "all" else (support.parse_status(status) or "open")
        return render(request, "staff_tickets.html", {
            "title": "Zgłoszenia klientów",
            "tickets": await staff.ticket_queue(scope_of(request), chosen),
            "status": chosen,
            "statuses": support.STATUSES,
            "htmx": is_htmx(request),
        }, partial="partials/staff_ticket_list.html")

    async def _ticket(self, request: Request, ticket_id: str, *,
                      errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                      sent: bool = False, status: int = 200) -> Template:
        try:
            found = await staff.ticket(scope_of(request), ticket_id, client_of(request))
        except DomainError as error:
            refuse(error)
            raise
        return render(request, "ticket.html", {
            "title": "Zgłoszenie", "title_detail": found["subject"], "ticket": found,
            "errors": errors or {},
            "values": values or {}, "sent": sent, "htmx": is_htmx(request),
            "base": "/staff/tickets", "staff_view": True,
        }, partial="partials/ticket_thread.html", status=status)

    @get("/tickets/{ticket_id:str}")
    async def ticket(self, request: Request, ticket_id: FromPath[str]) -> Template:
        return await self._ticket(request, ticket_id)

    @post("/tickets/{ticket_id:str}")
    async def answer(self, request: Request, ticket_id: FromPath[str]) -> Response:
        values = await form_values(request, "message")
        try:
            await staff.answer(settings_of(request), scope_of(request), ticket_id,
                               values["message"], client_of(request))
        except (NotFound, staff.StaffOnly) as error:
            refuse(error)
            raise
        except DomainError as error:
            return await self._ticket(request, ticket_id, errors=field_errors(error),
                                      values=values, status=INVALID)
        if is_htmx(request):
            return await self._ticket(request, ticket_id, sent=True)
        return redirect(request, f"/staff/tickets/{ticket_id}", flash="Wysłano odpowiedź.")

    @post("/tickets/{ticket_id:str}/close")
    async def close(self, request: Request, ticket_id: FromPath[str]) -> Response:
        try:
            await staff.close_ticket(scope_of(request), ticket_id, client_of(request))
        except (NotFound, staff.StaffOnly) as error:
            refuse(error)
            raise
        except DomainError as error:
            return await self._ticket(request, ticket_id, errors=field_errors(error),
                                      status=INVALID)
        return redirect(request, f"/staff/tickets/{ticket_id}", flash="Zamknięto zgłoszenie.")
