"""Sign-in, sign-out, registration, verification and password reset: the public side of the ID."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from portal.i18n import translator
from portal.security.passwords import HashBusy
from portal.services import identity, mfa, oidc_authorization, sessions
from portal.services.errors import DomainError
from portal.settings import Settings
from portal.views.forms import INVALID, client_of, field_errors, form_values
from portal.views.rendering import (
    VARY,
    is_htmx,
    language_of,
    redirect,
    render,
    safe_next,
    scope_of,
    settings_of,
)
from portal.web.guards import requires_identity
from portal.web.headers import csp_with_form_targets
from portal.web.middleware import set_session

PUBLIC = {"public": True}
MFA_COOKIE = "portal_mfa"


def mfa_cookie(settings: Settings, raw: str | None) -> Cookie:
    """The pending sign-in attempt between the password and the second factor."""
    return Cookie(key=MFA_COOKIE, value=raw or "", path="/login", httponly=True,
                  secure=settings.https, samesite="lax",
                  max_age=int(mfa.ATTEMPT_LIFETIME.total_seconds()) if raw else 0)


async def sign_in(
    request: Request, identity_row: dict, target: str, amr: tuple[str, ...] = ("pwd",)
) -> Response:
    """Start a fresh session (a new id: never reuse one from before sign-in) and go on."""
    settings = settings_of(request)
    old = scope_of(request)
    if old is not None:
        await sessions.end(old.session_hash, hashed=True)
    raw = await sessions.start(
        identity_row["id"],
        client_of(request),
        sessions.Lifetimes.of(settings),
        identity_row.get("last_account_id"),
        amr=amr,
    )
    response = redirect(request, target)
    set_session(request, response, raw)
    return response


async def _sign_in_page(request: Request, context: dict, *, headers: dict | None = None,
                        partial: str = "partials/login_form.html", **kwargs) -> Template:
    """The sign-in page. When it returns to an application (``next`` is an authorization
    request), it speaks the language the application asked for (``ui_locales``), and its form
    may go on to the application's registered redirect URI: without JavaScript the form's
    redirects lead there, and CSP ``form-action`` applies to them."""
    going_on = await oidc_authorization.continuation(context["next"])
    if going_on.language:
        context = {**context, "lang": going_on.language, "_": translator(going_on.language)}
    if going_on.redirect_uris:
        headers = {**(headers or {}), "Content-Security-Policy": csp_with_form_targets(
            *going_on.redirect_uris)}
    return render(request, "login.html", context, partial=partial, headers=headers, **kwargs)


class AuthController(Controller):
    @get("/login", opt=PUBLIC)
    async def login_form(self, request: Request, next: FromQuery[str | None] = None) -> Template:
        return await _sign_in_page(
            request, {"title": "Zaloguj się", "values": {}, "errors": {}, "next": safe_next(next)}
        )

    @post("/login", opt=PUBLIC)
    async def login(self, request: Request) -> Response:
        values = await form_values(request, "email", "password", "next")
        context = {
            "title": "Zaloguj się",
            "values": {"email": values["email"]},
            "next": safe_next(values["next"]),
        }
        try:
            row = await identity.authenticate(
                settings_of(request),
                values["email"],
                values["password"],
                client_of(request),
                language_of(request),
            )
        except HashBusy as busy:
            return await _sign_in_page(
                request, {**context, "errors": {"form": busy.detail}}, status=busy.status_code,
                headers={"Retry-After": str(busy.retry_after)})
        except DomainError as error:  # a missing field by name; otherwise one vague answer
            return await _sign_in_page(
                request, {**context, "errors": field_errors(error)}, status=INVALID
            )
        if mfa.enabled_for(row) or row["has_passkey"]:
            # The password is right; the session starts only after the second factor.
            raw = await mfa.begin_login(row["id"], safe_next(values["next"]))
            response = redirect(request, "/login/mfa")
            response.set_cookie(mfa_cookie(settings_of(request), raw))
            return response
        return await sign_in(request, row, safe_next(values["next"]))

    @post("/logout", opt=PUBLIC)
    async def logout(self, request: Request) -> Response:
        scope = scope_of(request)
        if scope is not None:
            await sessions.sign_out(scope, client_of(request))
        response = redirect(request, "/login", flash="Wylogowano.")
        set_session(request, response, None)
        return response

    @get("/register", opt=PUBLIC)
    async def register_form(self, request: Request) -> Template:
        return render(
            request,
            "register.html",
            {"title": "Załóż Konto ID", "values": {}, "errors": {}},
            partial="partials/register_form.html",
        )

    @post("/register", opt=PUBLIC)
    async def register(self, request: Request) -> Template:
        values = await form_values(request, "email")
        try:
            await identity.register(
                settings_of(request), values["email"], client_of(request), language_of(request)
            )
        except identity.TooManyFromNetwork as limit:
            return _too_many(request, limit, "register.html", {
                "title": "Załóż Konto ID", "values": values}, "partials/register_form.html")
        except DomainError as error:
            return render(
                request,
                "register.html",
                {"title": "Załóż Konto ID", "values": values, "errors": field_errors(error)},
                partial="partials/register_form.html",
                status=INVALID,
            )
        return render(
            request,
            "mail_sent.html",
            {"title": "Sprawdź skrzynkę", "email": values["email"].strip(), "purpose": "register"},
            partial="partials/mail_sent.html",
        )

    @get("/verify/{token:str}", opt=PUBLIC)
    async def verify_form(self, request: Request, token: FromPath[str]) -> Template:
        try:
            info = await identity.check_token(identity.VERIFY, token)
        except DomainError:
            return _link_invalid(request, "register")
        return render(
            request,
            "set_password.html",
            {
                "title": "Ustaw hasło",
                "email": info.email,
                "errors": {},
                "action": f"/verify/{token}",
                "purpose": "verify",
            },
            partial="partials/set_password_form.html",
        )

    @post("/verify/{token:str}", opt=PUBLIC)
    async def verify(self, request: Request, token: FromPath[str]) -> Response:
        values = await form_values(request, "password", "password_confirm")
        client = client_of(request)
        try:
            info = await identity.check_token(identity.VERIFY, token)
            identity_id = await identity.complete_verification(
                token, values["password"], values["password_confirm"], client
            )
        except identity.TokenInvalid:
            return _link_invalid(request, "register")
        except HashBusy as busy:
            return _busy(request, busy, "set_password.html", {
                "title": "Ustaw hasło", "email": info.email, "action": f"/verify/{token}",
                "purpose": "verify"}, "partials/set_password_form.html")
        except DomainError as error:
            return render(
                request,
                "set_password.html",
                {
                    "title": "Ustaw hasło",
                    "email": info.email,
                    "errors": field_errors(error),
                    "action": f"/verify/{token}",
                    "purpose": "verify",
                },
                partial="partials/set_password_form.html",
                status=INVALID,
            )
        return await sign_in(request, {"id": identity_id, "last_account_id": None}, "/")

    @get("/password/forgot", opt=PUBLIC)
    async def forgot_form(self, request: Request) -> Template:
        return render(
            request,
            "forgot.html",
            {"title": "Nie pamiętasz hasła?", "values": {}, "errors": {}},
            partial="partials/forgot_form.html",
        )

    @post("/password/forgot", opt=PUBLIC)
    async def forgot(self, request: Request) -> Template:
        values = await form_values(request, "email")
        try:
            await identity.request_password_reset(
                settings_of(request), values["email"], client_of(request), language_of(request)
            )
        except identity.TooManyFromNetwork as limit:
            return _too_many(request, limit, "forgot.html", {
                "title": "Nie pamiętasz hasła?", "values": values}, "partials/forgot_form.html")
        except DomainError as error:
            return render(
                request,
                "forgot.html",
                {"title": "Nie pamiętasz hasła?", "values": values, "errors": field_errors(error)},
                partial="partials/forgot_form.html",
                status=INVALID,
            )
        return render(
            request,
            "mail_sent.html",
            {"title": "Sprawdź skrzynkę", "email": values["email"].strip(), "purpose": "reset"},
            partial="partials/mail_sent.html",
        )

    @get("/password/reset/{token:str}", opt=PUBLIC)
    async def reset_form(self, request: Request, token: FromPath[str]) -> Template:
        try:
            info = await identity.check_token(identity.PASSWORD_RESET, token)
        except DomainError:
            return _link_invalid(request, "reset")
        return render(
            request,
            "set_password.html",
            {
                "title": "Ustaw nowe hasło",
                "email": info.email,
                "errors": {},
                "action": f"/password/reset/{token}",
                "purpose": "reset",
            },
            partial="partials/set_password_form.html",
        )

    @post("/password/reset/{token:str}", opt=PUBLIC)
    async def reset(self, request: Request, token: FromPath[str]) -> Response:
        values = await form_values(request, "password", "password_confirm")
        try:
            info = await identity.check_token(identity.PASSWORD_RESET, token)
            await identity.reset_password(
                settings_of(request),
                token,
                values["password"],
                values["password_confirm"],
                client_of(request),
                language_of(request),
            )
        except identity.TokenInvalid:
            return _link_invalid(request, "reset")
        except HashBusy as busy:
            return _busy(request, busy, "set_password.html", {
                "title": "Ustaw nowe hasło", "email": info.email,
                "action": f"/password/reset/{token}", "purpose": "reset"},
                "partials/set_password_form.html")
        except DomainError as error:
            return render(
                request,
                "set_password.html",
                {
                    "title": "Ustaw nowe hasło",
                    "email": info.email,
                    "errors": field_errors(error),
                    "action": f"/password/reset/{token}",
                    "purpose": "reset",
                },
                partial="partials/set_password_form.html",
                status=INVALID,
            )
        response = redirect(
            request, "/login", flash="Hasło zostało zmienione. Zaloguj się nowym hasłem."
        )
        set_session(request, response, None)
        return response


def _busy(request: Request, busy: HashBusy, template: str, context: dict,
          partial: str) -> Template:
    """Hashing is at capacity: the same form again, with "too many sign-ins right now, try
    again in a few seconds", as a 503 with Retry-After. Nothing was hashed or counted."""
    return render(request, template, {**context, "errors": {"form": busy.detail}},
                  partial=partial, status=busy.status_code,
                  headers={"Retry-After": str(busy.retry_after)})


def _too_many(request: Request, limit: identity.TooManyFromNetwork, template: str,
              context: dict, partial: str) -> Template:
    """Past the mails per client network: the same form, saying so and for how long (429
    with Retry-After), instead of a "we sent you a mail" that no mail follows."""
    return render(request, template,
                  {**context, "errors": {"form": limit.message}, "retry_minutes": limit.minutes},
                  partial=partial, status=429, headers={"Retry-After": str(limit.retry_after)})


def _link_invalid(request: Request, purpose: str) -> Template:
    """An expired or used link offers a new one."""
    return render(
        request,
        "link_invalid.html",
        {"title": "Link nieważny", "purpose": purpose, "values": {}, "errors": {}},
        status=410,
    )


class SessionController(Controller):
    """Keeping a session alive on request (the idle-timeout warning's button)."""

    @post("/session/extend", guards=[requires_identity])
    async def extend(self, request: Request) -> Response:
        scope = scope_of(request)
        assert scope is not None
        await sessions.extend(scope)
        if is_htmx(request):
            return Response(content=b"", status_code=204, headers=VARY)
        return redirect(request, "/", flash="Sesja została przedłużona.")
