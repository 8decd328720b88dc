"""What a token says about the person: the claims of each scope, read by the statement that
issues or checks the token (one round trip), from the person's own rows only."""

from __future__ import annotations

import json
from typing import Any

#: The person's claims, read by the same statement that issues or checks a token. ``i`` is
#: the identity, ``p`` its profile, ``g`` the grant (its scope and chosen account). The
#: ``accounts`` claim lists every account with the person's role, and the companies with
#: levels for the chosen account only (a person in hundreds of accounts must not get a
#: megabyte token); it comes only from the person's own memberships, and the delegations of
#: the accounting offices they belong to (``_DELEGATED``).
CLAIM_COLUMNS = """
    i.email, i.email_verified_at IS NOT NULL AS email_verified,
    p.first_name, p.last_name, p.language,
    CASE WHEN 'accounts' = ANY (string_to_array(g.scope, ' ')) THEN (
        SELECT coalesce(jsonb_agg(
            jsonb_build_object('id', a.public_id, 'name', a.name, 'role', m.role)
            || CASE WHEN a.public_id = g.account_public_id THEN jsonb_build_object(
                'companies', (
                    SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'key', c.key, 'name', c.name,
                        'level', CASE WHEN m.role IN ('owner', 'admin') THEN 'manage'
                                      ELSE ca.level END) ORDER BY c.sort_name, c.id), '[]'::jsonb)
                    FROM company c
                    LEFT JOIN company_access ca ON ca.company = c.id AND ca.membership = m.id
                    WHERE c.account = a.id
                      AND (m.role IN ('owner', 'admin') OR ca.id IS NOT NULL)))
               ELSE jsonb_build_object() END
            ORDER BY portal_sort_key(a.name), a.public_id), '[]'::jsonb)
        FROM membership m JOIN account a ON a.id = m.account
        WHERE m.identity = i.id) || DELEGATED
    END AS accounts_claim
"""

#: The client accounts the person works in through an accounting office (issue 15): role
#: "delegate" and the office they come through, and for the chosen account the assigned
#: companies at the effective level (the lower of the client's ceiling and the assignment).
#: The same rule as ``delegation_access``: approved, not past its end, the person still in the
#: office, with an assignment, and not a member of the client themselves.
_DELEGATED = """(
        SELECT coalesce(jsonb_agg(
            jsonb_build_object('id', c.public_id, 'name', c.name, 'role', 'delegate',
                               'office', jsonb_build_object('id', o.public_id, 'name', o.name))
            || CASE WHEN c.public_id = g.account_public_id THEN jsonb_build_object(
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
        JOIN membership om ON om.account = d.office AND om.identity = i.id
        WHERE d.state = 'approved' AND (d.ends_at IS NULL OR d.ends_at > now())
          AND EXISTS (SELECT 1 FROM delegation_assignment x
                      WHERE x.delegation = d.id AND x.membership = om.id)
          AND NOT EXISTS (SELECT 1 FROM membership own
                          WHERE own.account = d.client AND own.identity = i.id))"""

CLAIM_COLUMNS = CLAIM_COLUMNS.replace("DELEGATED", _DELEGATED)


def claims_of(row: dict[str, Any]) -> dict[str, Any]:
    """The person's claims for the grant's scopes, from a row with CLAIM_COLUMNS."""
    scopes = row["scope"].split()
    claims: dict[str, Any] = {"sub": str(row["identity"])}
    if "email" in scopes:
        claims["email"] = row["email"]
        claims["email_verified"] = row["email_verified"]
    if "profile" in scopes:
        first, last = row["first_name"] or "", row["last_name"] or ""
        claims.update({"name": f"{first} {last}".strip(), "given_name": first,
                       "family_name": last})
        if row["language"]:
            claims["locale"] = row["language"]
    if "accounts" in scopes:
        accounts = row["accounts_claim"]
        claims["accounts"] = json.loads(accounts) if isinstance(accounts, str) else accounts
        if row["account_public_id"]:
            claims["account"] = row["account_public_id"]
    return claims
