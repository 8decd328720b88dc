"""Error responses: a page for people, a stable JSON shape for the API, never a traceback."""

from __future__ import annotations

import logging
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from portal.security.guards import MfaEnrolmentRequired, NoAccount
from portal.services.errors import DomainError, Forbidden, NotFound
from portal.views.rendering import VARY, redirect, render

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


def _api_error(status: int, code: str, message: str, headers=None) -> Response:
    return Response(
        content={"error": {"status": status, "code": code, "message": message}},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _page(request: Request, status: int, headers=None) -> Response:
    title, message = TITLES.get(status, TITLES[400] if status < 500 else TITLES[500])
    return render(
        request,
        "error.html",
        {"title": title, "message": message},
        status=status,
        headers={**VARY, **(headers or {})},
    )


def http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if request.url.path.startswith(API_PREFIX):
        return _api_error(status, _code(status), exc.detail if status < 500 else "error", headers)
    if isinstance(exc, NoAccount):
        return redirect(request, "/accounts/new")
    if isinstance(exc, MfaEnrolmentRequired):
        message = (
            "To konto firmy wymaga logowania z aplikacją uwierzytelniającą. Włącz ją, aby "
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
    return _page(request, status, headers)


def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if request.url.path.startswith(API_PREFIX):
        return _api_error(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error")
    return _page(request, HTTP_500_INTERNAL_SERVER_ERROR)


def _code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        429: "rate_limited",
    }.get(status, "error")


def domain_refusal(request: Request, exc: DomainError) -> Response:
    """A service refused and the view did not handle it: a row of another account is 404, a
    rule about who may do it 403, anything else a bad request."""
    status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, Forbidden) else 400
    if request.url.path.startswith(API_PREFIX):
        return _api_error(status, _code(status), exc.message)
    return _page(request, status)


EXCEPTION_HANDLERS = {
    HTTPException: http_error,
    DomainError: domain_refusal,
    Exception: server_error,
}
