"""The vendor's applications and what the current account has of them: the catalogue on /apps,
opening an application through the portal (which records it as recently used), trials, the
account's products (/products) and the trial offered on the home page.

Which applications an account *has*: those marked ``included`` (the help centre, academy,
community, customer voice, documentation and shop belong to every account), and those with a
subscription that is active or still in its trial. A subscription's stored state is what was
sold; the state shown is computed against today, so a trial whose end date has passed reads
"expired" without a background job rewriting rows.

Opening goes through the portal: ``open`` records the use (one row per person, account and
application, its time refreshed) and returns the application's sign-in address with the account
preselected (``?account=<ID konta>``). The application then runs its OpenID Connect flow
against the portal, which already has the session, so opening is one click.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlparse

from portal import i18n
from portal.db import ENGINE
from portal.services import audit, mail, tenancy
from portal.services.errors import DomainError, NotFound
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import (
    Application,
    ApplicationTranslation,
    Membership,
    Profile,
    RecentApplication,
    Subscription,
)

#: Days a trial lasts, counting its first day.
TRIAL_DAYS = 30

#: Dates (trial start and end, "expired") are days where people are, whatever the server's
#: zone (i18n.ZONE).
today = i18n.today

#: Category codes in the order the filter offers them (labels: partials/catalogue_labels.html).
CATEGORIES = ("finance", "office", "documents", "hr", "knowledge", "shop")

#: What /apps can show: every application, or only those the account has.
SHOW = ("all", "mine")

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")


@dataclass(frozen=True)
class Product:
    """One entry of the vendor's product list."""

    slug: str
    name: str
    category: str
    description: str
    has_trial: bool = False
    included: bool = False
    product_url: str = ""
    shop_url: str = ""
    open_url: str = ""


def _sold(slug: str, name: str, category: str, description: str) -> Product:
    """A product sold in the shop, with a trial, and its own sign-in address."""
    return Product(
        slug, name, category, description, has_trial=True,
        product_url=f"https://www.example.com/produkty/{slug}",
        shop_url=f"https://sklep.example.com/produkty/{slug}",
        open_url=f"https://{slug}.example.com/logowanie",
    )


def _free(slug: str, name: str, category: str, description: str, host: str) -> Product:
    """A service every account has, free of charge."""
    return Product(
        slug, name, category, description, included=True,
        product_url=f"https://www.example.com/{slug}",
        open_url=f"https://{host}.example.com/logowanie",
    )


#: The vendor's product list. A migration (customer_panel) inserts the same entries into every
#: database, and ``seed`` (``portal demo``) adds any that are missing; a test keeps the two equal.
APPLICATIONS: tuple[Product, ...] = (
    _sold("e-faktury", "e-Faktury", "finance",
          "Wystawianie, wysyłka i odbiór faktur, także przez KSeF, z kontrolą płatności."),
    _sold("e-biuro", "e-Biuro", "office",
          "Wymiana dokumentów i wiadomości między biurem rachunkowym a jego klientami."),
    _sold("e-deklaracje", "e-Deklaracje", "finance",
          "Przygotowanie i wysyłka deklaracji podatkowych, plików JPK i sprawozdań "
          "finansowych, z odbiorem UPO."),
    _sold("e-dokumenty", "e-Dokumenty", "documents",
          "Elektroniczny obieg, archiwum i podpisywanie dokumentów firmy."),
    _sold("e-place", "e-Płace", "hr",
          "Kadry i płace: umowy, listy płac, rozliczenia z ZUS i urzędem skarbowym."),
    _sold("srodki-trwale", "Środki trwałe", "finance",
          "Ewidencja środków trwałych i wartości niematerialnych z planem amortyzacji."),
    _free("centrum-pomocy", "Centrum pomocy", "knowledge",
          "Poradniki, odpowiedzi na częste pytania i komunikaty o zmianach w przepisach.",
          "pomoc"),
    _free("dokumentacja", "Dokumentacja", "knowledge",
          "Podręczniki użytkownika aplikacji i opis interfejsów programistycznych (API).",
          "dokumentacja"),
    _free("akademia", "Akademia", "knowledge",
          "Szkolenia, webinary i kursy z certyfikatem.", "akademia"),
    _free("spolecznosc", "Społeczność", "knowledge",
          "Forum, na którym użytkownicy i eksperci dzielą się wiedzą.", "spolecznosc"),
    _free("glos-klienta", "Głos klienta", "knowledge",
          "Zgłaszanie pomysłów i głosowanie na nowe funkcje aplikacji.", "glos-klienta"),
    Product("sklep", "Sklep online", "shop", "Zakup, przedłużanie i rozszerzanie licencji.",
            included=True, product_url="https://sklep.example.com/",
            open_url="https://sklep.example.com/logowanie"),
)


