"""The API's one error shape, for every status the API answers:

    {"error": {"status": 400, "code": "bad_request", "message": "...", "fields": {...}}}

``fields`` is always there: field → message for every input error (a schema error such as a
missing, too long or unknown field, a bad query parameter, a body that is not JSON, a rule a
service applied), empty otherwise. Messages are Polish, or English when ``Accept-Language``
asks for it (the UI's catalogue; the API has no session, so only the header decides).
"""

from __future__ import annotations

import re
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from portal.api.schemas import Error
from portal.i18n import from_accept_language, translator
from portal.services.errors import DomainError, Forbidden, InvalidInput, NotFound

#: status → (code, the message when nothing more precise is known). Polish source texts;
#: English in locale/en (tests/test_i18n.py reads these tables).
STATUSES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Nieprawidłowe żądanie: szczegóły w „fields”."),
    401: ("unauthorized", "Potrzebny jest ważny klucz API (nagłówek Authorization: Bearer …)."),
    403: ("forbidden", "Ten klucz API nie ma uprawnienia do tej operacji."),
    404: ("not_found", "Nie znaleziono."),
    405: ("method_not_allowed", "Ta ścieżka nie obsługuje tej metody."),
    413: ("too_large", "Za duże żądanie."),
    422: ("invalid", "Nieprawidłowe dane: szczegóły w „fields”."),
    429: ("rate_limited", "Zbyt wiele żądań. Spróbuj ponownie za {seconds} s."),
    500: ("internal_error", "Błąd serwera. Spróbuj ponownie za chwilę."),
    503: ("unavailable", "Usługa chwilowo niedostępna. Spróbuj ponownie za kilka sekund."),
}

#: The more precise messages raised by the API's own code (api/auth.py).
MISSING_KEY = "Potrzebny jest klucz API (nagłówek Authorization: Bearer …)."
INVALID_KEY = "Klucz API jest nieprawidłowy, wygasł albo został unieważniony."
MISSING_SCOPE = "Ten klucz API nie ma uprawnienia „{scope}”."
NOT_JSON = "Treść żądania nie jest poprawnym dokumentem JSON."
REFUSED = "Żądanie zawiera znaki, których nie można zapisać (np. znaki sterujące)."
TOO_DEEP = "Dokument JSON jest zagnieżdżony zbyt głęboko."
OWN_MESSAGES = frozenset({MISSING_KEY, INVALID_KEY, MISSING_SCOPE})

#: Field messages for what the schema (msgspec) refuses.
FIELD_MESSAGES: dict[str, str] = {
    "required": "To pole jest wymagane.",
    "unknown": "Nieznane pole.",
    "empty": "To pole nie może być puste.",
    "max_length": "Najwyżej {limit} zn.",
    "min_length": "Co najmniej {limit} zn.",
    "maximum": "Największa dozwolona wartość to {limit}.",
    "minimum": "Najmniejsza dozwolona wartość to {limit}.",
    "type": "Oczekiwano wartości typu {type}.",
    "invalid": "Nieprawidłowa wartość.",
}

#: msgspec's type names as JSON's.
_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
               "object": "object", "array": "array", "null": "null"}

_AT = re.compile(r"\s+-\s+at\s+`\$(?P<path>[^`]*)`$")
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Object missing required field `(?P<field>[^`]+)`"), "required"),
    (re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`"), "unknown"),
    (re.compile(r"^Expected `[^`]+` of length <= (?P<limit>\d+)"), "max_length"),
    (re.compile(r"^Expected `[^`]+` of length >= (?P<limit>\d+)"), "min_length"),
    (re.compile(r"^Expected `[^`]+` <= (?P<limit>-?\d+)"), "maximum"),
    (re.compile(r"^Expected `[^`]+` >= (?P<limit>-?\d+)"), "minimum"),
    (re.compile(r"^Expected `(?P<type>[^`|]+)(?: \| [^`]+)?`, got `[^`]+`"), "type"),
)


def language(request: Request) -> str:
    return from_accept_language(request.headers.get("accept-language"))


