"""The account's audit log (/users/audit): who did what and when in the current account, with
filters (who, what, when), pages, and a CSV export of everything the filters match.

Only events recorded with the current account's id are ever read (every query filters by
``tenancy.account_id(scope)``); a scope limited to some companies reads only the events about
one of them. "Who" matches the person who acted (a member by any part of their email or name,
anyone by their whole email) or the person it was about (any part of the email);
"what" is an event tag or a family of tags; "when" is a range of days in Polish time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from portal.security.permissions import Permission
from portal.services import accounts, companies, tenancy
from portal.services.paging import Keyed, decode_cursor, encode_cursor, page_count, parse_page
from portal.services.scope import Scope
from portal.tables import AuditEvent

WARSAW = ZoneInfo("Europe/Warsaw")
PER_PAGE = 50
EXPORT_BATCH = 2000
#: An export stops after this many rows (narrow the filters for more).
EXPORT_LIMIT = 100_000

#: Families of events offered by the "what" filter (value → LIKE pattern).
FAMILIES = {
    "membership": "membership:%",
    "invitation": "invitation:%",
    "company_access": "company_access:%",
    "account": "account:%",
}

#: Single events offered by the "what" filter; the labels are in partials/people_labels.html.
TAGS = (
    "membership:person:add",
    "membership:person:remove",
    "membership:person:leave",
    "membership:role:change",
    "company_access:level:change",
    "invitation:invitation:create",
    "invitation:invitation:resend",
    "invitation:invitation:withdraw",
    "invitation:invitation:accept",
    "invitation:invitation:decline",
    "invitation:invitation:expire",
    "account:mfa_policy:change",
    "account:account:create",
    "account:account:update",
    "account:company:create",
    "account:company:update",
)


class NotAllowed(accounts.NotAllowed):
    message = "Dziennik zdarzeń konta widzą jego właściciele i administratorzy."


@dataclass(frozen=True)
class Filters:
    who: str = ""
    what: str = ""
    since: date | None = None
    until: date | None = None

    @property
    def active(self) -> bool:
        return bool(self.who or self.what or self.since or self.until)

    def params(self, **changes: Any) -> dict[str, str]:
        values = {"who": self.who, "what": self.what,
                  "from": self.since.isoformat() if self.since else "",
                  "to": self.until.isoformat() if self.until else "", **changes}
        return {key: str(value) for key, value in values.items() if value}


def _day(raw: object) -> date | None:
    if not isinstance(raw, str) or len(raw) > 20:
        return None
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        return None
    return day if date(2000, 1, 1) <= day <= date(2999, 12, 31) else None


def parse_filters(who: object = None, what: object = None, since: object = None,
                  until: object = None) -> Filters:
    """Filters from the query string; anything odd is simply no filter."""
    text = companies.clean_query(who if isinstance(who, str) else None, limit=320)
    kind = what if isinstance(what, str) and (what in FAMILIES or what in TAGS) else ""
    return Filters(who=text, what=kind, since=_day(since), until=_day(until))


def _bounds(filters: Filters) -> tuple[datetime | None, datetime | None]:
    start = (datetime.combine(filters.since, time(), WARSAW).astimezone(UTC)
             if filters.since else None)
    end = (datetime.combine(filters.until + timedelta(days=1), time(), WARSAW).astimezone(UTC)
           if filters.until else None)
    return start, end


#: The events the filters match. The account id is the first placeholder (tenancy.raw); "who"
#: is the person who acted (found once among the identities) or the one it was about. Every
#: statement is planned for its values (db.SERVER_SETTINGS), so an empty filter costs nothing.
_MATCHING = """
FROM audit_event e
WHERE e.account_id = {}
  AND ({} = '' OR e.identity_id IN (SELECT id FROM actors) OR e.data ->> 'email' ILIKE {})
  AND ({} = '' OR e.tag LIKE {})
  AND ({}::timestamptz IS NULL OR e.created_at >= {})
  AND ({}::timestamptz IS NULL OR e.created_at < {})
  AND ({}::timestamptz IS NULL OR (e.created_at, e.id) < ({}, {}::uuid))
  AND ({}::text[] IS NULL OR e.data ->> 'company_id' = ANY({}::text[]))