#: The catalogue in other languages: language → slug → (name, description). Polish (the
#: columns of ``application``) is the fallback for an entry or a language without one. The
#: catalogue_translations migration inserts the same rows; ``seed`` adds any that are missing.
TRANSLATIONS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "e-faktury": ("e-Invoices", "Issuing, sending and receiving invoices, also through KSeF, "
                      "with payment tracking."),
        "e-biuro": ("e-Office", "Documents and messages between an accounting office and its "
                    "clients."),
        "e-deklaracje": ("e-Declarations", "Preparing and filing tax returns, JPK files and "
                         "financial statements, with the UPO receipt."),
        "e-dokumenty": ("e-Documents", "Electronic workflow, archive and signing of the "
                        "company's documents."),
        "e-place": ("e-Payroll", "HR and payroll: contracts, payrolls, settlements with ZUS and "
                    "the tax office."),
        "srodki-trwale": ("Fixed assets", "A register of fixed and intangible assets with a "
                          "depreciation plan."),
        "centrum-pomocy": ("Help centre", "Guides, answers to frequent questions and notices "
                           "about changes in the law."),
        "dokumentacja": ("Documentation", "User manuals of the applications and a description "
                         "of the programming interfaces (API)."),
        "akademia": ("Academy", "Training, webinars and courses with a certificate."),
        "spolecznosc": ("Community", "A forum where users and experts share their knowledge."),
        "glos-klienta": ("Customer voice", "Suggesting ideas and voting for new features of the "
                         "applications."),
        "sklep": ("Online shop", "Buying, renewing and extending licences."),
    },
}


def _language(language: str | None) -> str:
    """The language whose catalogue texts are wanted ('pl' reads the columns themselves)."""
    return language if language in TRANSLATIONS else "pl"


#: The columns a listing shows in the wanted language, with Polish as the fallback; ``t`` is
#: the entry's translation row (LEFT JOIN _TRANSLATED); ``name_polish`` and ``description_polish``
#: say which texts fell back to Polish (a page in another language marks them ``lang="pl"``).
_TEXTS = """COALESCE(NULLIF(t.name, ''), a.name) AS name,
       COALESCE(NULLIF(t.description, ''), a.description) AS description,
       (NULLIF(t.name, '') IS NULL) AS name_polish,
       (NULLIF(t.description, '') IS NULL) AS description_polish"""
_TRANSLATED = "LEFT JOIN application_translation t ON t.application = a.id AND t.language = {}"


def _localized(sql: str) -> str:
    """A catalogue query with $TEXTS and $TRANSLATED filled in (constants, no input)."""
    return sql.replace("$TEXTS", _TEXTS).replace("$TRANSLATED", _TRANSLATED)


class NotAvailable(DomainError):
    message = "To konto nie ma tej aplikacji. Wypróbuj ją albo kup w sklepie."


class NoTrial(DomainError):
    message = "Ta aplikacja nie ma okresu próbnego."


class TrialUsed(DomainError):
    message = "To konto już ma tę aplikację albo korzystało z jej okresu próbnego."


async def seed() -> None:
    """Insert the catalogue entries that are missing (existing ones are left as they are)."""
    for position, product in enumerate(APPLICATIONS):
        await Application.insert(
            Application(
                slug=product.slug, name=product.name, category=product.category,
                description=product.description, has_trial=product.has_trial,
                included=product.included, product_url=product.product_url,
                shop_url=product.shop_url, open_url=product.open_url, position=position,
            )
        ).on_conflict(target=Application.slug, action="DO NOTHING")
    for language, entries in TRANSLATIONS.items():
        for slug, (name, description) in entries.items():
            await ApplicationTranslation.raw(
                "INSERT INTO application_translation (id, created_at, application, language, "
                "name, description) SELECT gen_random_uuid(), now(), id, {}, {}, {} "
                "FROM application WHERE slug = {} "
                "ON CONFLICT (application, language) DO NOTHING",
                language, name, description, slug)


def parse_category(raw: object) -> str:
    return raw if isinstance(raw, str) and raw in CATEGORIES else ""


def parse_show(raw: object) -> str:
    return raw if isinstance(raw, str) and raw in SHOW else "all"


