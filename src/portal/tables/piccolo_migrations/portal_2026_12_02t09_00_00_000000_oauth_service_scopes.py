"""Scopes for service-to-service calls (client_credentials, issue 12). Hand-written.

Staff choose, per confidential client, the scopes its client_credentials tokens may carry;
a client without any cannot use that grant.
"""

from portal.tables.sql_migration import sql_migration

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
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
