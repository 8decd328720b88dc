"""The people list pages by key in every sort order (issue 20). Hand-written.

An accounting office may hold 5,000 people; the list showed 25 of them after sorting all 5,000
for every page (a window count, OFFSET). Each sort now has an index whose columns are its keys
(ending in the id), so a page — first, last, next or previous — is 25 entries read along the
index from a point, in either direction, and the count is an index-only scan.

- ``membership.last_login_at``: the person's last sign-in, copied from ``identity`` (the
  ``membership_last_login`` triggers: on insert, and when the identity's sign-in changes), so
  "by last sign-in" is an index order too. It is written once per sign-in per account of the
  person (one row for most people).
- People without a name, or who never signed in, come last in both directions of their sort:
  the keys are ``coalesce(sort_name, U+10FFFF)`` ascending, ``coalesce(sort_name, '')``
  descending and ``coalesce(last_login_at, '-infinity')`` descending, never NULL, so a row
  comparison ``(keys) > (edge keys)`` is exact.
- Emails sort by their bytes (``search_text`` starts with the lower-cased email).

``(account, sort_name, id)`` (the polish_order migration) is replaced by the two name indexes.
Pending invitations are few per account; ``invitation_one_pending (account, lower(email))``
serves them.
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-04T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "people: keyset indexes for every sort, membership.last_login_at"

FORWARDS = [
    "ALTER TABLE membership ADD COLUMN last_login_at timestamptz",
    "UPDATE membership m SET last_login_at = i.last_login_at FROM identity i "
    "WHERE i.id = m.identity AND i.last_login_at IS NOT NULL",
    """
    CREATE FUNCTION membership_last_login() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.last_login_at := (SELECT i.last_login_at FROM identity i WHERE i.id = NEW.identity);
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER membership_last_login BEFORE INSERT ON membership "
    "FOR EACH ROW EXECUTE FUNCTION membership_last_login()",
    """
    CREATE FUNCTION identity_last_login_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE membership SET last_login_at = NEW.last_login_at
        WHERE identity = NEW.id AND last_login_at IS DISTINCT FROM NEW.last_login_at;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER membership_last_login AFTER UPDATE OF last_login_at ON identity "
    "FOR EACH ROW WHEN (OLD.last_login_at IS DISTINCT FROM NEW.last_login_at) "
    "EXECUTE FUNCTION identity_last_login_changed()",
    "CREATE INDEX membership_people_email ON membership "
    "(account, (search_text COLLATE \"C\"), id) INCLUDE (role)",
    "CREATE INDEX membership_people_name ON membership "
    "(account, coalesce(sort_name, E'\\U0010FFFF'), (search_text COLLATE \"C\"), id)",
    "CREATE INDEX membership_people_name_desc ON membership "
    "(account, coalesce(sort_name, ''), (search_text COLLATE \"C\"), id)",
    "CREATE INDEX membership_people_role ON membership "
    "(account, (CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END), "
    "(search_text COLLATE \"C\"), id)",
    "CREATE INDEX membership_people_last_login ON membership "
    "(account, coalesce(last_login_at, '-infinity'), (search_text COLLATE \"C\"), id)",
    "CREATE INDEX membership_people_newest ON membership (account, created_at, id)",
    "DROP INDEX membership_account_sort_name_id",
]

BACKWARDS = [
    "CREATE INDEX membership_account_sort_name_id ON membership (account, sort_name, id)",
    "DROP INDEX membership_people_newest",
    "DROP INDEX membership_people_last_login",
    "DROP INDEX membership_people_role",
    "DROP INDEX membership_people_name_desc",
    "DROP INDEX membership_people_name",
    "DROP INDEX membership_people_email",
    "DROP TRIGGER membership_last_login ON identity",
    "DROP FUNCTION identity_last_login_changed()",
    "DROP TRIGGER membership_last_login ON membership",
    "DROP FUNCTION membership_last_login()",
    "ALTER TABLE membership DROP COLUMN last_login_at",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
