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
#: the accounting offices they belong to (role "delegate", the office they come through, the
#: assigned companies at the lower of the client's ceiling and the assignment; the rule of
#: ``delegation_access``). It is the function ``oauth_accounts_claim`` (migrations
#: 2026-12-04T12:00 and 12:20, accounts in ``account.sort_name`` order), which keeps its
#: plan: planned inline, at every execution as every statement is here (db.SERVER_SETTINGS),
#: it cost more than the rest of the token request's database work together (issue 20).
CLAIM_COLUMNS = """
    i.email, i.email_verified_at IS NOT NULL AS email_verified,
    p.first_name, p.last_name, p.language,
    CASE WHEN 'accounts' = ANY (string_to_array(g.scope, ' '))
         THEN oauth_accounts_claim(i.id, g.account_public_id) END AS accounts_claim
"""


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
