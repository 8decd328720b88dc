"""The catalogue, customer panel and support centre (issue 8), hand-written like the invariants:
two catalogue columns, the vendor's product list, and the rules the database keeps for
subscriptions, orders, tickets and their messages."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-26T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "catalogue, customer panel and support centre"

#: The vendor's product list as of this migration: slug, name, category, description,
#: has_trial, included (every account has it), product page, shop page, sign-in address.
#: ``portal.services.catalogue.APPLICATIONS`` holds the same entries (a test compares them).
PRODUCTS = [
    ("e-faktury", "e-Faktury", "finance",
     "Wystawianie, wysyłka i odbiór faktur, także przez KSeF, z kontrolą płatności.",
     True, False, "https://www.example.com/produkty/e-faktury",
     "https://sklep.example.com/produkty/e-faktury", "https://e-faktury.example.com/logowanie"),
    ("e-biuro", "e-Biuro", "office",
     "Wymiana dokumentów i wiadomości między biurem rachunkowym a jego klientami.",
     True, False, "https://www.example.com/produkty/e-biuro",
     "https://sklep.example.com/produkty/e-biuro", "https://e-biuro.example.com/logowanie"),
    ("e-deklaracje", "e-Deklaracje", "finance",
     "Przygotowanie i wysyłka deklaracji podatkowych, plików JPK i sprawozdań finansowych, "
     "z odbiorem UPO.",
     True, False, "https://www.example.com/produkty/e-deklaracje",
     "https://sklep.example.com/produkty/e-deklaracje",
     "https://e-deklaracje.example.com/logowanie"),
    ("e-dokumenty", "e-Dokumenty", "documents",
     "Elektroniczny obieg, archiwum i podpisywanie dokumentów firmy.",
     True, False, "https://www.example.com/produkty/e-dokumenty",
     "https://sklep.example.com/produkty/e-dokumenty",
     "https://e-dokumenty.example.com/logowanie"),
    ("e-place", "e-Płace", "hr",
     "Kadry i płace: umowy, listy płac, rozliczenia z ZUS i urzędem skarbowym.",
     True, False, "https://www.example.com/produkty/e-place",
     "https://sklep.example.com/produkty/e-place", "https://e-place.example.com/logowanie"),
    ("srodki-trwale", "Środki trwałe", "finance",
     "Ewidencja środków trwałych i wartości niematerialnych z planem amortyzacji.",
     True, False, "https://www.example.com/produkty/srodki-trwale",
     "https://sklep.example.com/produkty/srodki-trwale",
     "https://srodki-trwale.example.com/logowanie"),
    ("centrum-pomocy", "Centrum pomocy", "knowledge",
     "Poradniki, odpowiedzi na częste pytania i komunikaty o zmianach w przepisach.",
     False, True, "https://www.example.com/centrum-pomocy",
     "", "https://pomoc.example.com/logowanie"),
    ("dokumentacja", "Dokumentacja", "knowledge",
     "Podręczniki użytkownika aplikacji i opis interfejsów programistycznych (API).",
     False, True, "https://www.example.com/dokumentacja",
     "", "https://dokumentacja.example.com/logowanie"),
    ("akademia", "Akademia", "knowledge",
     "Szkolenia, webinary i kursy z certyfikatem.",
     False, True, "https://www.example.com/akademia",
     "", "https://akademia.example.com/logowanie"),
    ("spolecznosc", "Społeczność", "knowledge",
     "Forum, na którym użytkownicy i eksperci dzielą się wiedzą.",
     False, True, "https://www.example.com/spolecznosc",
     "", "https://spolecznosc.example.com/logowanie"),
    ("glos-klienta", "Głos klienta", "knowledge",
     "Zgłaszanie pomysłów i głosowanie na nowe funkcje aplikacji.",
     False, True, "https://www.example.com/glos-klienta",
     "", "https://glos-klienta.example.com/logowanie"),
    ("sklep", "Sklep online", "shop",
     "Zakup, przedłużanie i rozszerzanie licencji.",
     False, True, "https://sklep.example.com/",
     "", "https://sklep.example.com/logowanie"),
]

TICKET_CATEGORIES = "('technical', 'billing', 'access', 'licence', 'other')"

# An earlier ``portal demo`` may have inserted some of these slugs: they are brought up to this
# list (one row per slug, never a duplicate); a sign-in address set by hand is kept.
SEED = """
INSERT INTO application (id, created_at, slug, name, category, description, has_trial, included,
                         product_url, shop_url, open_url, position)
VALUES (gen_random_uuid(), now(), {}, {}, {}, {}, {}, {}, {}, {}, {}, {})
ON CONFLICT (slug) DO UPDATE SET
    name = EXCLUDED.name, category = EXCLUDED.category, description = EXCLUDED.description,
    has_trial = EXCLUDED.has_trial, included = EXCLUDED.included,
    product_url = EXCLUDED.product_url, shop_url = EXCLUDED.shop_url,
    position = EXCLUDED.position,
    open_url = CASE WHEN application.open_url = '' THEN EXCLUDED.open_url
                    ELSE application.open_url END
