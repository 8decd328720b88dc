"""Where a private_key_jwt client publishes its public keys (issue 12). Hand-written.

A client registers its keys either pasted (``jwks``, as before) or as a ``jwks_uri`` that the
provider fetches, caches and fetches again when an assertion names a key it does not know.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T08:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "jwks_uri for private_key_jwt clients"

FORWARDS = [
    "ALTER TABLE oauth_client ADD COLUMN jwks_uri text NOT NULL DEFAULT ''",
]

BACKWARDS = [
    "ALTER TABLE oauth_client DROP COLUMN jwks_uri",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def run():
        from portal.db import ENGINE

        for statement in FORWARDS:
            await ENGINE.run_ddl(statement)

    async def run_backwards():
        from portal.db import ENGINE

        for statement in BACKWARDS:
            await ENGINE.run_ddl(statement)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
