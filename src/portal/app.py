"""create_app(settings): routes, middleware, plugins; nothing else."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from litestar import Litestar
from litestar.datastructures import State
from litestar.datastructures.headers import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from portal import db, logs
from portal.api import app as api_app
from portal.i18n import when
from portal.security import passwords
from portal.services import background as work
from portal.services import identity, oidc_logout, sessions
from portal.settings import Settings
from portal.views.account import AccountController, AccountsController
from portal.views.api_keys import ApiKeysController
from portal.views.apps import AppsController
from portal.views.auth import AuthController, SessionController
from portal.views.companies import CompaniesController
from portal.views.customer import BillingController, OrdersController, ProductsController
from portal.views.dev import dev_mail
from portal.views.errors import EXCEPTION_HANDLERS
from portal.views.health import healthz
from portal.views.home import PENDING_SCREENS, HomeController
from portal.views.mfa import MfaLoginController, MfaSettingsController
from portal.views.oauth import OAuthController
from portal.views.offices import ClientOfficesController, OfficeClientsController
from portal.views.passkeys import PasskeyLoginController, PasskeySettingsController
from portal.views.profile import ProfileController, choose_language
from portal.views.security import SecurityController
from portal.views.staff import StaffController
from portal.views.staff_clients import StaffClientsController
from portal.views.support import SupportController
from portal.views.users import (
    InvitationLinkController,
    PendingInvitationsController,
    UsersController,
)
from portal.web.csrf import CsrfMiddleware
from portal.web.headers import security_headers
from portal.web.input import InputMiddleware
from portal.web.middleware import SessionMiddleware

HERE = Path(__file__).parent

#: Paths exempt from the CSRF checks: applications call them with their own authentication
#: (an API key, the OAuth client's credentials or a bearer token), never with the person's
#: cookies alone. Two more are OpenID Connect requests that a relying party may send as a
#: cross-site form POST (Core 3.1.2.1, RP-Initiated Logout 1.0 §2), so they cannot carry our
#: token: POST /oauth/authorize changes nothing the same request by GET would not (its
#: answer goes only to the client's registered redirect URI), and POST /oauth/logout only
#: asks the person to confirm. The person's own decisions (POST /oauth/consent and
#: POST /oauth/end-session) keep the check. The match is by prefix: no route of ours starts
#: with these two and means anything else.
CSRF_EXEMPT = ("/api/v1/", "/oauth/token", "/oauth/revoke", "/oauth/introspect",
               "/oauth/userinfo", "/healthz", "/oauth/authorize", "/oauth/logout")


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
    environment.filters["when"] = when
    return JinjaTemplateEngine.from_environment(environment)


def create_app(settings: Settings) -> Litestar:
    if not settings.database_url:
        raise RuntimeError("create_app needs a database URL (the CLI starts the embedded one)")
    db.configure(settings.database_url)
    sessions.ENDED_LISTENERS["oidc"] = oidc_logout.listener(settings)
    if settings.dev_hash_queue_size is not None:  # development and tests only (settings.py)
        passwords.QUEUE.max_queue = settings.dev_hash_queue_size

    background: list[asyncio.Task] = []

    async def start() -> None:
        await db.start_pool()
        background.extend(work.start(settings))

    async def stop() -> None:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
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
            ProfileController,
            choose_language,
            SecurityController,
            AccountController,
            AccountsController,
            CompaniesController,
            MfaLoginController,
            MfaSettingsController,
            PasskeySettingsController,
            PasskeyLoginController,
            OAuthController,
            StaffClientsController,
            AppsController,
            OrdersController,
            ProductsController,
            BillingController,
            SupportController,
            StaffController,
            ApiKeysController,
            UsersController,
            InvitationLinkController,
            PendingInvitationsController,
            OfficeClientsController,
            ClientOfficesController,
            api_app.api_router(),
            dev_mail,
            *PENDING_SCREENS,
            static,
        ],
        middleware=[InputMiddleware(), SessionMiddleware(settings),
                    CsrfMiddleware(settings, CSRF_EXEMPT)],
        template_config=TemplateConfig(instance=template_engine()),
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[security_headers(settings)],
        on_startup=[start],
        on_shutdown=[stop],
        state=State({"settings": settings}),
        request_max_body_size=1024 * 1024,
        logging_config=None,
        openapi_config=api_app.openapi_config(),
        include_in_schema=False,  # pages are not API; the API router opts back in
        debug=False,
    )


def app_from_env() -> Litestar:
    """Factory for uvicorn worker processes: settings come from the inherited environment."""
    logging.basicConfig(level=logging.INFO)
    logs.install()
    app = create_app(Settings.from_env())
    app.on_startup.append(lambda: settle(app.template_engine.engine))
    return app


def settle(environment: Environment) -> None:
    """Make a worker ready before its first request: every template compiled now (a page's
    first render compiled it and its partials) and the User-Agent parser's patterns (100 ms at
    the first session list), then what start-up made moved out of the garbage collector's
    sight (``gc.freeze``). The modules, routes and
    templates are most of a worker's heap and live as long as it does; without the freeze each
    full collection walked them all, a 60-100 ms pause every few hundred requests that showed
    as the p95 of the vendor-scale lists (BENCHMARKS.md)."""
    for name in environment.list_templates():
        environment.get_template(name)
    identity.describe_device("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36")
    gc.collect()  # the garbage of start-up goes first: what is frozen is never collected
    gc.freeze()
