"""Error responses: a page for people, a stable JSON shape for the API, never a traceback."""

from __future__ import annotations

import logging
from urllib.parse import quote

from asyncpg.exceptions import CharacterNotInRepertoireError, UntranslatableCharacterError
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from portal import db
from portal.api import errors as api_errors
from portal.security.passwords import HashBusy
from portal.services.errors import DomainError, Forbidden, NotFound
from portal.services.oidc import OAuthError
from portal.views.oauth import oauth_error
from portal.views.rendering import VARY, is_htmx, redirect, render
from portal.web.guards import MfaEnrolmentRequired, NoAccount
from portal.web.input import RefusedInput

log = logging.getLogger(__name__)

TITLES = {
    400: ("Nieprawidłowe żądanie", "Sprawdź dane i spróbuj ponownie."),
    403: ("Brak dostępu", "Nie masz uprawnień do tej strony."),
    404: ("Nie znaleziono", "Ta strona nie istnieje albo nie masz do niej dostępu."),
    405: ("Niedozwolona metoda", "Ta strona nie obsługuje takiego żądania."),
    413: ("Za duże żądanie", "Przesłane dane są za duże."),
    429: ("Za dużo prób", "Spróbuj ponownie za chwilę."),
    500: ("Błąd serwera", "Coś poszło nie tak po naszej stronie. Spróbuj ponownie za chwilę."),
    503: ("Usługa niedostępna", "Spróbuj ponownie za chwilę."),
}

API_PREFIX = "/api/"
#: Endpoints applications call (not people): their errors are OAuth's JSON (RFC 6749 5.2).
OAUTH_JSON_PATHS = frozenset({"/oauth/token", "/oauth/revoke", "/oauth/userinfo"})
#: What a person is told when the request held characters the portal cannot store.
REFUSED_CHARACTERS = "Usuń niedozwolone znaki (np. znaki sterujące)."


#: Statuses the layout's htmx configuration swaps (responseHandling) that no form answers:
#: for an htmx request they come as a notice in the live region, not as a whole page.
NOTICE_STATUSES = frozenset({429, 503})


def _page(request: Request, status: int, headers=None, message: str | None = None) -> Response:
    title, default = TITLES.get(status, TITLES[400] if status < 500 else TITLES[500])
    message = message or default
    headers = {**VARY, **(headers or {})}
    if status in NOTICE_STATUSES and is_htmx(request):
        headers.update({"HX-Retarget": "#live", "HX-Reswap": "innerHTML"})
    return render(
        request,
        "error.html",
        {"title": title, "message": message},
        partial="partials/error_notice.html" if status in NOTICE_STATUSES else None,
        status=status,
        headers=headers,
    )


def http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if request.url.path.startswith(API_PREFIX):
        return api_errors.from_http_exception(request, exc)
    if isinstance(exc, NoAccount):
        return redirect(request, "/accounts/new")
    if isinstance(exc, MfaEnrolmentRequired):
        message = (
            "To konto firmy wymaga logowania kluczem dostępu. Dodaj klucz dostępu, aby "
            "kontynuować."
            if exc.detail == "passkey"
            else "To konto firmy wymaga logowania z aplikacją uwierzytelniającą. Włącz ją, aby "
            "kontynuować."
            if exc.detail == "app"
            else "To konto firmy wymaga weryfikacji dwuetapowej. Włącz ją, aby kontynuować."
        )
        return redirect(request, "/security", flash=message)
    if isinstance(exc, NotAuthorizedException):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(request, "/login?next=" + quote(target, safe="/"))
    if isinstance(exc, PermissionDeniedException):
        return _page(request, 403, headers)
    if isinstance(exc, HashBusy):  # a hash outside the forms that say it themselves
        return _page(request, status, {**headers, "Cache-Control": "no-store"}, exc.detail)
    return _page(request, status, headers)


#: Seconds a client is told to wait while the database is unreachable (a failover takes
#: about ten: docs/SCALING.md).
RETRY_AFTER = 5


def database_unavailable(request: Request, exc: Exception) -> Response:
    """The database cannot be reached (a failover, a restart): 503 with Retry-After, as a
    page, the API's JSON or OAuth's JSON; the pool's other connections are replaced too."""
    log.warning("database unavailable on %s %s: %s: %s", request.method, request.url.path,
                type(exc).__name__, str(exc)[:200])
    db.forget_connections()
    headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
    path = request.url.path
    if path.startswith(API_PREFIX):
        return api_errors.error_response(request, 503, headers=headers)
    if path in OAUTH_JSON_PATHS:
        return oauth_error(OAuthError("temporarily_unavailable",
                                      "the service is temporarily unavailable", 503),
                           {"Retry-After": str(RETRY_AFTER)})  # it adds no-store and Pragma
    return _page(request, 503, headers, message=(
        "Chwilowo nie możemy połączyć się z bazą danych. Spróbuj ponownie za kilka sekund."))


def server_error(request: Request, exc: Exception) -> Response:
    if db.unavailable(exc):
        return database_unavailable(request, exc)
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if request.url.path.startswith(API_PREFIX):
        return api_errors.error_response(request, HTTP_500_INTERNAL_SERVER_ERROR)
    return _page(request, HTTP_500_INTERNAL_SERVER_ERROR)


def domain_refusal(request: Request, exc: DomainError) -> Response:
    """A service refused and the view did not handle it: a row of another account is 404, a
    rule about who may do it 403, anything else a bad request."""
    if request.url.path.startswith(API_PREFIX):
        return api_errors.from_domain_error(request, exc)
    status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, Forbidden) else 400
    return _page(request, status)


def refused_input(request: Request, exc: Exception) -> Response:
    """Characters PostgreSQL cannot store (a NUL, a lone surrogate) or JSON nested too deeply:
    a 400 for whoever sent it. RefusedInput comes from web/input.py before any handler
    ran; the database's own refusal is the last resort for anything that got past it, so it is
    logged (escaped, see logs.py) to find the way it came in."""
    if isinstance(exc, RefusedInput):
        description = exc.detail
    else:
        description = "the request contains characters that cannot be stored"
        log.warning("database refused characters on %s %s: %s", request.method,
                    request.url.path, exc)
    path = request.url.path
    if path.startswith(API_PREFIX):
        text = api_errors.TOO_DEEP if "nests" in description else api_errors.REFUSED
        return api_errors.error_response(request, 400, text, {"body": text})
    if path in OAUTH_JSON_PATHS:
        return Response(
            content={"error": "invalid_request", "error_description": description},
            status_code=400,
            media_type=MediaType.JSON,
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
    return _page(request, 400, message=REFUSED_CHARACTERS)


EXCEPTION_HANDLERS = {
    RefusedInput: refused_input,
    CharacterNotInRepertoireError: refused_input,
    UntranslatableCharacterError: refused_input,
    HTTPException: http_error,
    DomainError: domain_refusal,
    Exception: server_error,
}
