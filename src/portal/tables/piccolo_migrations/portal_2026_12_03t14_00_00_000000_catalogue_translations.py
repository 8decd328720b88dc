"""Catalogue entries in other languages (issue 17). Hand-written.

``application_translation`` keeps an entry's name and description per language; the
application's own columns stay the Polish texts and the fallback for an entry or a language
without a translation. English is filled for the vendor's catalogue (the same rows as
``services.catalogue.TRANSLATIONS``: a test keeps the two equal). An entry a database does
not have (its slug) gets no translation.
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-03T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "catalogue entries in other languages"

#: (language, slug, name, description)
TRANSLATIONS = [
    ('en', 'e-faktury', 'e-Invoices',
     'Issuing, sending and receiving invoices, also through KSeF, with payment tracking.'),
    ('en', 'e-biuro', 'e-Office',
     'Documents and messages between an accounting office and its clients.'),
    ('en', 'e-deklaracje', 'e-Declarations',
     'Preparing and filing tax returns, JPK files and financial statements, with the UPO receipt.'),
    ('en', 'e-dokumenty', 'e-Documents',
     "Electronic workflow, archive and signing of the company's documents."),
    ('en', 'e-place', 'e-Payroll',
     'HR and payroll: contracts, payrolls, settlements with ZUS and the tax office.'),
    ('en', 'srodki-trwale', 'Fixed assets',
     'A register of fixed and intangible assets with a depreciation plan.'),
    ('en', 'centrum-pomocy', 'Help centre',
     'Guides, answers to frequent questions and notices about changes in the law.'),
    ('en', 'dokumentacja', 'Documentation',
     'User manuals of the applications and a description of the programming interfaces (API).'),
    ('en', 'akademia', 'Academy',
     'Training, webinars and courses with a certificate.'),
    ('en', 'spolecznosc', 'Community',
     'A forum where users and experts share their knowledge.'),
    ('en', 'glos-klienta', 'Customer voice',
     'Suggesting ideas and voting for new features of the applications.'),
    ('en', 'sklep', 'Online shop',
     'Buying, renewing and extending licences.'),
]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_VALUES = ",\n".join(
    f"({_quoted(language)}, {_quoted(slug)}, {_quoted(name)}, {_quoted(description)})"
    for language, slug, name, description in TRANSLATIONS
)

FORWARDS = [
    """CREATE TABLE application_translation (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        created_at timestamptz NOT NULL DEFAULT now(),
        application uuid NOT NULL REFERENCES application (id) ON DELETE CASCADE,
        language varchar(8) NOT NULL CHECK (language ~ '^[a-z]{2}$' AND language <> 'pl'),
        name varchar(100) NOT NULL DEFAULT '',
        description text NOT NULL DEFAULT '',
        CONSTRAINT application_translation_one_per_language UNIQUE (application, language)
    )""",
    "INSERT INTO application_translation (application, language, name, description) "
    "SELECT a.id, v.language, v.name, v.description FROM application a "
    f"JOIN (VALUES {_VALUES}) AS v (language, slug, name, description) ON v.slug = a.slug",
]

BACKWARDS = [
    "DROP TABLE application_translation",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
