"""Pages of long lists (companies, people, events): the page number from a query string and
the "rows 26-50 of 1000" arithmetic, in one place."""

from __future__ import annotations

import math

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
