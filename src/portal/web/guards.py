"""Route guards: who may enter. Every non-public route carries one (a test walks the table).

Handlers declare what they need in ``opt``:
  ``permission``: a Permission the current membership must hold in the current account;
  ``without_account``: True when a signed-in person with no account yet may enter too (the
  handler then shows what needs no account: the catalogue, the help centre).
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from portal.security.permissions import Permission
from portal.services.scope import Scope


class NoAccount(PermissionDeniedException):
    """Signed in, but the person has no account yet: lead them to /accounts/new."""


class MfaEnrolmentRequired(PermissionDeniedException):
    """The current account demands a second factor the person has not set up yet."""


def current_scope(connection: ASGIConnection) -> Scope | None:
    return connection.scope.get("user")  # set by SessionMiddleware


async def requires_identity(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if current_scope(connection) is None:
        raise NotAuthorizedException("sign-in required")


async def requires_permission(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Sign-in plus the handler's ``opt["permission"]`` in the current account."""
    scope = current_scope(connection)
    if scope is None:
        raise NotAuthorizedException("sign-in required")
    permission = handler.opt.get("permission")
    if not isinstance(permission, Permission):
        raise PermissionDeniedException("route declares no permission")
    if permission is Permission.STAFF:
        if not scope.can(permission):
            raise PermissionDeniedException("staff only")
        return
    if scope.account is None:
        if handler.opt.get("without_account"):
            return
        raise NoAccount("no account yet")
    if not scope.meets_account_mfa_policy:
        raise MfaEnrolmentRequired(scope.account_mfa_policy)
    if not scope.can(permission):
        raise PermissionDeniedException("not allowed in this account")


#: The guards a test accepts as protection.
PROTECTING_GUARDS = (requires_identity, requires_permission)
