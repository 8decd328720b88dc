"""Names sort as a Polish reader expects, in any PostgreSQL (issue 17; issue 20's keyset pages).

The databases are created with the C.UTF-8 collation (the embedded one too), which orders by
code point: "Ślusarstwo Kowalski" after "Zakład Fryzjerski", "Łódź" after every Z. An ICU
``pl-PL`` collation would fix that, but the embedded PostgreSQL (pgserver) is built without ICU
(``pg_collation`` holds 6 libc entries), so a collation cannot be the one answer. Instead
``portal_sort_key(name)`` turns a name into text whose byte order (``COLLATE "C"``) is the
Polish alphabetical order, the same on every server:

- case is ignored (letters are lower-cased);
- each Polish letter follows its base letter as a letter of its own (a < ą < b, l < ł < m,
  z < ź < ż): ``ą`` becomes ``a~``, ``ż`` ``z~~``, and ``~`` (after every ASCII letter and
  digit) makes "Ślusarstwo" follow every "S…" word and come before "T…";
- other Latin letters with diacritics (é, ü, č, ñ, ...) sort with their base letter, as an
  English or Polish reader would look for them; a typed ``~`` counts as a space.

English UI users see the same order: it is the English A-Z, with each Polish letter right
after the words of its base letter, which is where an English reader of Polish names looks.

The key is stored where lists page by it: ``company.sort_name`` (a generated column) and
``membership.sort_name`` (the person's "first last" name, NULL when they gave none, kept by the
triggers that keep ``search_text``). The indexes ``(account, sort_name, id)`` serve the first,
the last and every next page by key (keyset) in both directions, without sorting.
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-03T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Polish alphabetical order: portal_sort_key and sort_name columns"

#: Polish letters and what they become: the base letter, then one "~" per step after it.
POLISH = [("ą", "a~"), ("ć", "c~"), ("ę", "e~"), ("ł", "l~"), ("ń", "n~"), ("ó", "o~"),
          ("ś", "s~"), ("ź", "z~"), ("ż", "z~~")]
#: Other letters with diacritics, folded onto their base letter (both cases); "~" is a space.
FOLD_FROM = "ÁÀÂÄÃÅáàâäãåÇçČčĎďÉÈÊËĚéèêëěÍÌÎÏíìîïĹĺĽľŇňÑñÖÔÒÕŐöôòõőŔŕŘřŠšŤťÜÚÙÛŮŰüúùûůűÝýŽž~"
FOLD_TO = "AAAAAAaaaaaaCcCcDdEEEEEeeeeeIIIIiiiiLlLlNnNnOOOOOoooooRrRrSsTtUUUUUUuuuuuuYyZz "


def _sort_key_sql() -> str:
    assert len(FOLD_FROM) == len(FOLD_TO)
    text = f"translate(name, '{FOLD_FROM}', '{FOLD_TO}')"
    for letter, key in POLISH:
        text = f"replace(replace({text}, '{letter}', '{key}'), '{letter.upper()}', '{key}')"
    return f"nullif(btrim(lower({text})), '')"


FORWARDS = [
    # IMMUTABLE (translate, replace and lower of these letters do not depend on the locale), so
    # it may feed a generated column and an index; STRICT and inlined by the planner.
    f"""
    CREATE FUNCTION portal_sort_key(name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT {_sort_key_sql()} $$
    """,
    "ALTER TABLE company ADD COLUMN sort_name text COLLATE \"C\""
    " GENERATED ALWAYS AS (portal_sort_key(name)) STORED",
    "CREATE INDEX company_account_sort_name_id ON company (account, sort_name, id)",
    "DROP INDEX company_account_name_id",
    "ALTER TABLE membership ADD COLUMN sort_name text COLLATE \"C\"",
    """
    CREATE FUNCTION person_sort_name(person uuid) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT portal_sort_key(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, ''))
        FROM profile p WHERE p.identity = person
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION membership_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_text := coalesce(person_search_text(NEW.identity), '');
        NEW.sort_name := person_sort_name(NEW.identity);
        RETURN NEW;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION person_search_text_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        person uuid := CASE WHEN TG_TABLE_NAME = 'identity' THEN NEW.id ELSE NEW.identity END;
    BEGIN
        UPDATE membership SET search_text = coalesce(person_search_text(person), ''),
                              sort_name = person_sort_name(person)
        WHERE identity = person;
        RETURN NULL;
    END $$
    """,
    "UPDATE membership m SET sort_name = portal_sort_key("
    "coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')) "
    "FROM profile p WHERE p.identity = m.identity",
    "CREATE INDEX membership_account_sort_name_id ON membership (account, sort_name, id)",
]

BACKWARDS = [
    "DROP INDEX membership_account_sort_name_id",
    """
    CREATE OR REPLACE FUNCTION person_search_text_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        person uuid := CASE WHEN TG_TABLE_NAME = 'identity' THEN NEW.id ELSE NEW.identity END;
    BEGIN
        UPDATE membership SET search_text = coalesce(person_search_text(person), '')
        WHERE identity = person;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION membership_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_text := coalesce(person_search_text(NEW.identity), '');
        RETURN NEW;
    END $$
    """,
    "DROP FUNCTION person_sort_name(uuid)",
    "ALTER TABLE membership DROP COLUMN sort_name",
    "CREATE INDEX company_account_name_id ON company (account, lower(name), id)",
    "DROP INDEX company_account_sort_name_id",
    "ALTER TABLE company DROP COLUMN sort_name",
    "DROP FUNCTION portal_sort_key(text)",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
