"""Where a private_key_jwt client publishes its public keys (issue 12). Hand-written.

A client registers its keys either pasted (``jwks``, as before) or as a ``jwks_uri`` that the
provider fetches, caches and fetches again when an assertion names a key it does not know.
"""

from portal.tables.sql_migration import sql_migration

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
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