"""

FORWARDS = [
    "ALTER TABLE application ADD COLUMN included boolean NOT NULL DEFAULT false",
    "ALTER TABLE application ADD COLUMN shop_url varchar(500) NOT NULL DEFAULT ''",
    "ALTER TABLE application ADD CONSTRAINT application_slug_shape"
    " CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,49}$')",
    # A subscription belongs to one account and one product; a trial always ends.
    "ALTER TABLE subscription ALTER COLUMN account SET NOT NULL",
    "ALTER TABLE subscription ALTER COLUMN application SET NOT NULL",
    "ALTER TABLE subscription ADD CONSTRAINT subscription_dates"
    " CHECK (ends_on IS NULL OR ends_on >= starts_on)",
    "ALTER TABLE subscription ADD CONSTRAINT subscription_trial_ends"
    " CHECK (state <> 'trial' OR ends_on IS NOT NULL)",
    # Orders: known statuses, no negative amounts.
    "ALTER TABLE customer_order ALTER COLUMN account SET NOT NULL",
    "ALTER TABLE customer_order ADD CONSTRAINT customer_order_status"
    " CHECK (status IN ('new', 'paid', 'completed', 'cancelled'))",
    "ALTER TABLE customer_order ADD CONSTRAINT customer_order_total CHECK (total >= 0)",
    'ALTER TABLE order_item ALTER COLUMN "order" SET NOT NULL',
    "ALTER TABLE order_item ADD CONSTRAINT order_item_amounts"
    " CHECK (quantity > 0 AND unit_price >= 0)",
    "CREATE INDEX customer_order_account_time ON customer_order (account, created_at DESC)",
    "ALTER TABLE billing_profile ALTER COLUMN account SET NOT NULL",
    # Recently used applications: per person and account, newest first.
    "ALTER TABLE recent_application ALTER COLUMN identity SET NOT NULL",
    "ALTER TABLE recent_application ALTER COLUMN account SET NOT NULL",
    "ALTER TABLE recent_application ALTER COLUMN application SET NOT NULL",
    "CREATE INDEX recent_application_person ON recent_application"
    " (identity, account, used_at DESC)",
    # Tickets: known categories, a subject, a company of the ticket's own account only.
    f"UPDATE ticket SET category = 'other' WHERE category NOT IN {TICKET_CATEGORIES}",
    "ALTER TABLE ticket ALTER COLUMN category SET DEFAULT 'other'",
    f"ALTER TABLE ticket ADD CONSTRAINT ticket_category CHECK (category IN {TICKET_CATEGORIES})",
    "ALTER TABLE ticket ADD CONSTRAINT ticket_subject_present"
    " CHECK (char_length(btrim(subject)) > 0)",
    "ALTER TABLE ticket ALTER COLUMN account SET NOT NULL",
    """
    CREATE FUNCTION ticket_company_in_account() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.company IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM company WHERE id = NEW.company AND account = NEW.account
        ) THEN
            RAISE EXCEPTION 'a ticket names only a company of its own account'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER ticket_company_in_account BEFORE INSERT OR UPDATE OF company, account
    ON ticket FOR EACH ROW EXECUTE FUNCTION ticket_company_in_account()
    """,
    "CREATE INDEX ticket_account_time ON ticket (account, updated_at DESC)",
    "CREATE INDEX ticket_status_time ON ticket (status, updated_at DESC)",
    "ALTER TABLE ticket_message ALTER COLUMN ticket SET NOT NULL",
    "ALTER TABLE ticket_message ADD CONSTRAINT ticket_message_body"
    " CHECK (char_length(body) BETWEEN 1 AND 10000)",
]

BACKWARDS = [
    "ALTER TABLE ticket_message DROP CONSTRAINT ticket_message_body",
    "ALTER TABLE ticket_message ALTER COLUMN ticket DROP NOT NULL",
    "DROP INDEX ticket_status_time",
    "DROP INDEX ticket_account_time",
    "DROP TRIGGER ticket_company_in_account ON ticket",
    "DROP FUNCTION ticket_company_in_account()",
    "ALTER TABLE ticket ALTER COLUMN account DROP NOT NULL",
    "ALTER TABLE ticket DROP CONSTRAINT ticket_subject_present",
    "ALTER TABLE ticket DROP CONSTRAINT ticket_category",
    "ALTER TABLE ticket ALTER COLUMN category SET DEFAULT ''",
    "DROP INDEX recent_application_person",
    "ALTER TABLE recent_application ALTER COLUMN application DROP NOT NULL",
    "ALTER TABLE recent_application ALTER COLUMN account DROP NOT NULL",
    "ALTER TABLE recent_application ALTER COLUMN identity DROP NOT NULL",
    "ALTER TABLE billing_profile ALTER COLUMN account DROP NOT NULL",
    "DROP INDEX customer_order_account_time",
    "ALTER TABLE order_item DROP CONSTRAINT order_item_amounts",
    'ALTER TABLE order_item ALTER COLUMN "order" DROP NOT NULL',
    "ALTER TABLE customer_order DROP CONSTRAINT customer_order_total",
    "ALTER TABLE customer_order DROP CONSTRAINT customer_order_status",
    "ALTER TABLE customer_order ALTER COLUMN account DROP NOT NULL",
    "ALTER TABLE subscription DROP CONSTRAINT subscription_trial_ends",
    "ALTER TABLE subscription DROP CONSTRAINT subscription_dates",
    "ALTER TABLE subscription ALTER COLUMN application DROP NOT NULL",
    "ALTER TABLE subscription ALTER COLUMN account DROP NOT NULL",
    "ALTER TABLE application DROP CONSTRAINT application_slug_shape",
    "ALTER TABLE application DROP COLUMN shop_url",
    "ALTER TABLE application DROP COLUMN included",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def run():
        from piccolo.querystring import QueryString

        from portal.db import ENGINE

        for statement in FORWARDS:
            await ENGINE.run_ddl(statement)
        for position, product in enumerate(PRODUCTS):
            await ENGINE.run_querystring(QueryString(SEED, *product, position))

    async def run_backwards():
        from portal.db import ENGINE

        for statement in BACKWARDS:
            await ENGINE.run_ddl(statement)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
