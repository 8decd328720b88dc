"""The people of the current account (/users): the list (search as you type, sort, filters,
pages), adding a person by email, a person's page (role, the companies-by-levels matrix,
removal with re-authentication), invitations (resend, withdraw), leaving the account, and the
account's audit log with its CSV export. Also the invitation link (/invitations/{token}) and
accepting or declining invitations from the account switcher (/accounts/invitations/...)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Stream, Template

from portal.security.permissions import Permission
from portal.services import (
    audit_log,
    company_access,
    invitations,
    membership,
    membership_changes,
    people,
)
from portal.services.errors import DomainError, NotFound
from portal.views.account import refuse
from portal.views.auth import sign_in
from portal.views.flash import flash_cookie
from portal.views.forms import (
    INVALID,
    busy_at_the_form,
    client_of,
    field_errors,
    form_values,
    mfa_context,
    reauthenticated,
)
from portal.views.rendering import (
    VARY,
    is_htmx,
    redirect,
    render,
    safe_next,
    scope_of,
    settings_of,
)
from portal.web.guards import requires_identity, requires_permission

VIEW = {"permission": Permission.PEOPLE_VIEW}
MANAGE = {"permission": Permission.PEOPLE_MANAGE}
AUDIT = {"permission": Permission.AUDIT_VIEW}

LIST_PARAMS = ("q", "sort", "role", "status", "mfa", "page", "after", "before")
LEVEL_PREFIX = "level-"


def _refuse(error: DomainError) -> None:
    """404 for rows of other accounts (and odd ids), 403 for what the role may not do."""
    if isinstance(error, NotFound):
        raise NotFoundException() from error
    refuse(error)
    if isinstance(error, (membership.NotAllowed, audit_log.NotAllowed)):
        raise PermissionDeniedException() from error


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if isinstance(value, str) else None


async def _levels(request: Request) -> dict[str, str]:
    """The matrix's radio groups: ``level-<company id>`` → level (or "none")."""
    form = await request.form()
    levels: dict[str, str] = {}
    for key in form:
        if isinstance(key, str) and key.startswith(LEVEL_PREFIX):
            value = form.get(key)
            levels[key[len(LEVEL_PREFIX):]] = value if isinstance(value, str) else ""
    if setting_all(form):
        # "Set all shown to …" without JS: every company the matrix showed gets that level
        # (the service checks the level like any other).
        chosen = form.get("matrix_level")
        levels = dict.fromkeys(levels, chosen if isinstance(chosen, str) else "")
    return levels


def setting_all(form: Any) -> bool:
    """The matrix's "set all shown" button sent the form (not "save")."""
    return form.get("matrix_action") == "set_all"


async def _listing(request: Request, values: dict[str, str | None]) -> people.PeoplePage:
    return await people.list_page(
        scope_of(request), values.get("q"), values.get("sort"), values.get("page"),
        values.get("role"), values.get("status"), values.get("mfa"), values.get("after"),
        values.get("before"),
    )


def _list_context(request: Request, listing: people.PeoplePage, **extra: Any) -> dict[str, Any]:
    scope = scope_of(request)
    return {
        "title": "Użytkownicy",
        "listing": listing,
        "roles": membership.ROLES,
        "can_manage": membership.can_manage(scope),
        "can_audit": scope.can(Permission.AUDIT_VIEW),
        "htmx": is_htmx(request),
        **extra,
    }


def _listing_url(values: dict[str, str]) -> str:
    kept = {key: values[key] for key in LIST_PARAMS if values.get(key)}
    return "/users" + ("?" + urlencode(kept) if kept else "")