def error_response(request: Request, status: int, message: str | None = None,
                   fields: dict[str, str] | None = None, *, headers: dict | None = None,
                   code: str | None = None, **params: Any) -> Response:
    """The error in the API's shape, its texts translated for the request's language and then
    filled with ``params`` (``{seconds}``, ``{scope}``)."""
    default_code, default_message = STATUSES.get(status, STATUSES[500 if status >= 500 else 400])
    _ = translator(language(request))
    text = _(message or default_message)
    if params:
        text = text.format(**params)
    body = {"error": {"status": status, "code": code or default_code, "message": text,
                      "fields": {name: _(value) for name, value in (fields or {}).items()}}}
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def schema_fields(extra: Any, translate=None) -> dict[str, str]:
    """Field → message for a ValidationException's ``extra`` (msgspec's messages, each with
    the parameter or body key it concerns). The texts are already translated and filled."""
    _ = translate or (lambda text: text)
    fields: dict[str, str] = {}
    for problem in extra if isinstance(extra, list) else []:
        if not isinstance(problem, dict):
            continue
        message = str(problem.get("message", ""))
        key = str(problem.get("key") or "body")
        at = _AT.search(message)
        if at:
            message = message[: at.start()]
            path = at.group("path").lstrip(".")
            key = path or key
        for pattern, rule in _RULES:
            match = pattern.match(message)
            if match is None:
                continue
            values = match.groupdict()
            if "field" in values:
                key = values["field"] if key in ("data", "body") else f"{key}.{values['field']}"
            if rule == "min_length" and values.get("limit") == "1":
                rule = "empty"
            if "type" in values:
                values["type"] = _JSON_TYPES.get(values["type"].strip(), values["type"].strip())
            fields.setdefault(key, _(FIELD_MESSAGES[rule]).format(**values))
            break
        else:
            fields.setdefault(key if key != "data" else "body", _(FIELD_MESSAGES["invalid"]))
    return fields


def from_http_exception(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException) and exc.extra:
        fields = schema_fields(exc.extra, translator(language(request)))
        return error_response(request, 400, fields=fields, headers=headers)
    if status == 400:  # a body Litestar could not decode
        return error_response(request, 400, NOT_JSON, {"body": NOT_JSON}, headers=headers)
    if status == 429:
        return error_response(request, 429, headers=headers,
                              seconds=headers.get("Retry-After", "60"))
    message = exc.detail if exc.detail in OWN_MESSAGES else None
    params = exc.extra if isinstance(exc.extra, dict) else {}
    return error_response(request, status, message, headers=headers, **params)


def from_domain_error(request: Request, error: DomainError) -> Response:
    """A service's refusal: 404 for a row outside the key's account, 403 for a rule about
    who may do it, 422 with its field messages otherwise."""
    if isinstance(error, NotFound):
        return error_response(request, 404)
    if isinstance(error, Forbidden) or type(error).__name__ == "NotAllowed":
        return error_response(request, 403, error.message)
    fields = dict(error.errors) if isinstance(error, InvalidInput) else (
        {error.field: error.message} if error.field else {})
    return error_response(request, 422, error.message, fields)


_DESCRIPTIONS = {
    400: "A malformed request: a schema error (missing, too long or unknown field, a bad "
         "query parameter) or a body that is not JSON; `fields` names each.",
    401: "No valid API key.",
    403: "The key lacks the scope or the companies for this.",
    404: "Not in the key's account (or no such path).",
    405: "The path does not take this method.",
    422: "The data breaks a rule (e.g. an invalid NIP); `fields` names each field.",
    429: "Too many requests for this key or address; see Retry-After.",
    503: "The database is unreachable for a moment; see Retry-After.",
}

#: Every operation's error responses in the OpenAPI document: all the same shape.
RESPONSES = {status: ResponseSpec(Error, description=text + " Messages follow Accept-Language "
                                  "(Polish by default, English).")
             for status, text in _DESCRIPTIONS.items()}
