"""Reading forms and turning domain errors into field messages."""

from __future__ import annotations

from litestar import Request

from portal.services.errors import DomainError, InvalidInput
from portal.services.scope import Client

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
