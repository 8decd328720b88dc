"""The session list on /security pages by key (issue 20). Hand-written.

A person (or a script signing in) may hold 10,000 sessions; the list shows the current one and
then the others most recently seen first, 20 a page. With (identity, last_seen_at, id) the
"next" page is the 20 index entries after the previous page's last session, instead of
sorting all of the person's sessions for every page. The (identity) index stays: Piccolo
made it for the foreign key. last_seen_at is written at most once a minute per session, so
the extra index costs little.
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-03T13:00:45:000000"
VERSION = "1.38.0"
DESCRIPTION = "session (identity, last_seen_at, id) for keyset pages"

FORWARDS = [
    "CREATE INDEX session_identity_seen_id ON session (identity, last_seen_at DESC, id DESC)",
]

BACKWARDS = [
    "DROP INDEX session_identity_seen_id",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
