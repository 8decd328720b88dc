"""UI language: Polish by default, English when the profile or the browser asks for it.

Source strings are Polish; ``locale/en/LC_MESSAGES/messages.po`` carries the English ones.
Babel reads the catalogue at start-up, so no compile step is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.pofile import read_po

LANGUAGES = ("pl", "en")
DEFAULT = "pl"
LOCALE_DIR = Path(__file__).parent / "locale"

Translate = Callable[[str], str]


@cache
def _catalog(language: str) -> dict[str, str]:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string}


def translator(language: str) -> Translate:
    table = _catalog(language) if language != DEFAULT else {}
    return lambda text: table.get(text, text)


def from_accept_language(header: str | None) -> str:
    """The best of our languages for an Accept-Language header (q-values honoured)."""
    best, best_q = DEFAULT, 0.0
    for part in (header or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


#: The cookie that keeps the language chosen in the footer while signed out.
LANGUAGE_COOKIE = "portal_lang"


def choose(profile: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the profile's choice, else the footer's (cookie), else the
    browser's (Accept-Language), else Polish."""
    for chosen in (profile, cookie):
        if chosen in LANGUAGES:
            return chosen
    return from_accept_language(accept_language)


#: The time zone people read times in (the vendor's customers are in Poland), in pages, mail
#: and the end of a chosen day.
ZONE = ZoneInfo("Europe/Warsaw")


def when(moment: datetime | None) -> str:
    """A moment as people read it: day and time in ZONE ("08.12.2026 20:00")."""
    if moment is None:
        return ""
    return moment.astimezone(ZONE).strftime("%d.%m.%Y %H:%M")


def end_of_day(day: date) -> datetime:
    """The last second of ``day`` where people are (a key "valid until 30.06" ends then)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=ZONE)


def today() -> date:
    return datetime.now(ZONE).date()
