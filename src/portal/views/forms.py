"""Reading forms and turning domain errors into field messages."""

from __future__ import annotations

from litestar import Request

from portal.services.errors import DomainError, InvalidInput
from portal.services.scope import Client, Scope

#: Validation errors re-render the form with this status (htmx is configured to swap it).
INVALID = 422


async def form_values(request: Request, *names: str) -> dict[str, str]:
    """The named fields as strings ('' when missing); repeated fields keep the first value."""
    form = await request.form()
    values = {}
    for name in names:
        value = form.get(name, "")
        values[name] = value if isinstance(value, str) else ""
    return values


def field_errors(error: DomainError) -> dict[str, str]:
    if isinstance(error, InvalidInput):
        return dict(error.errors)
    return {error.field or "form": error.message}


def client_of(request: Request) -> Client:
    host = request.client.host if request.client else ""
    return Client(ip=host or "", user_agent=request.headers.get("user-agent", "")[:512])


async def reauthenticated(request: Request, values: dict[str, str]) -> Scope:
    """A sensitive form carries the password or a code when the session is not fresh: check
    it (mfa.reauthenticate raises when wrong) and let the rest of the request see the fresh
    scope. Without either, the scope is returned as it is and the service decides."""
    from portal.services import mfa

    scope = request.scope["user"]
    if mfa.is_fresh(scope) or not (values.get("password") or values.get("code")):
        return scope
    scope = await mfa.reauthenticate(request.app.state.settings, scope,
                                     values.get("password", ""), values.get("code", ""),
                                     client_of(request))
    request.scope["user"] = scope
    return scope


async def mfa_context(request: Request) -> dict:
    """What a form with the re-authentication step shows (partials/reauth_fields.html): the
    person's second factors and whether the session is fresh enough to skip it."""
    from portal.services import mfa

    scope = request.scope["user"]
    return {"mfa": await mfa.status(scope.identity_id), "fresh": mfa.is_fresh(scope)}