"""

#: Who acted: a member of the account whose email or name contains the text (their
#: ``membership.search_text``, so 5,000 members are read and not 200,000 identities), or
#: anyone, a former member too, whose whole email it is (the unique lower(email) index).
_ACTORS = """
actors AS MATERIALIZED (
    SELECT m.identity AS id FROM membership m
    WHERE {} <> '' AND m.account = {} AND m.search_text LIKE lower({})
    UNION
    SELECT id FROM identity WHERE {} <> '' AND lower(email) = lower({})
)
"""

#: One page and the bounded count in one statement: the page's keys come first (from the
#: (account_id, created_at, id) index when nothing else is filtered), and only those 50 rows
#: are read whole and joined with their actor; the count stops at COUNT_CAP + 1.
_PAGE = """
WITH ACTORS, keys AS (
    SELECT e.id, e.created_at MATCHING
    ORDER BY e.created_at DESC, e.id DESC
    LIMIT {} OFFSET {}
), counted AS (
    SELECT count(*) AS total FROM (
        SELECT 1 MATCHING ORDER BY e.created_at DESC, e.id DESC LIMIT {}
    ) AS capped
)
SELECT counted.total, e.id, e.created_at, e.tag, e.ip, e.user_agent, e.data, e.identity_id,
       coalesce(i.email, '') AS actor_email
FROM counted
LEFT JOIN keys ON true
LEFT JOIN audit_event e ON e.id = keys.id
LEFT JOIN identity i ON i.id = e.identity_id
ORDER BY keys.created_at DESC, keys.id DESC
""".replace("ACTORS", _ACTORS).replace("MATCHING", _MATCHING)

#: A batch of the export, after the previous batch's last (created_at, id): by key, never by
#: OFFSET, so the 50th batch costs what the first does.
_BATCH = """
WITH ACTORS
SELECT e.id, e.created_at, e.tag, e.ip, e.user_agent, e.data, e.identity_id,
       coalesce(i.email, '') AS actor_email