#: Every application with what the current account has of it. ``shown_state`` is the state as
#: of today; ``has_it`` decides "open"; ``can_try`` offers a trial (once per product: any
#: subscription row, even an expired one, uses it up).
_CATALOGUE = _localized("""
WITH mine AS (SELECT * FROM subscription WHERE account = {}), day AS (SELECT {}::date AS today)
SELECT a.id, a.slug, $TEXTS, a.category, a.product_url, a.shop_url, a.open_url,
       a.has_trial, a.included, s.state, s.starts_on, s.ends_on,
       CASE WHEN s.id IS NULL THEN NULL
            WHEN s.ends_on IS NOT NULL AND s.ends_on < day.today THEN 'expired'
            ELSE s.state END AS shown_state
FROM application a CROSS JOIN day
LEFT JOIN mine s ON s.application = a.id
$TRANSLATED
WHERE ({} = '' OR a.category = {})
ORDER BY a.position, a.name
""")


#: The catalogue before the person has any account: nothing is theirs, to open or to try.
_PUBLIC_CATALOGUE = _localized("""
SELECT a.id, a.slug, $TEXTS, a.category, a.product_url, a.shop_url, a.open_url,
       a.has_trial, a.included, NULL::text AS state, NULL::date AS starts_on,
       NULL::date AS ends_on, NULL::text AS shown_state
FROM application a
$TRANSLATED
WHERE ({} = '' OR a.category = {})
ORDER BY a.position, a.name
""")


def _decorate(row: dict[str, Any], in_account: bool = True) -> dict[str, Any]:
    has_it = in_account and (row["included"] or row["shown_state"] in ("trial", "active"))
    return {
        **row,
        "has_it": has_it,
        "can_open": has_it and bool(row["open_url"]),
        "can_try": in_account and row["has_trial"] and row["state"] is None,
    }


async def applications(scope: Scope, category: object = None, show: object = None,
                       language: str | None = None) -> list[dict[str, Any]]:
    """The catalogue for the current account, optionally one category, or only its own, with
    names and descriptions in ``language`` where the entry has them (else Polish).
    Without an account (a new ID) it is the catalogue to read: product pages and the shop."""
    wanted = parse_category(category)
    language = _language(language)
    if scope.account is None:
        found = await Application.raw(_PUBLIC_CATALOGUE, language, wanted, wanted)
        return [] if parse_show(show) == "mine" else [_decorate(row, False) for row in found]
    found = await tenancy.raw(Subscription, scope, _CATALOGUE, today(), language, wanted,
                              wanted)
    rows = [_decorate(row) for row in found]
    if parse_show(show) == "mine":
        rows = [row for row in rows if row["has_it"]]
    return rows


async def open_origins() -> list[str]:
    """Origins of every application's sign-in address: a form that opens an application is
    redirected there, and the page's Content Security Policy must allow it (form-action)."""
    rows = await Application.select(Application.open_url).where(Application.open_url != "")
    return sorted({_origin(row["open_url"]) for row in rows} - {""})


