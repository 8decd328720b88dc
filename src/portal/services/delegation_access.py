"""What an accounting office's person may do in a client account, read on every request.

The session loader (``sessions.load``) asks here when the person has no membership in the
session's account: an approved delegation that has not ended, of an office the person still
belongs to, with companies assigned to them. The effective level per company is the lower of
the client's ceiling and the office's assignment. Nothing is cached: ending a delegation,
lowering a ceiling, an assignment taken away or the person removed from the office counts at
the next request.

No other service is imported: sessions and accounts both build on this room.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from portal.services.scope import AccountRef, DelegationRef
from portal.tables import Delegation

#: A delegation counts while approved and before its end (the end of the chosen day).
LIVE = "d.state = 'approved' AND (d.ends_at IS NULL OR d.ends_at > now())"

_ACCESS = """
SELECT d.id AS delegation_id, o.id AS office_id, o.public_id AS office_public_id,
       o.name AS office_name, c.id AS client_id, c.public_id AS client_public_id,
       c.name AS client_name, c.mfa_policy AS client_mfa_policy,
       jsonb_object_agg(a.company::text, CASE
           WHEN access_level_rank(a.level) <= access_level_rank(dc.level) THEN a.level
           ELSE dc.level END) AS levels
FROM delegation d
JOIN account c ON c.id = d.client
JOIN account o ON o.id = d.office
JOIN membership m ON m.account = d.office AND m.identity = {}
JOIN delegation_assignment a ON a.delegation = d.id AND a.membership = m.id
JOIN delegation_company dc ON dc.delegation = d.id AND dc.company = a.company
WHERE CLIENT AND LIVE
  AND NOT EXISTS (SELECT 1 FROM membership own
                  WHERE own.account = d.client AND own.identity = m.identity)
GROUP BY d.id, o.id, c.id
ORDER BY portal_sort_key(o.name), d.id
""".replace("LIVE", LIVE)


@dataclass(frozen=True)
class DelegatedAccess:
    client: AccountRef
    client_mfa_policy: str
    delegation: DelegationRef


def _access(row: dict[str, Any]) -> DelegatedAccess:
    levels = row["levels"]
    levels = json.loads(levels) if isinstance(levels, str) else levels
    return DelegatedAccess(
        client=AccountRef(row["client_id"], row["client_public_id"], row["client_name"]),
        client_mfa_policy=row["client_mfa_policy"] or "none",
        delegation=DelegationRef(
            id=row["delegation_id"],
            office=AccountRef(row["office_id"], row["office_public_id"], row["office_name"],
                              is_accounting_office=True),
            company_levels={UUID(key): value for key, value in levels.items()},
        ),
    )


async def find(identity_id: UUID, *, client_id: UUID | None = None,
               public_id: str | None = None) -> DelegatedAccess | None:
    """The person's delegated access to one client account (by id or ID konta), or None."""
    if client_id is not None:
        rows = await Delegation.raw(_ACCESS.replace("CLIENT", "c.id = {}"), identity_id,
                                    client_id)
    else:
        rows = await Delegation.raw(_ACCESS.replace("CLIENT", "c.public_id = {}"), identity_id,
                                    public_id or "")
    return _access(rows[0]) if rows else None


async def every(identity_id: UUID) -> list[DelegatedAccess]:
    """Every client account the person may work in through an office (the switcher's group)."""
    rows = await Delegation.raw(_ACCESS.replace("CLIENT", "true"), identity_id)
    seen: set[UUID] = set()
    found = []
    for row in rows:
        if row["client_id"] not in seen:  # a person in two offices of one client: the first
            seen.add(row["client_id"])
            found.append(_access(row))
    return found