FROM (SELECT e.* MATCHING ORDER BY e.created_at DESC, e.id DESC LIMIT {}) AS e
LEFT JOIN identity i ON i.id = e.identity_id
ORDER BY e.created_at DESC, e.id DESC
""".replace("ACTORS", _ACTORS).replace("MATCHING", _MATCHING)

#: Matching events are counted up to this many; past it the log says "10 000+" and offers
#: the pages of the newest COUNT_CAP (narrow the filters, or export, for older ones). Counting
#: a busy account's whole history for every page cost more than the page itself.
COUNT_CAP = 10_000
#: The cap when "who" or "what" filter: matching them reads each event (a substring of its
#: data), so the count of a rare match would read the account's whole history; 1,000 matches
#: are found within the newest ~15,000 events of a busy account even at 7 % of them.
FILTERED_COUNT_CAP = 1_000


def _cap(filters: Filters) -> int:
    return FILTERED_COUNT_CAP if filters.who or filters.what else COUNT_CAP


def require(scope: Scope) -> None:
    if not scope.can(Permission.AUDIT_VIEW):
        raise NotAllowed()


def _matching_args(scope: Scope, filters: Filters,
                   after: tuple[datetime, Any] | None = None) -> tuple[Any, ...]:
    """The placeholders of _MATCHING after the account id, in order."""
    pattern = companies.like_pattern(filters.who)
    # Tags contain "_", a LIKE wildcard: taken literally.
    what = FAMILIES.get(filters.what, filters.what).replace("_", "\\_")
    start, end = _bounds(filters)
    after_at, after_id = after if after else (None, None)
    # A scope limited to some companies (an API key) sees only the events about one of them:
    # the others (people, invitations, the account) name companies it must not see.
    limited = (sorted(str(company) for company in scope.company_ids)
               if scope.company_ids is not None else None)
    return (
        filters.who, pattern,
        what, what,
        start, start,
        end, end,
        after_at, after_at, str(after_id) if after_id else None,
        limited, limited,
    )


def _decoded(rows: list[dict]) -> list[dict]:
    for row in rows:
        data = row["data"]
        row["data"] = json.loads(data) if isinstance(data, str) else (data or {})
    return rows


async def _page_rows(scope: Scope, filters: Filters, number: int,
                     after: tuple[datetime, Any] | None = None) -> tuple[list[dict], int]:
    """One page's rows and the number of matching events, counted up to the cap + 1; with
    ``after`` (the previous page's last event) the page is read by key, without OFFSET."""
    require(scope)
    account_id = tenancy.account_id(scope)
    matching = _matching_args(scope, filters)
    keyed = _matching_args(scope, filters, after) if after else matching
    pattern = companies.like_pattern(filters.who)
    # Not tenancy.raw: the actors' placeholders come first in the text; the account id (from
    # the same gate) starts each _MATCHING.
    rows = await AuditEvent.raw(
        _PAGE,
        filters.who, account_id, pattern, filters.who, filters.who,
        account_id, *keyed, PER_PAGE, 0 if after else (number - 1) * PER_PAGE,
        account_id, *matching, _cap(filters) + 1,
    )
    total = rows[0]["total"] if rows else 0
    return _decoded([row for row in rows if row["id"] is not None]), total


@dataclass(frozen=True)
class EventPage(Keyed):
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    filters: Filters
    #: More than ``total`` events match (the count stopped at COUNT_CAP).
    more: bool = False
    per_page: int = PER_PAGE
    #: The next page's cursor (its predecessor's last event); "previous" goes by number.
    next_cursor: str = ""
    prev_cursor: str = ""

    @property
    def total_label(self) -> str:
        """The number shown: "10 000+" once the count stopped."""
        return f"{self.total:,}".replace(",", "\u00a0") + "+" if self.more else str(self.total)


async def page(scope: Scope, filters: Filters, number: object = None,
               after: object = None) -> EventPage:
    """One page of the account's events, newest first (one statement; a page number past the
    end, or a cursor that does not lead to that page, costs a second one). ``after`` is the
    cursor of the "next" link: the page is read by key from the previous page's last event."""
    wanted = parse_page(number)
    edge = decode_cursor(after, "audit", (datetime, UUID)) if wanted > 1 else None
    rows, counted = await _page_rows(scope, filters, wanted, tuple(edge) if edge else None)
    total = min(counted, _cap(filters))
    pages = page_count(total, PER_PAGE)
    current = min(wanted, pages)
    expected = max(0, min(PER_PAGE, total - (current - 1) * PER_PAGE))
    if current != wanted or (edge and len(rows) < expected):
        rows, _ = await _page_rows(scope, filters, current)
    rows = rows[:expected]  # the last page stops at the cap
    return EventPage(rows=rows, total=total, page=current, pages=pages, filters=filters,
                     more=counted > _cap(filters),
                     next_cursor=encode_cursor("audit", [rows[-1]["created_at"], rows[-1]["id"]])
                     if rows and current < pages else "")


CSV_COLUMNS = ("time_utc", "actor_email", "actor_id", "event", "subject_email", "details",
               "ip", "user_agent")


def _cell(value: object) -> str:
    """A spreadsheet must not run what a person typed: formulas are quoted as text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def export(scope: Scope, filters: Filters) -> AsyncIterator[str]:
    """The matching events as CSV (UTF-8 with a BOM for spreadsheets), in batches."""
    require(scope)
    account_id = tenancy.account_id(scope)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + buffer.getvalue()
    after = None
    sent = 0
    while sent < EXPORT_LIMIT:
        rows = _decoded(await AuditEvent.raw(
            _BATCH, filters.who, account_id, companies.like_pattern(filters.who), filters.who,
            filters.who, account_id, *_matching_args(scope, filters, after),
            min(EXPORT_BATCH, EXPORT_LIMIT - sent),
        ))
        if not rows:
            break
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            details = {k: v for k, v in row["data"].items() if k != "email"}
            writer.writerow([_cell(v) for v in (
                row["created_at"].astimezone(UTC).isoformat(timespec="seconds"),
                row["actor_email"], row["identity_id"] or "", row["tag"],
                row["data"].get("email", ""),
                json.dumps(details, ensure_ascii=False, sort_keys=True) if details else "",
                row["ip"], row["user_agent"],
            )])
        yield buffer.getvalue()
        sent += len(rows)
        after = (rows[-1]["created_at"], rows[-1]["id"])
        if len(rows) < EXPORT_BATCH:
            break
