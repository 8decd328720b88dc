"""OAuth grants: one row per authorization a client got, holding what was granted and whether
it is revoked; refresh tokens become its rotations (issue 19, finding 6). Hand-written.

A reuse of a code or refresh token used to revoke the family's token rows, which a concurrent
winner could outrun by storing its new token a moment later. Now revocation is one flag on the
grant, checked at every use of any token of the family (refresh, userinfo, introspection), so
what is stored after the revocation is dead too. Existing families become grants (revoked when
any of their tokens was, as every revocation was family-wide); their per-grant columns move
from the token rows to the grant.
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-01T23:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "oauth grants with a family-wide revocation"

FORWARDS = [
    """
    CREATE TABLE oauth_grant (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
        client uuid NOT NULL REFERENCES oauth_client (id) ON UPDATE CASCADE ON DELETE CASCADE,
        identity uuid REFERENCES identity (id) ON UPDATE CASCADE ON DELETE CASCADE,
        session_hash varchar(64) NOT NULL DEFAULT '',
        scope text NOT NULL DEFAULT '',
        account_public_id varchar(12),
        auth_time timestamptz,
        amr varchar(16)[] NOT NULL DEFAULT '{}',
        acr varchar(64) NOT NULL DEFAULT '',
        revoked_at timestamptz
    )
    """,
    "CREATE INDEX oauth_grant_identity_client ON oauth_grant (identity, client)",
    "CREATE INDEX oauth_grant_session_hash ON oauth_grant (session_hash)",
    """
    INSERT INTO oauth_grant (id, created_at, client, identity, session_hash, scope,
                             account_public_id, auth_time, amr, acr, revoked_at)
    SELECT DISTINCT ON (family) family, min(created_at) OVER w, client, identity, session_hash,
           scope, account_public_id, auth_time, amr, acr, max(revoked_at) OVER w
    FROM oauth_refresh_token
    WHERE client IS NOT NULL
    WINDOW w AS (PARTITION BY family)
    ORDER BY family, created_at
    """,
    "DELETE FROM oauth_refresh_token WHERE client IS NULL",
    "ALTER TABLE oauth_refresh_token ALTER COLUMN family DROP DEFAULT",
    "ALTER TABLE oauth_refresh_token ADD CONSTRAINT oauth_refresh_token_family_fkey"
    " FOREIGN KEY (family) REFERENCES oauth_grant (id) ON UPDATE CASCADE ON DELETE CASCADE",
    "ALTER TABLE oauth_refresh_token DROP COLUMN client, DROP COLUMN identity,"
    " DROP COLUMN session_hash, DROP COLUMN scope, DROP COLUMN account_public_id,"
    " DROP COLUMN auth_time, DROP COLUMN amr, DROP COLUMN acr, DROP COLUMN revoked_at",
]

BACKWARDS = [
    "ALTER TABLE oauth_refresh_token"
    " ADD COLUMN client uuid REFERENCES oauth_client (id) ON UPDATE CASCADE ON DELETE CASCADE,"
    " ADD COLUMN identity uuid REFERENCES identity (id) ON UPDATE CASCADE ON DELETE CASCADE,"
    " ADD COLUMN session_hash varchar(64) NOT NULL DEFAULT '',"
    " ADD COLUMN scope text NOT NULL DEFAULT '',"
    " ADD COLUMN account_public_id varchar(12),"
    " ADD COLUMN auth_time timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " ADD COLUMN amr varchar(16)[] NOT NULL DEFAULT '{}',"
    " ADD COLUMN acr varchar(64) NOT NULL DEFAULT '',"
    " ADD COLUMN revoked_at timestamptz",
    """
    UPDATE oauth_refresh_token t SET client = g.client, identity = g.identity,
        session_hash = g.session_hash, scope = g.scope, account_public_id = g.account_public_id,
        auth_time = coalesce(g.auth_time, g.created_at), amr = g.amr, acr = g.acr,
        revoked_at = g.revoked_at
    FROM oauth_grant g WHERE g.id = t.family
    """,
    "CREATE INDEX oauth_refresh_token_identity ON oauth_refresh_token (identity)",
    "ALTER TABLE oauth_refresh_token DROP CONSTRAINT oauth_refresh_token_family_fkey",
    "ALTER TABLE oauth_refresh_token ALTER COLUMN family SET DEFAULT gen_random_uuid()",
    "DROP TABLE oauth_grant",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
