"""The API router mounted at /api/v1, and its OpenAPI document."""

from __future__ import annotations

from litestar import MediaType, Request, Response, Router
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from portal.api.auth import requires_api_key
from portal.api.controllers import AccountApi, AuditApi, CompaniesApi, PeopleApi
from portal.services.errors import DomainError, Forbidden, InvalidInput, NotFound

PREFIX = "/api/v1"


def api_router() -> Router:
    return Router(path=PREFIX, route_handlers=[AccountApi, CompaniesApi, PeopleApi, AuditApi],
                  guards=[requires_api_key], security=[{"apiKey": []}], include_in_schema=True,
                  exception_handlers={DomainError: domain_error})


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Portal API",
        version="1.0",
        description=("The account's data for integrations. Authenticate with an API key made "
                     "at /api-keys: `Authorization: Bearer pak_...`. Errors are JSON: "
                     '`{"error": {"status", "code", "message", "fields"}}`.'),
        path=PREFIX + "/schema",
        render_plugins=[JsonRenderPlugin()],
        components=Components(security_schemes={
            "apiKey": SecurityScheme(type="http", scheme="bearer",
                                     description="An API key: pak_<key id>_<secret>")}),
    )


def domain_error(_: Request, error: DomainError) -> Response:
    """Rules that said no, as the API's JSON error."""
    if isinstance(error, NotFound):
        status, code = 404, "not_found"
    elif isinstance(error, Forbidden) or type(error).__name__ == "NotAllowed":
        status, code = 403, "forbidden"
    else:
        status, code = 422, "invalid"
    fields = dict(error.errors) if isinstance(error, InvalidInput) else (
        {error.field: error.message} if error.field else None)
    body = {"error": {"status": status, "code": code, "message": error.message,
                      "fields": fields}}
    return Response(body, status_code=status, media_type=MediaType.JSON)
