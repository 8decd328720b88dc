"""Rules the database keeps even under concurrency (hand-written: Piccolo cannot express them)."""

from portal.tables.sql_migration import sql_migration

ID = "2026-11-25T14:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "invariants kept by the database"

FORWARDS = [
    # One identity per email, whatever its case.
    "CREATE UNIQUE INDEX identity_email_lower ON identity (lower(email))",
    "ALTER TABLE identity ADD CONSTRAINT identity_email_shape CHECK (email LIKE '%_@_%')",
    # The public "ID konta": exactly 12 lower-case hex characters.
    "ALTER TABLE account ADD CONSTRAINT account_public_id_hex CHECK (public_id ~ '^[0-9a-f]{12}$')",
    "ALTER TABLE account ADD CONSTRAINT account_mfa_policy CHECK (mfa_policy IN ('none', 'any', 'app'))",
    # One main company per account.
    "CREATE UNIQUE INDEX company_one_main_per_account ON company (account) WHERE is_main",
    # A company belongs to its account forever: no move, no merge.
    """
    CREATE FUNCTION company_account_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.account IS DISTINCT FROM OLD.account THEN
            RAISE EXCEPTION 'a company never changes its account' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER company_account_is_fixed BEFORE UPDATE OF account ON company
    FOR EACH ROW EXECUTE FUNCTION company_account_is_fixed()
    """,
    # Company search by name or NIP, scoped to the account.
    "CREATE INDEX company_account_name ON company (account, lower(name))",
    # The same email may be invited to an account only once while the invitation is pending.
    "CREATE UNIQUE INDEX invitation_one_pending ON invitation (account, lower(email))"
    " WHERE state = 'pending'",
    "CREATE INDEX audit_event_account_time ON audit_event (account_id, created_at DESC)",
    "CREATE INDEX audit_event_identity_time ON audit_event (identity_id, created_at DESC)",
    "CREATE INDEX outbox_email_pending ON outbox_email (next_attempt_at) WHERE sent_at IS NULL",
]

BACKWARDS = [
    "DROP INDEX outbox_email_pending",
    "DROP INDEX audit_event_identity_time",
    "DROP INDEX audit_event_account_time",
    "DROP INDEX invitation_one_pending",
    "DROP INDEX company_account_name",
    "DROP TRIGGER company_account_is_fixed ON company",
    "DROP FUNCTION company_account_is_fixed()",
    "DROP INDEX company_one_main_per_account",
    "ALTER TABLE account DROP CONSTRAINT account_mfa_policy",
    "ALTER TABLE account DROP CONSTRAINT account_public_id_hex",
    "ALTER TABLE identity DROP CONSTRAINT identity_email_shape",
    "DROP INDEX identity_email_lower",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
