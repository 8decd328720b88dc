"""The account's audit log (/users/audit): who did what and when in the current account, with
filters (who, what, when), pages, and a CSV export of everything the filters match.

Only events recorded with the current account's id are ever read (the account id is the first
placeholder of every query); a scope limited to some companies reads only the events about
one of them. "Who" matches the person who acted or the person it was about;
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
from zoneinfo import ZoneInfo

from portal.security.permissions import Permission
from portal.services import accounts, companies, tenancy
from portal.services.paging import Window, page_count, parse_page
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


_EVENTS = """
SELECT e.id, e.created_at, e.tag, e.ip, e.user_agent, e.data, e.identity_id,
       coalesce(i.email, '') AS actor_email{total}
FROM audit_event e
LEFT JOIN identity i ON i.id = e.identity_id
WHERE e.account_id = {}
  AND ({} = '' OR i.email ILIKE {} OR e.data ->> 'email' ILIKE {})
  AND ({} = '' OR e.tag LIKE {})
  AND ({}::timestamptz IS NULL OR e.created_at >= {})
  AND ({}::timestamptz IS NULL OR e.created_at < {})
  AND ({}::timestamptz IS NULL OR (e.created_at, e.id) < ({}, {}::uuid))
  AND ({}::text[] IS NULL OR e.data ->> 'company_id' = ANY({}::text[]))
ORDER BY e.created_at DESC, e.id DESC
LIMIT {} OFFSET {}
"""


def require(scope: Scope) -> None:
    if not scope.can(Permission.AUDIT_VIEW):
        raise NotAllowed()


async def _query(scope: Scope, filters: Filters, limit: int, offset: int, *,
                 with_total: bool, after: tuple[datetime, Any] | None = None) -> list[dict]:
    require(scope)
    pattern = companies.like_pattern(filters.who)
    # Tags contain "_", a LIKE wildcard: taken literally.
    what = FAMILIES.get(filters.what, filters.what).replace("_", "\\_")
    start, end = _bounds(filters)
    after_at, after_id = after if after else (None, None)
    # A scope limited to some companies (an API key) sees only the events about one of them:
    # the others (people, invitations, the account) name companies it must not see.
    limited = (sorted(str(company) for company in scope.company_ids)
               if scope.company_ids is not None else None)
    sql = _EVENTS.replace("{total}", ", count(*) OVER () AS total" if with_total else "")
    rows = await tenancy.raw(
        AuditEvent, scope, sql,
        filters.who, pattern, pattern,
        what, what,
        start, start,
        end, end,
        after_at, after_at, str(after_id) if after_id else None,
        limited, limited,
        limit, offset,
    )
    for row in rows:
        data = row["data"]
        row["data"] = json.loads(data) if isinstance(data, str) else (data or {})
    return rows


@dataclass(frozen=True)
class EventPage(Window):
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    filters: Filters
    per_page: int = PER_PAGE


async def page(scope: Scope, filters: Filters, number: object = None) -> EventPage:
    """One page of the account's events, newest first."""
    wanted = parse_page(number)
    rows = await _query(scope, filters, PER_PAGE, (wanted - 1) * PER_PAGE, with_total=True)
    if not rows and wanted > 1:
        rows = await _query(scope, filters, PER_PAGE, 0, with_total=True)
    total = rows[0]["total"] if rows else 0
    pages = page_count(total, PER_PAGE)
    current = min(wanted, pages)
    if rows and current != wanted and current > 1:
        rows = await _query(scope, filters, PER_PAGE, (current - 1) * PER_PAGE, with_total=True)
    return EventPage(rows=rows, total=total, page=current, pages=pages, filters=filters)


CSV_COLUMNS = ("time_utc", "actor_email", "actor_id", "event", "subject_email", "details",
               "ip", "user_agent")


def _cell(value: object) -> str:
    """A spreadsheet must not run what a person typed: formulas are quoted as text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def export(scope: Scope, filters: Filters) -> AsyncIterator[str]:
    """The matching events as CSV (UTF-8 with a BOM for spreadsheets), in batches."""
    require(scope)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + buffer.getvalue()
    after = None
    sent = 0
    while sent < EXPORT_LIMIT:
        rows = await _query(scope, filters, min(EXPORT_BATCH, EXPORT_LIMIT - sent), 0,
                            with_total=False, after=after)
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
