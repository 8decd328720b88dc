"""The ``accounts`` claim as a function whose plan is kept (issue 20). Hand-written.

Every connection runs with ``plan_cache_mode = force_custom_plan`` (db.SERVER_SETTINGS: the
lists' plans depend on the tenant's size), so every statement is planned again at every
execution. The token statements read the ``accounts`` claim with two levels of subqueries,
and planning them cost PostgreSQL about 1.5 ms of CPU per token request, several times what
executing them costs (bench/token.py). The claim's plan does not depend on anyone's size (it
reads one person's memberships and delegations by index), so it lives here, in a PL/pgSQL
function that keeps its plans for the connection (``force_generic_plan`` for the function's
own statements only). The token statements call it; the claim's rules are the ones of
services/oidc_claims.py (the person's own memberships, the chosen account's companies with
levels, the accounting offices' delegations, Polish order). Changing them means a new
migration that replaces this function.
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-04T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "oauth_accounts_claim(identity, account): the accounts claim, plan kept"

FORWARDS = [
    """
    CREATE FUNCTION oauth_accounts_claim(p_identity uuid, p_account text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
    BEGIN
        RETURN (
            SELECT coalesce(jsonb_agg(
                jsonb_build_object('id', a.public_id, 'name', a.name, 'role', m.role)
                || CASE WHEN a.public_id = p_account THEN jsonb_build_object(
                    'companies', (
                        SELECT coalesce(jsonb_agg(jsonb_build_object(
                            'key', c.key, 'name', c.name,
                            'level', CASE WHEN m.role IN ('owner', 'admin') THEN 'manage'
                                          ELSE ca.level END) ORDER BY c.sort_name, c.id),
                            '[]'::jsonb)
                        FROM company c
                        LEFT JOIN company_access ca ON ca.company = c.id AND ca.membership = m.id
                        WHERE c.account = a.id
                          AND (m.role IN ('owner', 'admin') OR ca.id IS NOT NULL)))
                   ELSE jsonb_build_object() END
                ORDER BY portal_sort_key(a.name), a.public_id), '[]'::jsonb)
            FROM membership m JOIN account a ON a.id = m.account
            WHERE m.identity = p_identity
        ) || (
            SELECT coalesce(jsonb_agg(
                jsonb_build_object('id', c.public_id, 'name', c.name, 'role', 'delegate',
                                   'office', jsonb_build_object('id', o.public_id,
                                                                'name', o.name))
                || CASE WHEN c.public_id = p_account THEN jsonb_build_object(
                    'companies', (
                        SELECT coalesce(jsonb_agg(jsonb_build_object(
                            'key', co.key, 'name', co.name,
                            'level', CASE WHEN access_level_rank(da.level)
                                               <= access_level_rank(dc.level)
                                          THEN da.level ELSE dc.level END)
                            ORDER BY co.sort_name, co.id),
                            '[]'::jsonb)
                        FROM delegation_assignment da
                        JOIN delegation_company dc
                          ON dc.delegation = da.delegation AND dc.company = da.company
                        JOIN company co ON co.id = da.company
                        WHERE da.delegation = d.id AND da.membership = om.id))
                   ELSE jsonb_build_object() END
                ORDER BY portal_sort_key(c.name), c.public_id), '[]'::jsonb)
            FROM delegation d
            JOIN account c ON c.id = d.client
            JOIN account o ON o.id = d.office
            JOIN membership om ON om.account = d.office AND om.identity = p_identity
            WHERE d.state = 'approved' AND (d.ends_at IS NULL OR d.ends_at > now())
              AND EXISTS (SELECT 1 FROM delegation_assignment x
                          WHERE x.delegation = d.id AND x.membership = om.id)
              AND NOT EXISTS (SELECT 1 FROM membership own
                              WHERE own.account = d.client AND own.identity = p_identity)
        );
    END
    $$
    """,
]

BACKWARDS = [
    "DROP FUNCTION oauth_accounts_claim(uuid, text)",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
