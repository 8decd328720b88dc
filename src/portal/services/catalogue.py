"""The vendor's applications: the catalogue every account chooses from."""

from __future__ import annotations

from portal.tables import Application

#: The vendor's product list (slug, name, category, has_trial, description).
APPLICATIONS = [
    (
        "e-faktury",
        "e-Faktury",
        "Księgowość i finanse",
        True,
        "Wystawianie i odbieranie faktur, także w KSeF.",
    ),
    ("e-biuro", "e-Biuro", "Biuro rachunkowe", True, "Współpraca biura rachunkowego z klientami."),
    (
        "e-deklaracje",
        "e-Deklaracje",
        "Księgowość i finanse",
        True,
        "Wysyłka deklaracji podatkowych i sprawozdań.",
    ),
    ("e-dokumenty", "e-Dokumenty", "Dokumenty", True, "Obieg, archiwum i podpisywanie dokumentów."),
    ("e-place", "e-Płace", "Kadry i płace", True, "Kadry, płace i rozliczenia z ZUS."),
    (
        "srodki-trwale",
        "Środki trwałe",
        "Księgowość i finanse",
        True,
        "Ewidencja i amortyzacja środków trwałych.",
    ),
    ("centrum-pomocy", "Centrum pomocy", "Wsparcie", False, "Poradniki i odpowiedzi na pytania."),
    ("akademia", "Akademia", "Wsparcie", False, "Szkolenia i webinary."),
    ("spolecznosc", "Społeczność", "Wsparcie", False, "Forum użytkowników."),
    ("glos-klienta", "Głos klienta", "Wsparcie", False, "Pomysły i głosowanie na nowe funkcje."),
    ("sklep", "Sklep online", "Zakupy", False, "Zakup i przedłużanie licencji."),
]


async def seed() -> None:
    """Insert the catalogue entries that are missing (existing ones are left as they are)."""
    existing = {row["slug"] for row in await Application.select(Application.slug)}
    for position, (slug, name, category, has_trial, description) in enumerate(APPLICATIONS):
        if slug not in existing:
            await Application.insert(
                Application(
                    slug=slug,
                    name=name,
                    category=category,
                    has_trial=has_trial,
                    description=description,
                    position=position,
                    product_url=f"https://example.com/produkty/{slug}",
                )
            )
