"""The algorithm a client's tokens are signed with (issue 20). Hand-written.

RS256 is what every client accepts; ES256, for the clients that say they accept it, costs a
fraction of an RSA signature. The signing keys are told apart by their JWK ``kty``.
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-03T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "id_token_signed_response_alg per client"

FORWARDS = [
    "ALTER TABLE oauth_client ADD COLUMN id_token_signed_response_alg varchar(8) NOT NULL"
    " DEFAULT 'RS256' CHECK (id_token_signed_response_alg IN ('RS256', 'ES256'))",
]

BACKWARDS = [
    "ALTER TABLE oauth_client DROP COLUMN id_token_signed_response_alg",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
