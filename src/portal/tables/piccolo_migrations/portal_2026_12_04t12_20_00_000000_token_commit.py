"""Cheaper token statements, part two (issue 20). Hand-written.

- The ``accounts`` claim orders a person's accounts by the stored ``account.sort_name``
  (migration 2026-12-04T11:10) instead of computing ``portal_sort_key`` for each: that cost
  PostgreSQL about 0.08 ms per account listed at every token request.
- The refresh grant and the code exchange of a client with a secret commit without waiting
  for the WAL flush (``synchronous_commit = off`` for their own transaction, set inside the
  functions; about 0.17 ms of backend CPU per request: the WAL writer then flushes many
  commits at once). What a crash of the database server (or a failover to a standby that
  had not received them) can lose is the last fraction of a second of these commits, and
  then consistently (WAL order is kept): a rotation lost leaves the spent token unspent and
  the new one unknown, so that client signs its person in again;
  an exchange lost leaves the code unspent and its grant absent, so the tokens given stop
  working at their first use against the portal. No token becomes valid that was not, and
  single use and reuse detection hold, as they rest on row locks, not on durability. Every
  other write (sign-ins, their audit events, revocations) stays synchronous; a caller that
  runs one of these functions inside a larger transaction makes that whole transaction's
  commit asynchronous, so they are called on their own (services/oidc_tokens.py).
"""

import importlib

from portal.tables.sql_migration import sql_migration

ID = "2026-12-04T12:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "accounts claim by account.sort_name; token statements commit async"

_CLAIM = importlib.import_module(
    "portal.tables.piccolo_migrations.portal_2026_12_04t12_00_00_000000_token_claims")
_STATEMENTS = importlib.import_module(
    "portal.tables.piccolo_migrations.portal_2026_12_04t12_10_00_000000_token_statements")


def _replace(definition: str) -> str:
    return definition.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _sorted_by_column(definition: str) -> str:
    changed = (definition.replace("ORDER BY portal_sort_key(a.name), a.public_id",
                                  "ORDER BY a.sort_name, a.public_id")
               .replace("ORDER BY portal_sort_key(c.name), c.public_id",
                        "ORDER BY c.sort_name, c.public_id"))
    assert "portal_sort_key" not in changed
    return _replace(changed)


def _asynchronous_commit(definition: str) -> str:
    marker = "BEGIN\n        RETURN QUERY"
    assert marker in definition
    return _replace(definition.replace(marker, (
        "BEGIN\n"
        "        -- The transaction's own setting: it outlives the function, to the commit.\n"
        "        PERFORM set_config('synchronous_commit', 'off', true);\n"
        "        RETURN QUERY"), 1))


FORWARDS = [
    _sorted_by_column(_CLAIM.FORWARDS[0]),
    *(_asynchronous_commit(definition) for definition in _STATEMENTS.FORWARDS),
]

BACKWARDS = [
    *(_replace(definition) for definition in _STATEMENTS.FORWARDS),
    _replace(_CLAIM.FORWARDS[0]),
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
