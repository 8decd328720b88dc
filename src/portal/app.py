"""create_app(settings): routes, middleware, plugins; nothing else."""

from __future__ import annotations

import logging
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.datastructures.headers import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from portal import db
from portal.security.headers import security_headers
from portal.security.middleware import SessionMiddleware
from portal.settings import Settings
from portal.views.auth import AuthController, SessionController
from portal.views.errors import EXCEPTION_HANDLERS
from portal.views.health import healthz
from portal.views.home import PENDING_SCREENS, HomeController

HERE = Path(__file__).parent


def template_engine() -> JinjaTemplateEngine:
    environment = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(HERE / "templates"),
                PrefixLoader({"partials": FileSystemLoader(HERE / "partials")}),
            ]
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return JinjaTemplateEngine.from_environment(environment)


def create_app(settings: Settings) -> Litestar:
    if not settings.database_url:
        raise RuntimeError("create_app needs a database URL (the CLI starts the embedded one)")
    db.configure(settings.database_url)

    async def start() -> None:
        await db.start_pool()

    async def stop() -> None:
        await db.close_pool()

    static = create_static_files_router(
        path="/static",
        directories=[settings.static_dir],
        opt={"public": True},
        cache_control=CacheControlHeader(max_age=3600, public=True),
        include_in_schema=False,
    )
    return Litestar(
        route_handlers=[
            healthz,
            HomeController,
            AuthController,
            SessionController,
            *PENDING_SCREENS,
            static,
        ],
        middleware=[SessionMiddleware(settings)],
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_httponly=True,
            cookie_secure=settings.https,
            cookie_samesite="lax",
            exclude=["/api/v1/", "/oauth/token", "/healthz"],
        ),
        template_config=TemplateConfig(instance=template_engine()),
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[security_headers(settings)],
        on_startup=[start],
        on_shutdown=[stop],
        state=State({"settings": settings}),
        request_max_body_size=1024 * 1024,
        logging_config=None,
        openapi_config=None,
        debug=False,
    )


def app_from_env() -> Litestar:
    """Factory for uvicorn worker processes: settings come from the inherited environment."""
    logging.basicConfig(level=logging.INFO)
    return create_app(Settings.from_env())
