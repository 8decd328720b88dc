"""A sign-in no longer rewrites every membership of a person in many accounts (issue 20).
Hand-written.

``membership.last_login_at`` (the people list's key for "by last sign-in", migration
2026-12-04T10:00) was copied from the identity by a trigger inside the sign-in itself: for a
person in 1,000 accounts (an accounting office's accountant) that was 1,000 row versions and
their index entries at every sign-in, 105 ms of the sign-in's one statement at vendor scale.
Now the trigger copies it at once only for a person in at most 20 accounts (nearly everyone:
the list is then exact at once); for more it notes the identity in
``membership_last_login_due`` and the background loop (services/membership.py
``copy_due_last_logins``, every 2 s) copies it. Until then only that person's place in the
"by last sign-in" order lags: the time shown comes from the identity itself.
"""

import importlib

from portal.tables.sql_migration import sql_migration

ID = "2026-12-04T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "membership.last_login_at copied later for a person in many accounts"

#: Up to this many memberships the copy is made in the sign-in's own statement.
AT_ONCE = 20

FORWARDS = [
    "CREATE TABLE membership_last_login_due ("
    "identity uuid PRIMARY KEY REFERENCES identity (id) ON DELETE CASCADE)",
    f"""
    CREATE OR REPLACE FUNCTION identity_last_login_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF (SELECT count(*) FROM (SELECT 1 FROM membership WHERE identity = NEW.id
                                  LIMIT {AT_ONCE + 1}) few) <= {AT_ONCE} THEN
            UPDATE membership SET last_login_at = NEW.last_login_at
            WHERE identity = NEW.id AND last_login_at IS DISTINCT FROM NEW.last_login_at;
        ELSE
            INSERT INTO membership_last_login_due (identity) VALUES (NEW.id)
            ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END $$
    """,
]

#: The copy-at-once function of migration 2026-12-04T10:00, as it was.
_EARLIER = next(
    definition.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    for definition in importlib.import_module(
        "portal.tables.piccolo_migrations.portal_2026_12_04t10_00_00_000000_people_pages"
    ).FORWARDS
    if "FUNCTION identity_last_login_changed()" in definition)

BACKWARDS = [
    _EARLIER,
    "UPDATE membership m SET last_login_at = i.last_login_at "
    "FROM membership_last_login_due d JOIN identity i ON i.id = d.identity "
    "WHERE m.identity = d.identity",
    "DROP TABLE membership_last_login_due",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
