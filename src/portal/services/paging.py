"""Pages of long lists (companies, people, events): the page number from a query string and
the "rows 26-50 of 1000" arithmetic, in one place."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

MAX_PAGE = 1_000_000


def parse_page(raw: object) -> int:
    """A page number from the query string; anything odd is page 1."""
    try:
        page = int(str(raw or "1").strip()[:12])
    except ValueError:
        return 1
    return min(max(page, 1), MAX_PAGE)


def page_count(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


class Window:
    """For page dataclasses with ``total``, ``page`` and ``per_page``: which rows are shown."""

    total: int
    page: int
    per_page: int

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)

    def link_tail(self, key: str) -> str:
        """What a page link adds after the page number (keyed pages add their cursor)."""
        return ""


# --- keyset (issue 20) ---------------------------------------------------------------------
# A page reached by "next" or "previous" starts after (or ends before) the sort key of the
# row at the edge of the page shown, so PostgreSQL reads 25 rows along an index instead of
# skipping (OFFSET) or sorting everything before them. The links carry that key as a cursor
# next to the page number; the number only labels the page. A page number typed by hand, or a
# cursor that does not decode (tampered, from another sort, from an older version), falls back
# to counting from the nearer end.

CURSOR_MAX = 2000


def encode_cursor(tag: str, values: Sequence[object]) -> str:
    """An opaque, URL-safe cursor: the sort's name and the edge row's sort key."""
    plain = [tag, *(value.isoformat() if isinstance(value, datetime) else
                    None if value is None else str(value) for value in values)]
    raw = json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: object, tag: str, kinds: Sequence[type]) -> list[Any] | None:
    """The key values of a cursor made by ``encode_cursor(tag, ...)``, converted to ``kinds``
    (str, UUID, datetime); None for anything else (never an error)."""
    if not isinstance(raw, str) or not raw or len(raw) > CURSOR_MAX:
        return None
    try:
        plain = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(plain, list) or len(plain) != len(kinds) + 1 or plain[0] != tag:
            return None
        values: list[Any] = []
        for kind, value in zip(kinds, plain[1:], strict=True):
            if value is None:
                values.append(None)
            elif not isinstance(value, str):
                return None
            elif kind is datetime:
                parsed = datetime.fromisoformat(value)
                values.append(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
            elif kind is UUID:
                values.append(UUID(value))
            else:
                values.append(value)
        return values
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error, RecursionError):
        return None


class Keyed(Window):
    """For page dataclasses with ``next_cursor`` and ``prev_cursor``: the end of a page link
    (the pagination partial appends it to ``...page=N``)."""

    next_cursor: str
    prev_cursor: str
    page: int

    def link_tail(self, key: str) -> str:
        if key == "next" and self.next_cursor:
            return "&after=" + self.next_cursor
        if key == "prev" and self.prev_cursor and self.page > 2:
            return "&before=" + self.prev_cursor
        return ""
