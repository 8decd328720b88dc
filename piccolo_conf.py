"""For the ``piccolo`` CLI run from the repository root, e.g.
``piccolo migrations new portal --auto``. Set PORTAL_DATABASE_URL first;
the app itself uses portal.piccolo_conf."""

from portal.db import configure
from portal.piccolo_conf import APP_REGISTRY, DB
from portal.settings import Settings

configure(Settings.from_env().database_url or "postgresql://postgres@127.0.0.1:5432/portal")

__all__ = ["APP_REGISTRY", "DB"]
