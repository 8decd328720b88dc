"""Piccolo's app registration: the tables and where their migrations live."""

import os

from piccolo.conf.apps import AppConfig

from portal.tables import ALL_TABLES

APP_CONFIG = AppConfig(
    app_name="portal",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=ALL_TABLES,
    migration_dependencies=[],
    commands=[],
)
