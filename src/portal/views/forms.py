"""Reading forms and turning domain errors into field messages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from litestar import Request

from portal.security.passwords import BUSY, HashBusy
from portal.services import companies
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


def searches_companies(form: Mapping[str, object]) -> bool:
    """Whether a form with a company search (partials/company_picker.html) was sent to narrow
    its list rather than to do its work: "Szukaj firmy" was chosen, or Enter was pressed (the
    hidden default button) while the search box held text not yet searched for."""
    if form.get("company_search"):
        return True
    if not form.get("company_default"):
        return False
    typed, shown = form.get("company_q"), form.get("company_q_shown")
    return companies.clean_query(typed if isinstance(typed, str) else "") != (
        shown if isinstance(shown, str) else "")


def field_errors(error: DomainError) -> dict[str, str]:
    if isinstance(error, InvalidInput):
        return dict(error.errors)
    return {error.field or "form": error.message}


class HashingBusy(DomainError):
    """Hashing is at capacity (passwords.HashBusy), as a message at the form: "too many
    sign-ins right now, try again in a few seconds". Nothing was hashed or counted."""

    field = "form"
    message = BUSY


@asynccontextmanager
async def busy_at_the_form(request: Request, field: str = "form") -> AsyncIterator[None]:
    """Turn HashBusy inside into HashingBusy (a DomainError, so the form's own error branch
    shows it at ``field``) and remember it on the request: ``render`` then answers that form
    with 503 and Retry-After instead of 422, so a script or htmx sees a busy server, not bad
    input."""
    try:
        yield
    except HashBusy as busy:
        request.state.hash_busy = busy.retry_after
        raise HashingBusy(field=field) from None


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
    async with busy_at_the_form(request, "reauth"):
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
