"""People of an account: rules the database keeps under concurrency (hand-written, raw SQL).

- An account keeps at least one owner. Every change that takes the owner role away (a demotion,
  a removal, leaving) first locks the account row, so two owners demoting each other at the
  same moment are serialised and the second one sees that it would be the last. The service
  takes the same lock first to answer with a clear message; this trigger makes it true.
  Deleting the account itself, or the identity (support staff, on request), cascades freely.
- A company access always points at a company of the membership's own account.
- Pending invitations are looked up by email (the invitee's account switcher).
- ``membership.search_text`` is the lower-cased "email first-name last-name" of the person, kept
  by triggers, so searching 10,000 people of an account is a plain LIKE over one column
  (lower-casing every row's email and name per keystroke costs ten times more).
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-11-26T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "people of an account: one owner left, company access in the account, search"

FORWARDS = [
    """
    CREATE FUNCTION membership_keeps_an_owner() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.role <> 'owner' OR (TG_OP = 'UPDATE' AND NEW.role = 'owner') THEN
            IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
            RETURN NEW;
        END IF;
        -- The account row is the lock that serialises owner changes of one account.
        PERFORM 1 FROM account WHERE id = OLD.account FOR NO KEY UPDATE;
        IF NOT FOUND THEN  -- the account itself is being deleted
            RETURN OLD;
        END IF;
        IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM identity WHERE id = OLD.identity) THEN
            RETURN OLD;  -- the identity is being deleted by support staff
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM membership
            WHERE account = OLD.account AND role = 'owner' AND id <> OLD.id
        ) THEN
            RAISE EXCEPTION 'an account keeps at least one owner'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'membership_keeps_an_owner';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER membership_keeps_an_owner BEFORE UPDATE OF role OR DELETE ON membership
    FOR EACH ROW EXECUTE FUNCTION membership_keeps_an_owner()
    """,
    """
    CREATE FUNCTION company_access_same_account() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (
            SELECT 1 FROM membership m JOIN company c ON c.account = m.account
            WHERE m.id = NEW.membership AND c.id = NEW.company
        ) THEN
            RAISE EXCEPTION 'a company access stays inside its account'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'company_access_same_account';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER company_access_same_account BEFORE INSERT OR UPDATE ON company_access
    FOR EACH ROW EXECUTE FUNCTION company_access_same_account()
    """,
    "CREATE INDEX invitation_pending_email ON invitation (lower(email)) WHERE state = 'pending'",
    "ALTER TABLE membership ADD COLUMN search_text text NOT NULL DEFAULT ''",
    """
    CREATE FUNCTION person_search_text(person uuid) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT lower(i.email || ' ' || coalesce(p.first_name, '') || ' '
                     || coalesce(p.last_name, ''))
        FROM identity i LEFT JOIN profile p ON p.identity = i.id WHERE i.id = person
    $$
    """,
    """
    CREATE FUNCTION membership_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_text := coalesce(person_search_text(NEW.identity), '');
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER membership_search_text BEFORE INSERT OR UPDATE OF identity ON membership
    FOR EACH ROW EXECUTE FUNCTION membership_search_text()
    """,
    """
    CREATE FUNCTION person_search_text_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        person uuid := CASE WHEN TG_TABLE_NAME = 'identity' THEN NEW.id ELSE NEW.identity END;
    BEGIN
        UPDATE membership SET search_text = coalesce(person_search_text(person), '')
        WHERE identity = person;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER profile_search_text AFTER INSERT OR UPDATE OF first_name, last_name
    ON profile FOR EACH ROW EXECUTE FUNCTION person_search_text_changed()
    """,
    """
    CREATE TRIGGER identity_search_text AFTER UPDATE OF email ON identity
    FOR EACH ROW EXECUTE FUNCTION person_search_text_changed()
    """,
    "UPDATE membership SET search_text = coalesce(person_search_text(identity), '')",
    "ALTER TABLE invitation ADD CONSTRAINT invitation_levels_object"
    " CHECK (jsonb_typeof(company_levels) = 'object')",
]

BACKWARDS = [
    "DROP TRIGGER identity_search_text ON identity",
    "DROP TRIGGER profile_search_text ON profile",
    "DROP FUNCTION person_search_text_changed()",
    "DROP TRIGGER membership_search_text ON membership",
    "DROP FUNCTION membership_search_text()",
    "DROP FUNCTION person_search_text(uuid)",
    "ALTER TABLE membership DROP COLUMN search_text",
    "ALTER TABLE invitation DROP CONSTRAINT invitation_levels_object",
    "DROP INDEX invitation_pending_email",
    "DROP TRIGGER company_access_same_account ON company_access",
    "DROP FUNCTION company_access_same_account()",
    "DROP TRIGGER membership_keeps_an_owner ON membership",
    "DROP FUNCTION membership_keeps_an_owner()",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
