"""The token endpoint's two hot statements as functions whose plans are kept (issue 20).
Hand-written.

A refresh grant and a code exchange by a client with a secret are one statement each
(services/oidc_tokens.py): authenticate the client, spend the refresh token or the code
while its grant is live, store the next refresh token (and for a code the grant and its
audit event), read the person's claims. Every connection plans every statement again at
every execution (``plan_cache_mode = force_custom_plan``, db.SERVER_SETTINGS, for the lists
whose plans depend on the tenant's size); these statements look rows up by unique hashes and
ids only, so a plan made once per connection is as good, and planning them each time cost
PostgreSQL more CPU than executing them (bench/token.py). As PL/pgSQL functions with
``force_generic_plan`` for their own statements they are planned once per connection.

``oauth_refresh_for_secret(client_id, secret_hash, token_hash, next_hash, expires_at)``: no
row when the client did not authenticate; a row with ``rotated`` false when it did but the
token is not good (spent, unknown, expired, or its grant revoked: the caller's usual path
then detects reuse); otherwise the client, the grant and the claims.

``oauth_exchange_for_secret(client_id, secret_hash, code_hash, redirect_uri, challenge,
next_hash, expires_at, ip, user_agent)``: no row when the client did not authenticate (the
code is then left alone); otherwise the code is spent whatever else is wrong (single use),
and ``found``/``issued`` and the code's columns say what happened.

Changing the rules means a new migration replacing the functions (and the by-id statements
of services/oidc_tokens.py, used by private_key_jwt and public clients, alike).
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-04T12:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "oauth_refresh_for_secret and oauth_exchange_for_secret: plans kept"

_CALLER = """
    SELECT c.id, c.client_id, c.auth_method, c.id_token_signed_response_alg
    FROM oauth_client c
    WHERE c.client_id = p_client_id AND c.secret_hash = p_secret_hash
      AND c.disabled_at IS NULL
      AND c.auth_method IN ('client_secret_basic', 'client_secret_post')
"""

_CLAIMS = """
    i.email, i.email_verified_at IS NOT NULL,
    p.first_name, p.last_name, p.language,
    CASE WHEN 'accounts' = ANY (string_to_array(g.scope, ' '))
         THEN oauth_accounts_claim(i.id, g.account_public_id) END
"""

_CALLER_OUT = """caller_pk uuid, caller_client_id varchar, caller_auth_method varchar,
        caller_alg varchar"""
_GRANT_OUT = """grant_id uuid, identity uuid, session_hash varchar, scope text,
        account_public_id varchar, auth_time timestamptz, amr varchar[], acr varchar"""
_CLAIMS_OUT = """email varchar, email_verified boolean, first_name varchar, last_name varchar,
        language varchar, accounts_claim jsonb"""
_GRANT = "g.id, g.identity, g.session_hash, g.scope, g.account_public_id, g.auth_time, g.amr, g.acr"

FORWARDS = [
    f"""
    CREATE FUNCTION oauth_refresh_for_secret(
        p_client_id text, p_secret_hash text, p_token_hash text, p_next_hash text,
        p_expires_at timestamptz)
    RETURNS TABLE ({_CALLER_OUT}, rotated boolean, {_GRANT_OUT}, {_CLAIMS_OUT})
    LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
    #variable_conflict use_column
    BEGIN
        RETURN QUERY
        WITH caller AS ({_CALLER}), spent AS (
            UPDATE oauth_refresh_token t SET used_at = now()
            FROM oauth_grant g, caller
            WHERE t.token_hash = p_token_hash AND t.used_at IS NULL AND t.expires_at > now()
              AND g.id = t.family AND g.client = caller.id AND g.revoked_at IS NULL
            RETURNING g.*
        ), rotation AS (
            INSERT INTO oauth_refresh_token (id, created_at, token_hash, family, expires_at)
            SELECT gen_random_uuid(), now(), p_next_hash, spent.id, p_expires_at FROM spent
        )
        SELECT caller.id, caller.client_id, caller.auth_method,
               caller.id_token_signed_response_alg, g.id IS NOT NULL,
               {_GRANT}, {_CLAIMS}
        FROM caller
        LEFT JOIN spent g ON true
        LEFT JOIN identity i ON i.id = g.identity
        LEFT JOIN profile p ON p.identity = i.id;
    END
    $$
    """,  # noqa: S608  (built from constants)
    f"""
    CREATE FUNCTION oauth_exchange_for_secret(
        p_client_id text, p_secret_hash text, p_code_hash text, p_redirect_uri text,
        p_challenge text, p_next_hash text, p_expires_at timestamptz, p_ip text,
        p_user_agent text)
    RETURNS TABLE ({_CALLER_OUT}, found boolean, code_client uuid, fresh boolean,
        redirect_uri text, code_identity uuid, nonce text, issued boolean,
        {_GRANT_OUT}, {_CLAIMS_OUT})
    LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
    #variable_conflict use_column
    BEGIN
        RETURN QUERY
        WITH caller AS ({_CALLER}), used AS (
            UPDATE oauth_code SET used_at = now()
            WHERE code_hash = p_code_hash AND used_at IS NULL
              AND EXISTS (SELECT 1 FROM caller)
            RETURNING *
        ), g AS (
            INSERT INTO oauth_grant (id, created_at, client, identity, session_hash, scope,
                                     account_public_id, auth_time, amr, acr)
            SELECT used.id, now(), used.client, used.identity, used.session_hash, used.scope,
                   used.account_public_id, used.auth_time, used.amr, used.acr
            FROM used JOIN caller ON caller.id = used.client
            WHERE used.expires_at > now() AND used.redirect_uri = p_redirect_uri
              AND used.code_challenge = p_challenge
            RETURNING *
        ), rotation AS (
            INSERT INTO oauth_refresh_token (id, created_at, token_hash, family, expires_at)
            SELECT gen_random_uuid(), now(), p_next_hash, g.id, p_expires_at FROM g
        ), audited AS (
            INSERT INTO audit_event (id, created_at, tag, identity_id, ip, user_agent, data)
            SELECT gen_random_uuid(), now(), 'oauth:token:issue', g.identity, p_ip,
                   p_user_agent, jsonb_build_object('client_id', caller.client_id)
            FROM g JOIN caller ON true
        )
        SELECT caller.id, caller.client_id, caller.auth_method,
               caller.id_token_signed_response_alg, used.id IS NOT NULL, used.client,
               used.expires_at > now(), used.redirect_uri, used.identity, used.nonce,
               g.id IS NOT NULL, {_GRANT}, {_CLAIMS}
        FROM caller
        LEFT JOIN used ON true
        LEFT JOIN g ON true
        LEFT JOIN identity i ON i.id = g.identity
        LEFT JOIN profile p ON p.identity = i.id;
    END
    $$
    """,  # noqa: S608  (built from constants)
]

BACKWARDS = [
    "DROP FUNCTION oauth_exchange_for_secret(text, text, text, text, text, text, timestamptz,"
    " text, text)",
    "DROP FUNCTION oauth_refresh_for_secret(text, text, text, text, timestamptz)",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
