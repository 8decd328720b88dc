"""Piccolo configuration: the engine is portal.db.ENGINE, pointed at a database by the CLI."""

from piccolo.conf.apps import AppRegistry

from portal.db import ENGINE as DB

APP_REGISTRY = AppRegistry(apps=["portal.tables.piccolo_app"])

__all__ = ["APP_REGISTRY", "DB"]