def _origin(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return ""
    return f"{parsed.scheme}://{parsed.netloc}"


async def _application(slug: object) -> dict[str, Any]:
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise NotFound()
    row = await Application.select().where(Application.slug == slug).first()
    if row is None:
        raise NotFound()
    return row


async def _one(scope: Scope, slug: object) -> dict[str, Any]:
    """One catalogue entry with the current account's state of it."""
    application = await _application(slug)
    for row in await applications(scope, application["category"]):
        if row["id"] == application["id"]:
            return row
    raise NotFound()


async def open_application(scope: Scope, slug: object) -> str:
    """Record that this person used the application in this account; return where to go: the
    application's sign-in address with the account preselected."""
    row = await _one(scope, slug)
    if not row["can_open"]:
        raise NotAvailable()
    await tenancy.raw(
        RecentApplication, scope,
        "INSERT INTO recent_application (id, created_at, account, identity, application, used_at)"
        " VALUES (gen_random_uuid(), now(), {}, {}, {}, now())"
        " ON CONFLICT (identity, account, application) DO UPDATE SET used_at = now()",
        scope.identity_id, row["id"],
    )
    separator = "&" if urlparse(row["open_url"]).query else "?"
    return row["open_url"] + separator + urlencode({"account": scope.account.public_id})


_RECENT = _localized("""
WITH mine AS (SELECT * FROM recent_application WHERE account = {})
SELECT a.slug, $TEXTS, a.category, r.used_at
FROM mine r
JOIN application a ON a.id = r.application
LEFT JOIN subscription s ON s.application = a.id AND s.account = r.account
$TRANSLATED
WHERE r.identity = {} AND a.open_url <> ''
  AND (a.included OR (s.state IN ('trial', 'active')
                      AND (s.ends_on IS NULL OR s.ends_on >= {})))
ORDER BY r.used_at DESC
LIMIT {}
""")


async def recent(scope: Scope, limit: int = 6, language: str | None = None
                 ) -> list[dict[str, Any]]:
    """The applications this person opened in this account, newest first (those the account
    still has: an expired trial drops out)."""
    return await tenancy.raw(RecentApplication, scope, _RECENT, _language(language),
                             scope.identity_id, today(), limit)


async def trial_offer(scope: Scope, language: str | None = None) -> dict[str, Any] | None:
    """The first product with a trial that the account has never had (the home page banner)."""
    rows = await tenancy.raw(
        Subscription, scope,
        _localized("WITH mine AS (SELECT application FROM subscription WHERE account = {}) "
                   "SELECT a.slug, $TEXTS, a.product_url FROM application a $TRANSLATED "
                   "WHERE a.has_trial AND a.id NOT IN (SELECT application FROM mine) "
                   "ORDER BY a.position, a.name LIMIT 1"),
        _language(language),
    )
    return rows[0] if rows else None


async def start_trial(settings: Settings, scope: Scope, slug: object, client: Client
                      ) -> dict[str, Any]:
    """Start the account's trial of a product: once per product (the unique subscription per
    account and application makes that true under concurrency), ending after TRIAL_DAYS; an
    audit event and a mail to the person and the account's owners, in the same transaction."""
    application = await _application(slug)
    if not application["has_trial"]:
        raise NoTrial()
    account_id = tenancy.account_id(scope)
    starts_on = today()
    ends_on = starts_on + timedelta(days=TRIAL_DAYS - 1)
    async with ENGINE.transaction():
        created = await Subscription.insert(
            Subscription(account=account_id, application=application["id"], state="trial",
                         starts_on=starts_on, ends_on=ends_on)
        ).on_conflict(
            target=(Subscription.account, Subscription.application), action="DO NOTHING"
        ).returning(Subscription.id)
        if not created:
            raise TrialUsed()
        await audit.record(
            "account:subscription:trial_start", client=client, identity_id=scope.identity_id,
            account_id=account_id, application=application["slug"], ends_on=ends_on.isoformat(),
        )
        names = await _names(application)
        for to, language in await _trial_recipients(scope):
            language = language or scope.language
            await mail.queue(
                settings, to, "trial_started", language=language,
                application=names.get(_language(language), application["name"]),
                account=scope.account.name,
                ends_on=ends_on.strftime("%d.%m.%Y"), started_by=scope.email,
            )
    return {"application": application, "starts_on": starts_on, "ends_on": ends_on}


async def _names(application: dict[str, Any]) -> dict[str, str]:
    """An application's name in each language it has one in."""
    rows = await ApplicationTranslation.select(
        ApplicationTranslation.language, ApplicationTranslation.name
    ).where(ApplicationTranslation.application == application["id"])
    return {row["language"]: row["name"] for row in rows if row["name"]}


async def _trial_recipients(scope: Scope) -> list[tuple[str, str]]:
    """The person who started the trial, and the account's owners (each once)."""
    owners = await tenancy.select(
        Membership, scope,
        Membership.identity.email.as_alias("email"), Membership.identity.id.as_alias("identity"),
    ).where(Membership.role == "owner")
    languages = {
        row["identity"]: row["language"]
        for row in await Profile.select(Profile.identity, Profile.language).where(
            Profile.identity.is_in([scope.identity_id, *[o["identity"] for o in owners]])
        )
    }
    recipients = [(scope.email, languages.get(scope.identity_id, ""))]
    for owner in owners:
        if owner["identity"] != scope.identity_id:
            recipients.append((owner["email"], languages.get(owner["identity"], "")))
    return recipients


_PRODUCTS = _localized("""
WITH mine AS (SELECT * FROM subscription WHERE account = {}),
     day AS (SELECT {}::date AS today)
SELECT s.id, s.state, s.starts_on, s.ends_on, a.slug, $TEXTS, a.shop_url, a.open_url,
       CASE WHEN s.ends_on IS NOT NULL AND s.ends_on < day.today THEN 'expired'
            ELSE s.state END AS shown_state
FROM mine s CROSS JOIN day JOIN application a ON a.id = s.application
$TRANSLATED
ORDER BY a.position, a.name
""")

#: The states /products can filter by.
STATES = ("trial", "active", "expired")


def parse_state(raw: object) -> str:
    return raw if isinstance(raw, str) and raw in STATES else ""


async def products(scope: Scope, state: object = None, language: str | None = None
                   ) -> list[dict[str, Any]]:
    """The account's subscriptions with their state as of today (optionally only one state)."""
    rows = await tenancy.raw(Subscription, scope, _PRODUCTS, today(), _language(language))
    wanted = parse_state(state)
    # A running trial or subscription opens from here too: after "Wypróbuj" the person lands
    # on this list, with "Otwórz" beside the new trial.
    return [{**row, "can_open": bool(row["open_url"]) and row["shown_state"] != "expired"}
            for row in rows if not wanted or row["shown_state"] == wanted]
