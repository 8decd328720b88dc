"""API-key authentication: the ``Authorization: Bearer <secret>`` header, nowhere else."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from portal.api.errors import INVALID_KEY, MISSING_KEY, MISSING_SCOPE
from portal.services import api_keys


class TooManyRequests(HTTPException):
    status_code = 429


async def requires_api_key(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Authenticate the key (keys in URLs or cookies are ignored) and check the scope the
    handler declares in ``opt["api_scope"]``."""
    scheme, _, secret = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise NotAuthorizedException(MISSING_KEY,
                                     headers={"WWW-Authenticate": "Bearer"})
    try:
        per_minute = connection.app.state.settings.api_rate_per_minute
        address = connection.client.host if connection.client else ""
        principal = await api_keys.authenticate(secret.strip(), per_minute, address=address)
    except api_keys.InvalidKey:
        raise NotAuthorizedException(INVALID_KEY,
                                     headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
                                     ) from None
    except api_keys.RateLimited as limited:
        raise TooManyRequests(headers={"Retry-After": str(limited.retry_after)}) from None
    needed = handler.opt.get("api_scope", "read")
    if needed not in principal.scopes:
        raise PermissionDeniedException(MISSING_SCOPE, extra={"scope": needed})
    connection.scope.setdefault("state", {})["api_principal"] = principal


def principal_of(connection: ASGIConnection) -> api_keys.Principal:
    return connection.scope["state"]["api_principal"]
