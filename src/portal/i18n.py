"""UI language: Polish by default, English when the profile or the browser asks for it.

Source strings are Polish; ``locale/en/LC_MESSAGES/messages.po`` carries the English ones.
Babel reads the catalogue at start-up, so no compile step is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

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
