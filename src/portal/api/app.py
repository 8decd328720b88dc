"""The API router mounted at /api/v1, and its OpenAPI document."""

from __future__ import annotations

from litestar import Router
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from portal.api.auth import requires_api_key
from portal.api.controllers import (
    AccountApi,
    AuditApi,
    CompaniesApi,
    DelegationsApi,
    PeopleApi,
)
from portal.api.errors import from_domain_error
from portal.services.errors import DomainError

PREFIX = "/api/v1"


def api_router() -> Router:
    return Router(path=PREFIX, route_handlers=[AccountApi, CompaniesApi, PeopleApi, AuditApi,
                                                DelegationsApi],
                  guards=[requires_api_key], security=[{"apiKey": []}], include_in_schema=True,
                  exception_handlers={DomainError: from_domain_error})


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Portal API",
        version="1.0",
        description=("The account's data for integrations. Authenticate with an API key made "
                     "at /api-keys: `Authorization: Bearer pak_...`. Every error, whatever its "
                     'status, is `{"error": {"status", "code", "message", "fields"}}`: '
                     "`fields` maps each field of an input error (schema or rule) to its "
                     "message and is empty otherwise; messages are Polish, or English when "
                     "`Accept-Language` asks for it."),
        path=PREFIX + "/schema",
        render_plugins=[JsonRenderPlugin()],
        components=Components(security_schemes={
            "apiKey": SecurityScheme(type="http", scheme="bearer",
                                     description="An API key: pak_<key id>_<secret>")}),
    )
