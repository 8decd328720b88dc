"""Indexes for vendor scale (issue 20). Hand-written.

Measured on 2,000,000 audit events and an account with 20,000 companies (bench/scale.py):

- sign-in asks whether this browser signed in before (``services.identity._is_new_device``):
  without an index on the identity, tag and user agent that scanned every
  ``identity:login:success`` event of the person;
- the audit log pages by (created_at, id) newest first, and the CSV export walks it by key:
  the index carries the id, so no sort is needed and a page's ids come from the index alone;
- the company list orders by lower(name) and then id: with the id in the index the first and
  the last page are both read in index order instead of sorting the account's companies.

The old (account_id, created_at) and (account, lower(name)) indexes are prefixes of the new
ones and are dropped.
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-02T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes for vendor scale"

FORWARDS = [
    "CREATE INDEX audit_event_identity_tag_agent ON audit_event (identity_id, tag, user_agent)",
    "CREATE INDEX audit_event_account_time_id ON audit_event "
    "(account_id, created_at DESC, id DESC)",
    "DROP INDEX audit_event_account_time",
    "CREATE INDEX company_account_name_id ON company (account, lower(name), id)",
    "DROP INDEX company_account_name",
]

BACKWARDS = [
    "CREATE INDEX company_account_name ON company (account, lower(name))",
    "DROP INDEX company_account_name_id",
    "CREATE INDEX audit_event_account_time ON audit_event (account_id, created_at DESC)",
    "DROP INDEX audit_event_account_time_id",
    "DROP INDEX audit_event_identity_tag_agent",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