class UsersController(Controller):
    path = "/users"
    guards = [requires_permission]

    # --- the list ----------------------------------------------------------------------------

    @get("/", opt=VIEW)
    async def index(self, request: Request) -> Template:
        scope = scope_of(request)
        values = {name: _query(request, name) for name in LIST_PARAMS}
        try:
            listing = await _listing(request, values)
            # The fragment is the list alone; the page also says what the reader may do.
            mine = None if is_htmx(request) else await company_access.my_access(scope)
        except DomainError as error:
            _refuse(error)
            raise
        return render(request, "users.html", _list_context(request, listing, mine=mine),
                      partial="partials/people_list.html")

    # --- adding ------------------------------------------------------------------------------

    async def _add_form(self, request: Request, values: dict[str, Any], errors: dict[str, str],
                        levels: dict[str, str] | None = None, status: int = 200) -> Template:
        scope = scope_of(request)
        matrix = await company_access.access_page(scope, None)
        for row in matrix.rows:
            row["level"] = (levels or {}).get(str(row["id"]), membership.NO_ACCESS)
        return render(
            request, "user_new.html",
            {"title": "Dodaj osobę", "values": values, "errors": errors, "matrix": matrix,
             "roles": membership_changes.assignable_roles(scope), "htmx": is_htmx(request),
             **await mfa_context(request)},
            partial="partials/person_add_form.html", status=status,
        )

    @get("/new", opt=MANAGE)
    async def new_form(self, request: Request) -> Template:
        return await self._add_form(request, {"role": "member"}, {})

    @post("/new", opt=MANAGE)
    async def add(self, request: Request) -> Response:
        values = await form_values(request, "email", "role", "password", "code")
        levels = await _levels(request)
        if setting_all(await request.form()):
            # Only the matrix changed: the form again with the new choices, nothing sent yet.
            kept = {"email": values["email"], "role": values["role"]}
            return await self._add_form(request, kept, {}, levels, 200)
        try:
            scope = await reauthenticated(request, values)
            await membership_changes.add(settings_of(request), scope, values, levels,
                                         client_of(request))
        except (NotFound, membership.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            kept = {"email": values["email"], "role": values["role"]}
            return await self._add_form(request, kept, {**field_errors(error), "target": "add"},
                                        levels, INVALID)
        return redirect(request, "/users",
                        flash="Wysłaliśmy zaproszenie. Osoba dołączy do konta, gdy je przyjmie.")

    # --- invitations -------------------------------------------------------------------------

    async def _after_invitation(self, request: Request, values: dict[str, str],
                                done: str | None, error: str | None = None) -> Response:
        """The list again (htmx) with what happened in the live region; without JS, back to
        the same listing with a flash."""
        if not is_htmx(request):
            url = _listing_url(values)
            if done == "resent":
                return redirect(request, url, flash="Wysłaliśmy zaproszenie ponownie. "
                                "Poprzedni link już nie działa.")
            if done == "withdrawn":
                return redirect(request, url, flash="Wycofano zaproszenie.")
            return redirect(request, url, flash=error)
        listing = await _listing(request, values)
        return render(request, "users.html",
                      _list_context(request, listing, done=done, status_error=error),
                      partial="partials/people_list.html")

    @post("/invitations/{invitation_id:str}/resend", opt=MANAGE)
    async def resend(self, request: Request, invitation_id: FromPath[str]) -> Response:
        values = await form_values(request, *LIST_PARAMS)
        try:
            await invitations.resend(settings_of(request), scope_of(request), invitation_id,
                                     client_of(request))
        except (NotFound, membership.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            return await self._after_invitation(request, values, None, error.message)
        return await self._after_invitation(request, values, "resent")

    @post("/invitations/{invitation_id:str}/withdraw", opt=MANAGE)
    async def withdraw(self, request: Request, invitation_id: FromPath[str]) -> Response:
        values = await form_values(request, *LIST_PARAMS)
        try:
            await invitations.withdraw(scope_of(request), invitation_id, client_of(request))
        except DomainError as error:
            _refuse(error)
            raise
        return await self._after_invitation(request, values, "withdrawn")

    # --- leaving -----------------------------------------------------------------------------

    @get("/leave", opt=VIEW)
    async def leave_form(self, request: Request) -> Template:
        mine = await company_access.my_access(scope_of(request))
        return render(request, "users_leave.html",
                      {"title": "Opuść konto", "mine": mine, "errors": {}})

    @post("/leave", opt=VIEW)
    async def leave(self, request: Request) -> Response:
        scope = scope_of(request)
        try:
            await membership_changes.leave(scope, client_of(request))
        except NotFound as error:
            _refuse(error)
            raise
        except DomainError as error:
            mine = await company_access.my_access(scope)
            return render(request, "users_leave.html",
                          {"title": "Opuść konto", "mine": mine, "errors": field_errors(error)},
                          status=INVALID)
        return redirect(request, "/", flash="Opuściłeś konto firmy.")

    # --- the audit log -----------------------------------------------------------------------

    def _filters(self, request: Request) -> audit_log.Filters:
        return audit_log.parse_filters(_query(request, "who"), _query(request, "what"),
                                       _query(request, "from"), _query(request, "to"))

    @get("/audit", opt=AUDIT)
    async def audit(self, request: Request) -> Template:
        filters = self._filters(request)
        try:
            events = await audit_log.page(scope_of(request), filters, _query(request, "page"),
                                          _query(request, "after"))
        except DomainError as error:
            _refuse(error)
            raise
        return render(request, "users_audit.html",
                      {"title": "Dziennik zdarzeń konta", "events": events,
                       "families": audit_log.FAMILIES, "tags": audit_log.TAGS,
                       "htmx": is_htmx(request)},
                      partial="partials/audit_list.html")

    @get("/audit.csv", opt=AUDIT)
    async def audit_csv(self, request: Request) -> Stream:
        scope = scope_of(request)
        filters = self._filters(request)
        try:
            audit_log.require(scope)
        except DomainError as error:
            _refuse(error)
            raise
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        name = f"dziennik-{scope.account.public_id}-{stamp}.csv"
        return Stream(
            audit_log.export(scope, filters),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"',
                     "Cache-Control": "no-store", **VARY},
        )

    # --- one person --------------------------------------------------------------------------

    async def _person(self, request: Request, membership_id: str) -> dict[str, Any]:
        try:
            return await people.get(scope_of(request), membership_id)
        except DomainError as error:
            _refuse(error)
            raise

    async def _person_context(self, request: Request, person: dict[str, Any], *,
                              errors: dict[str, str] | None = None, saved: str | None = None,
                              matrix_query: str | None = None,
                              matrix_page: str | None = None,
                              matrix_cursors: tuple[str | None, str | None] = (None, None),
                              ) -> dict[str, Any]:
        scope = scope_of(request)
        matrix = None
        if not person["all_companies"]:
            matrix = await company_access.access_page(scope, person["id"], matrix_query,
                                                      matrix_page, *matrix_cursors)
        roles = membership_changes.assignable_roles(scope)
        return {
            "title": "Osoba",
            "title_detail": person.get("name") or person["email"],
            "person": person,
            "matrix": matrix,
            "roles": roles,
            "can_change_role": person["role"] in roles,
            "errors": errors or {},
            "saved": saved,
            "htmx": is_htmx(request),
            "policy": scope.account_mfa_policy,
            **await mfa_context(request),
        }

    @get("/{membership_id:str}", opt=MANAGE)
    async def show(self, request: Request, membership_id: FromPath[str]) -> Template:
        person = await self._person(request, membership_id)
        return render(request, "person.html", await self._person_context(request, person))

    @post("/{membership_id:str}/role", opt=MANAGE)
    async def change_role(self, request: Request, membership_id: FromPath[str]) -> Response:
        values = await form_values(request, "role", "password", "code")
        try:
            scope = await reauthenticated(request, values)
            await membership_changes.change_role(scope, membership_id, values["role"],
                                                 client_of(request))
        except (NotFound, membership.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            person = await self._person(request, membership_id)
            person["role_wanted"] = values["role"]
            errors = {**field_errors(error), "target": "role"}
            return render(request, "person.html",
                          await self._person_context(request, person, errors=errors),
                          partial="partials/person_panel.html", status=INVALID)
        person = await self._person(request, membership_id)
        if person["is_self"] and person["role"] == "member":
            # They no longer manage people: this page is not theirs any more.
            return redirect(request, "/users", flash="Zmieniono rolę.")
        if not is_htmx(request):
            return redirect(request, f"/users/{person['id']}", flash="Zmieniono rolę.")
        return render(request, "person.html",
                      await self._person_context(request, person, saved="role"),
                      partial="partials/person_panel.html")

    @get("/{membership_id:str}/access", opt=MANAGE)
    async def access(self, request: Request, membership_id: FromPath[str]) -> Template:
        person = await self._person(request, membership_id)
        return render(request, "person.html",
                      await self._person_context(request, person,
                                                 matrix_query=_query(request, "q"),
                                                 matrix_page=_query(request, "page"),
                                                 matrix_cursors=(_query(request, "after"),
                                                                 _query(request, "before"))),
                      partial="partials/person_access.html")

    @post("/{membership_id:str}/access", opt=MANAGE)
    async def save_access(self, request: Request, membership_id: FromPath[str]) -> Response:
        scope = scope_of(request)
        values = await form_values(request, "q", "page")
        levels = await _levels(request)
        try:
            await company_access.set_levels(scope, membership_id, levels, client_of(request))
        except (NotFound, membership.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            person = await self._person(request, membership_id)
            context = await self._person_context(request, person, errors=field_errors(error),
                                                 matrix_query=values["q"],
                                                 matrix_page=values["page"])
            return render(request, "person.html", context,
                          partial="partials/person_access.html", status=INVALID)
        if not is_htmx(request):
            return redirect(request, f"/users/{membership_id}", flash="Zapisano dostęp do firm.")
        person = await self._person(request, membership_id)
        return render(request, "person.html",
                      await self._person_context(request, person, saved="access",
                                                 matrix_query=values["q"],
                                                 matrix_page=values["page"]),
                      partial="partials/person_access.html")

    async def _remove_form(self, request: Request, person: dict[str, Any],
                           errors: dict[str, str], status: int = 200) -> Template:
        return render(
            request, "person_remove.html",
            {"title": "Usuń osobę z konta", "person": person, "errors": errors,
             "htmx": is_htmx(request), **await mfa_context(request)},
            partial="partials/person_remove.html", status=status,
        )

    @get("/{membership_id:str}/remove", opt=MANAGE)
    async def remove_form(self, request: Request, membership_id: FromPath[str]) -> Template:
        person = await self._person(request, membership_id)
        return await self._remove_form(request, person, {})

    @post("/{membership_id:str}/remove", opt=MANAGE)
    async def remove(self, request: Request, membership_id: FromPath[str]) -> Response:
        settings = settings_of(request)
        client = client_of(request)
        person = await self._person(request, membership_id)  # 404 before anything else
        values = await form_values(request, "password", "code")
        try:
            scope = await reauthenticated(request, values)
            await membership_changes.remove(settings, scope, person["id"], client)
        except (NotFound, membership.NotAllowed) as error:
            _refuse(error)
            raise
        except DomainError as error:
            errors = {**field_errors(error), "target": "remove"}
            return await self._remove_form(request, person, errors, INVALID)
        return redirect(request, "/users", flash="Usunięto osobę z konta.")


class InvitationLinkController(Controller):
    """The link in an invitation mail. Public: the invitee may have no ID yet."""

    path = "/invitations"

    async def _page(self, request: Request, token: str, *, errors: dict[str, str] | None = None,
                    status: int = 200) -> Response:
        scope = scope_of(request)
        try:
            info = await invitations.by_token(token)
        except invitations.InvitationInvalid as error:
            return render(request, "invitation_invalid.html",
                          {"title": "Zaproszenie nieważne", "message": error.message},
                          status=410)
        if scope is not None:
            mode = "accept" if info.email.lower() == scope.email.lower() else "other_person"
        else:
            mode = "sign_in" if info.has_id else "register"
        return render(request, "invitation.html",
                      {"title": "Zaproszenie do konta firmy", "invitation": info, "mode": mode,
                       "token": token, "errors": errors or {}},
                      partial="partials/invitation_form.html", status=status)

    @get("/{token:str}", opt={"public": True})
    async def show(self, request: Request, token: FromPath[str]) -> Response:
        return await self._page(request, token)

    @post("/{token:str}", opt={"public": True})
    async def accept(self, request: Request, token: FromPath[str]) -> Response:
        scope = scope_of(request)
        client = client_of(request)
        values = await form_values(request, "password", "password_confirm")
        try:
            if scope is not None:
                await invitations.accept_signed_in(scope, token, client)
                return redirect(request, "/", flash="Dołączono do konta firmy.")
            async with busy_at_the_form(request):
                identity_id, public_id = await invitations.accept_with_registration(
                    token, values["password"], values["password_confirm"], client)
        except invitations.InvitationInvalid:
            return await self._page(request, token)
        except DomainError as error:
            return await self._page(request, token, errors=field_errors(error), status=INVALID)
        response = await sign_in(request, {"id": identity_id, "last_account_id": public_id}, "/")
        settings = settings_of(request)
        response.set_cookie(flash_cookie(settings.secret_key,
                                         "Dołączono do konta firmy.", settings.https))
        return response

    @post("/{token:str}/decline", opt={"public": True})
    async def decline(self, request: Request, token: FromPath[str]) -> Response:
        try:
            await invitations.decline_by_token(token, client_of(request))
        except invitations.InvitationInvalid:
            return await self._page(request, token)
        return render(request, "invitation_invalid.html",
                      {"title": "Zaproszenie odrzucone", "declined": True})


class PendingInvitationsController(Controller):
    """Accepting or declining an invitation from the account switcher (by its id, only for
    invitations addressed to the signed-in person's email)."""

    path = "/accounts/invitations"
    guards = [requires_identity]

    @post("/{invitation_id:str}/accept")
    async def accept(self, request: Request, invitation_id: FromPath[str]) -> Response:
        try:
            await invitations.accept_by_id(scope_of(request), invitation_id, client_of(request))
        except DomainError as error:
            _refuse(error)
            raise
        return redirect(request, "/", flash="Dołączono do konta firmy.")

    @post("/{invitation_id:str}/decline")
    async def decline(self, request: Request, invitation_id: FromPath[str]) -> Response:
        try:
            await invitations.decline_by_id(scope_of(request), invitation_id, client_of(request))
        except DomainError as error:
            _refuse(error)
            raise
        values = await form_values(request, "next")
        return redirect(request, safe_next(values["next"], "/"), flash="Odrzucono zaproszenie.")
