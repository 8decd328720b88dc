"""The account's audit log at scale (issue 20): a bounded count, pages first and then their
rows, the export by key, one statement per page."""

from __future__ import annotations

import csv
import io

from portal.services import audit_log, paging
from portal.tables import AuditEvent
from portal.testing import factories
from tests.conftest import counting_queries
from tests.services.test_accounts import scope_for


async def owner_with_events(count: int):
    alice = await factories.identity("alicja@example.com")
    account = await factories.account(alice, name="Konto Alicji")
    other = await factories.identity("bogdan@example.com")
    elsewhere = await factories.account(other, name="Konto Bogdana")
    # Half of them by Alicja, half about Bogdan; some with equal times (ties by id); and
    # events of another account that must never show.
    await AuditEvent.raw(
        "INSERT INTO audit_event (created_at, tag, identity_id, account_id, data) "
        "SELECT now() - (n / 3) * interval '1 minute', "
        "CASE WHEN n % 2 = 0 THEN 'membership:role:change' ELSE 'account:company:update' END, "
        "CASE WHEN n % 2 = 0 THEN {}::uuid END, {}, "
        "CASE WHEN n % 2 = 1 THEN jsonb_build_object('email', 'bogdan@example.com') "
        "ELSE jsonb_build_object() END FROM generate_series(1, {}) AS n",
        alice, account["id"], count)
    await AuditEvent.raw(
        "INSERT INTO audit_event (tag, identity_id, account_id) "
        "SELECT 'membership:role:change', {}, {} FROM generate_series(1, 20)",
        other, elsewhere["id"])
    return await scope_for(alice, account, "owner"), account


async def every_event(account) -> list:
    rows = await AuditEvent.raw(
        "SELECT id FROM audit_event WHERE account_id = {} ORDER BY created_at DESC, id DESC",
        account["id"])
    return [row["id"] for row in rows]


async def test_the_count_stops_at_the_cap_and_the_pages_with_it(monkeypatch):
    monkeypatch.setattr(audit_log, "COUNT_CAP", 120)
    scope, account = await owner_with_events(200)
    whole = await every_event(account)
    assert len(whole) == 200
    first = await audit_log.page(scope, audit_log.Filters())
    assert (first.total, first.more, first.pages, first.total_label) == (120, True, 3, "120+")
    seen = []
    for number in (1, 2, 3):
        page = await audit_log.page(scope, audit_log.Filters(), number)
        assert len(page.rows) == page.last - page.first + 1
        seen += [row["id"] for row in page.rows]
    assert seen == whole[:120]  # the newest, in order, ties by id, each once
    beyond = await audit_log.page(scope, audit_log.Filters(), 50)
    assert beyond.page == 3 and [r["id"] for r in beyond.rows] == whole[100:120]
    # Under the cap the count is exact, and the filters count too (up to their own cap).
    monkeypatch.setattr(audit_log, "FILTERED_COUNT_CAP", 60)
    capped = await audit_log.page(scope, audit_log.parse_filters(what="account"))
    assert (capped.total, capped.more, capped.pages) == (60, True, 2)
    monkeypatch.setattr(audit_log, "FILTERED_COUNT_CAP", 1000)
    who = await audit_log.page(scope, audit_log.parse_filters(who="BOGDAN@"))
    assert (who.total, who.more, who.total_label) == (100, False, "100")
    assert all(row["data"].get("email") == "bogdan@example.com" for row in who.rows)
    actor = await audit_log.page(scope, audit_log.parse_filters(who="alicja"))
    assert actor.total == 100 and {row["actor_email"] for row in actor.rows} == {
        "alicja@example.com"}
    # x@ is no member here: as the one who acted they are found by the whole email only.
    await AuditEvent.insert(AuditEvent(tag="membership:person:leave", account_id=account["id"],
                                       identity_id=(await factories.identity("x@example.com"))))
    former = await audit_log.page(scope, audit_log.parse_filters(who="X@example.com"))
    assert former.total == 1 and former.rows[0]["actor_email"] == "x@example.com"
    assert (await audit_log.page(scope, audit_log.parse_filters(who="x@exa"))).total == 0
    nothing = await audit_log.page(scope, audit_log.parse_filters(who="nikt"), 7)
    assert (nothing.total, nothing.page, nothing.rows, nothing.more) == (0, 1, [], False)


async def test_a_page_is_one_statement_however_many_events():
    scope, _ = await owner_with_events(300)
    with counting_queries() as plain:
        await audit_log.page(scope, audit_log.Filters(), 2)
    with counting_queries() as filtered:
        await audit_log.page(scope, audit_log.parse_filters(who="bogdan", what="account"), 1)
    assert plain["count"] == filtered["count"] == 1


async def test_the_export_walks_by_key_in_batches(monkeypatch):
    monkeypatch.setattr(audit_log, "EXPORT_BATCH", 7)
    scope, _ = await owner_with_events(40)
    with counting_queries() as queries:
        text = "".join([chunk async for chunk in audit_log.export(scope, audit_log.Filters())])
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == list(audit_log.CSV_COLUMNS) and len(rows) == 1 + 40
    assert queries["count"] == 6  # 40 rows in batches of 7
    monkeypatch.setattr(audit_log, "EXPORT_LIMIT", 10)
    text = "".join([chunk async for chunk in audit_log.export(
        scope, audit_log.parse_filters(who="bogdan"))])
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 11 and {row[4] for row in rows[1:]} == {"bogdan@example.com"}


async def test_next_pages_are_read_by_key_in_one_statement(monkeypatch):
    """Issue 20: the "next" link's cursor reads the page after the last event shown (no
    OFFSET), still one statement; a stale or tampered cursor falls back to the number."""
    monkeypatch.setattr(audit_log, "COUNT_CAP", 120)
    scope, account = await owner_with_events(200)
    whole = await every_event(account)
    for filters in (audit_log.Filters(), audit_log.parse_filters(what="account")):
        expected = [row["id"] for row in (await audit_log.page(scope, filters, 1)).rows]
        number = 1
        page = await audit_log.page(scope, filters, 1)
        seen = [row["id"] for row in page.rows]
        while page.next_cursor:
            number += 1
            with counting_queries() as queries:
                page = await audit_log.page(scope, filters, number, page.next_cursor)
            assert queries["count"] == 1 and page.page == number
            seen += [row["id"] for row in page.rows]
        numbered = []
        for n in range(1, page.pages + 1):
            numbered += [row["id"] for row in (await audit_log.page(scope, filters, n)).rows]
        assert seen == numbered and seen[:len(expected)] == expected
    assert len(whole) == 200
    second = await audit_log.page(scope, audit_log.Filters(), 2)
    for cursor in ("zepsuty", "", "x" * 5000, paging.encode_cursor("audit", ["2020", "x"]),
                   paging.encode_cursor("name", [whole[0]])):
        again = await audit_log.page(scope, audit_log.Filters(), 2, cursor)
        assert [row["id"] for row in again.rows] == [row["id"] for row in second.rows]
