"""Accounting offices (issue 15): delegations, their companies and the office's assignments.
Hand-written.

The rules concurrency could break are kept here, whoever writes:

- one active delegation (pending or approved) per office × client: a partial unique index;
- a delegated company belongs to the client account (trigger ``delegation_company_in_client``);
- an assignment names a person of the office account, a company of the delegation and a
  level within the client's ceiling for it, in an approved delegation (trigger
  ``delegation_assignment_within_ceiling``, which takes the delegation's and the ceiling's
  rows ``FOR SHARE``, so a ceiling lowered or a delegation ended at the same moment waits for
  it, or it for them); the composite foreign key to ``delegation_company`` removes the
  assignments of a company taken out of the delegation;
- a lowered ceiling lowers the assignments above it in the same statement
  (trigger ``delegation_company_lowers_assignments``);
- a person removed from the office account loses the assignments with the membership (the
  foreign key cascades).
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-03T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "accounting offices: delegations, ceilings, assignments"

FORWARDS = [
    """
    CREATE FUNCTION access_level_rank(level text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
        SELECT array_position(ARRAY['view', 'edit', 'manage'], level)
    $$
    """,
    """
    CREATE TABLE delegation (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        created_at timestamptz NOT NULL DEFAULT now(),
        office uuid NOT NULL REFERENCES account (id) ON DELETE CASCADE,
        client uuid REFERENCES account (id) ON DELETE CASCADE,
        asked_for varchar(400) NOT NULL DEFAULT '',
        state varchar(16) NOT NULL DEFAULT 'pending',
        level varchar(16) NOT NULL DEFAULT 'view',
        ends_at timestamptz,
        requested_by uuid REFERENCES identity (id) ON DELETE SET NULL,
        decided_by uuid REFERENCES identity (id) ON DELETE SET NULL,
        decided_at timestamptz,
        ended_by uuid REFERENCES identity (id) ON DELETE SET NULL,
        ended_at timestamptz,
        CONSTRAINT delegation_known_state
            CHECK (state IN ('pending', 'approved', 'refused', 'ended')),
        CONSTRAINT delegation_known_level CHECK (level IN ('view', 'edit', 'manage')),
        CONSTRAINT delegation_not_to_itself CHECK (client IS NULL OR client <> office)
    )
    """,
    """
    CREATE UNIQUE INDEX delegation_one_active ON delegation (office, client)
    WHERE client IS NOT NULL AND state IN ('pending', 'approved')
    """,
    "CREATE INDEX delegation_office_time ON delegation (office, created_at DESC)",
    "CREATE INDEX delegation_client_state ON delegation (client, state)",
    """
    CREATE TABLE delegation_company (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        created_at timestamptz NOT NULL DEFAULT now(),
        delegation uuid NOT NULL REFERENCES delegation (id) ON DELETE CASCADE,
        company uuid NOT NULL REFERENCES company (id) ON DELETE CASCADE,
        level varchar(16) NOT NULL DEFAULT 'view',
        CONSTRAINT delegation_company_known_level CHECK (level IN ('view', 'edit', 'manage')),
        CONSTRAINT delegation_company_once UNIQUE (delegation, company)
    )
    """,
    "CREATE INDEX delegation_company_company ON delegation_company (company)",
    """
    CREATE TABLE delegation_assignment (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        created_at timestamptz NOT NULL DEFAULT now(),
        delegation uuid NOT NULL REFERENCES delegation (id) ON DELETE CASCADE,
        membership uuid NOT NULL REFERENCES membership (id) ON DELETE CASCADE,
        company uuid NOT NULL REFERENCES company (id) ON DELETE CASCADE,
        level varchar(16) NOT NULL DEFAULT 'view',
        CONSTRAINT delegation_assignment_known_level
            CHECK (level IN ('view', 'edit', 'manage')),
        CONSTRAINT delegation_assignment_once UNIQUE (delegation, membership, company),
        CONSTRAINT delegation_assignment_delegated_company FOREIGN KEY (delegation, company)
            REFERENCES delegation_company (delegation, company) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX delegation_assignment_membership ON delegation_assignment (membership)",
    "CREATE INDEX delegation_assignment_company ON delegation_assignment (company)",
    """
    CREATE FUNCTION delegation_company_in_client() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (
            SELECT 1 FROM delegation d JOIN company c ON c.account = d.client
            WHERE d.id = NEW.delegation AND c.id = NEW.company
        ) THEN
            RAISE EXCEPTION 'a delegated company belongs to the client account'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'delegation_company_in_client';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER delegation_company_in_client
    BEFORE INSERT OR UPDATE OF delegation, company ON delegation_company
    FOR EACH ROW EXECUTE FUNCTION delegation_company_in_client()
    """,
    """
    CREATE FUNCTION delegation_assignment_within_ceiling() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        ceiling text;
    BEGIN
        PERFORM 1 FROM delegation d JOIN membership m ON m.account = d.office
        WHERE d.id = NEW.delegation AND d.state = 'approved' AND m.id = NEW.membership
        FOR SHARE OF d;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'an assignment names a person of the office in an approved delegation'
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'delegation_assignment_within_ceiling';
        END IF;
        SELECT level INTO ceiling FROM delegation_company
        WHERE delegation = NEW.delegation AND company = NEW.company FOR SHARE;
        IF ceiling IS NULL OR access_level_rank(NEW.level) > access_level_rank(ceiling) THEN
            RAISE EXCEPTION 'an assignment stays within the client''s ceiling'
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'delegation_assignment_within_ceiling';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER delegation_assignment_within_ceiling
    BEFORE INSERT OR UPDATE ON delegation_assignment
    FOR EACH ROW EXECUTE FUNCTION delegation_assignment_within_ceiling()
    """,
    """
    CREATE FUNCTION delegation_company_lowers_assignments() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE delegation_assignment SET level = NEW.level
        WHERE delegation = NEW.delegation AND company = NEW.company
          AND access_level_rank(level) > access_level_rank(NEW.level);
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER delegation_company_lowers_assignments
    AFTER UPDATE OF level ON delegation_company
    FOR EACH ROW EXECUTE FUNCTION delegation_company_lowers_assignments()
    """,
]

BACKWARDS = [
    "DROP TABLE delegation_assignment",
    "DROP TABLE delegation_company",
    "DROP TABLE delegation",
    "DROP FUNCTION delegation_company_lowers_assignments()",
    "DROP FUNCTION delegation_assignment_within_ceiling()",
    "DROP FUNCTION delegation_company_in_client()",
    "DROP FUNCTION access_level_rank(text)",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
