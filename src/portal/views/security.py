"""Login security: password change, active sessions, security history."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from portal.services import audit, identity, oidc_tokens, passkeys, sessions
from portal.services.errors import DomainError
from portal.views.forms import (
    INVALID,
    busy_at_the_form,
    client_of,
    field_errors,
    form_values,
    mfa_context,
)
from portal.views.rendering import is_htmx, redirect, render, scope_of, settings_of
from portal.web.guards import requires_identity

EVENT_LABELS = {
    "identity:login:success": "Zalogowano",
    "identity:login:failure": "Nieudana próba logowania",
    "identity:login:throttled": "Zablokowana próba logowania",
    "identity:logout:success": "Wylogowano",
    "identity:password:set": "Ustawiono hasło",
    "identity:password:change": "Zmieniono hasło",
    "identity:password:change_failure": "Nieudana próba zmiany hasła",
    "identity:password:reset_request": "Poproszono o link do nowego hasła",
    "identity:password:reset": "Ustawiono nowe hasło z linku e-mail",
    "identity:email:verify": "Potwierdzono adres e-mail",
    "identity:registration:request": "Próba rejestracji tego adresu",
    "identity:session:revoke": "Wylogowano jedną z sesji",
    "identity:session:revoke_others": "Wylogowano pozostałe sesje",
    "identity:mfa:app_enable": "Włączono aplikację uwierzytelniającą",
    "identity:mfa:app_disable": "Wyłączono aplikację uwierzytelniającą",
    "identity:mfa:email_enable": "Włączono kody e-mail",
    "identity:mfa:email_disable": "Wyłączono kody e-mail",
    "identity:mfa:recovery_regenerate": "Wygenerowano nowe kody odzyskiwania",
    "identity:mfa:recovery_used": "Użyto kodu odzyskiwania",
    "identity:mfa:success": "Potwierdzono logowanie drugim składnikiem",
    "identity:mfa:failure": "Nieprawidłowy kod logowania",
    "identity:mfa:email_code_sent": "Wysłano kod logowania e-mailem",
    "identity:reauth:success": "Potwierdzono tożsamość",
    "identity:passkey:add": "Dodano klucz dostępu",
    "identity:passkey:rename": "Zmieniono nazwę klucza dostępu",
    "identity:passkey:remove": "Usunięto klucz dostępu",
    "identity:passkey:failure": "Nieudana próba użycia klucza dostępu",
    "identity:passkey:clone_warning": "Odrzucono klucz dostępu: możliwa kopia klucza",
    "oauth:consent:grant": "Udzielono aplikacji dostępu",
    "oauth:consent:revoke": "Odebrano aplikacji dostęp",
    "oauth:authorization:grant": "Zalogowano do aplikacji",
}


async def _sessions(request: Request) -> dict:
    """The session list's context: one page of the person's sessions (``?sessions=N``)."""
    scope = scope_of(request)
    listing = await sessions.page_for(scope, request.query_params.get("sessions"),
                                      request.query_params.get("sessions_after"))
    return {
        "session_page": listing,
        "sessions": [
            {
                "id": row["id"],
                "device": identity.describe_device(row["user_agent"]),
                "ip": row["ip"],
                "created_at": row["created_at"],
                "last_seen_at": row["last_seen_at"],
                "current": row["id_hash"] == scope.session_hash,
            }
            for row in listing.rows
        ],
    }


#: How each kind of event reads in the history: what happened, and whether it was a warning.
EVENT_KINDS = {
    "identity:login:failure": "warning", "identity:login:throttled": "warning",
    "identity:password:change_failure": "warning", "identity:mfa:failure": "warning",
    "identity:mfa:recovery_used": "warning", "identity:registration:request": "warning",
    "identity:passkey:failure": "warning", "identity:passkey:clone_warning": "warning",
}


async def _history(request: Request) -> dict:
    """One page (``?history=N``) of the person's security events only, with readable labels
    (the account's own events are in /users/audit)."""
    listing = await audit.security_history(scope_of(request).identity_id, EVENT_LABELS,
                                           request.query_params.get("history"))
    return {
        "history_page": listing,
        "history": [
            {
                "label": EVENT_LABELS[row["tag"]],
                "tone": EVENT_KINDS.get(row["tag"], "neutral"),
                "when": row["created_at"],
                "ip": row["ip"],
                "device": identity.describe_device(row["user_agent"]),
            }
            for row in listing.rows
        ],
    }


async def security_context(request: Request) -> dict:
    """Everything the security page shows (the MFA section included)."""

    return {
        "title": "Bezpieczeństwo logowania",
        "errors": {},
        **await _sessions(request),
        **await _history(request),
        "applications": await oidc_tokens.granted_applications(scope_of(request).identity_id),
        "passkeys": await passkeys.list_for(scope_of(request).identity_id),
        **await mfa_context(request),
    }


class SecurityController(Controller):
    path = "/security"
    guards = [requires_identity]

    async def _page(
        self, request: Request, *, errors=None, status=200, partial: str | None = None
    ) -> Template:
        context = await security_context(request)
        context["errors"] = errors or {}
        return render(request, "security.html", context, partial=partial, status=status)

    @get("/")
    async def show(self, request: Request) -> Template:
        if is_htmx(request) and "sessions" in request.query_params:
            # Another page of the session list: only that fragment, only its query.
            return render(request, "security.html", await _sessions(request),
                          partial="partials/session_list.html")
        if is_htmx(request) and "history" in request.query_params:
            return render(request, "security.html", await _history(request),
                          partial="partials/security_history.html")
        return await self._page(request)

    @post("/password")
    async def change_password(self, request: Request) -> Response:
        values = await form_values(request, "current_password", "password", "password_confirm")
        try:
            async with busy_at_the_form(request):
                await identity.change_password(
                    settings_of(request),
                    scope_of(request),
                    values["current_password"],
                    values["password"],
                    values["password_confirm"],
                    client_of(request),
                )
        except DomainError as error:
            return await self._page(
                request,
                errors=field_errors(error),
                status=INVALID,
                partial="partials/password_change_form.html",
            )
        return redirect(
            request,
            "/security",
            flash="Hasło zostało zmienione. Pozostałe sesje zostały wylogowane.",
        )

    @post("/sessions/end-others")
    async def end_others(self, request: Request) -> Response:
        await sessions.end_others(scope_of(request), client_of(request))
        return redirect(request, "/security", flash="Wylogowano pozostałe sesje.")

    @post("/sessions/{session_id:uuid}/end")
    async def end_one(self, request: Request, session_id: FromPath[UUID]) -> Response:
        scope = scope_of(request)
        if not await sessions.end_by_id(scope, session_id, client_of(request)):
            raise NotFoundException()
        return redirect(request, "/security", flash="Sesja została wylogowana.")

    @post("/applications/{client_id:str}/revoke")
    async def revoke_application(self, request: Request, client_id: FromPath[str]) -> Response:
        if not await oidc_tokens.revoke_application(scope_of(request), client_id,
                                                    client_of(request)):
            raise NotFoundException()
        return redirect(request, "/security", flash="Odebrano aplikacji dostęp.")
