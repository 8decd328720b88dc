"""Scopes for service-to-service calls (client_credentials, issue 12). Hand-written.

Staff choose, per confidential client, the scopes its client_credentials tokens may carry;
a client without any cannot use that grant.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "service scopes for client_credentials"

FORWARDS = [
    "ALTER TABLE oauth_client ADD COLUMN service_scopes varchar(64)[] NOT NULL DEFAULT '{}'",
    "ALTER TABLE oauth_client ADD CONSTRAINT oauth_client_public_has_no_service_scopes"
    " CHECK (auth_method <> 'none' OR cardinality(service_scopes) = 0)",
]

BACKWARDS = [
    "ALTER TABLE oauth_client DROP CONSTRAINT oauth_client_public_has_no_service_scopes",
    "ALTER TABLE oauth_client DROP COLUMN service_scopes",
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
