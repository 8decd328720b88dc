"""Hand-written migrations: lists of SQL statements run forwards (and backwards) in order."""

from __future__ import annotations

from collections.abc import Sequence

from piccolo.apps.migrations.auto.migration_manager import MigrationManager


def sql_migration(migration_id: str, description: str, forwards: Sequence[str],
                  backwards: Sequence[str]) -> MigrationManager:
    """The MigrationManager of a migration written as SQL statements."""
    manager = MigrationManager(migration_id=migration_id, app_name="portal",
                               description=description)

    async def run(statements: Sequence[str]) -> None:
        from portal.db import ENGINE

        for statement in statements:
            await ENGINE.run_ddl(statement)

    async def run_forwards() -> None:
        await run(forwards)

    async def run_backwards() -> None:
        await run(backwards)

    manager.add_raw(run_forwards)
    manager.add_raw_backwards(run_backwards)
    return manager
