"""The statements issue 20's lists changed, before and after, interleaved in one run.

    .venv/bin/python -m bench.scale_queries [--scale 1] [--rounds 15]

Needs the database ``bench/scale.py --keep`` left (``portal_scale_<scale>``), migrated. Each
pair runs in turn (before, after, before, after, ...) on one connection with custom plans (as
the portal's connections do), timed at the client, for the big account (an accounting office
with 20,000 companies, 5,000 people, 300,000 events; its owner has 10,000 sessions). Machine
load moves both sides of a pair alike, so the ratio is the figure to read; the page-level
figures are in the "Vendor scale" section.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from datetime import UTC, datetime

import asyncpg

from bench.common import machine, write_section
from bench.scale import BIG_OWNER
from portal import db
from portal.services import people
from portal.testing.database import _with_database, server_url

_OLD_NAME = ("nullif(lower(btrim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, "
             "''))), '')")


def _people_before() -> str:
    """The people list's statement as it was: the company count as a cross join (run once
    per row of the page by a nested loop), the name key from the joined profile."""
    template = people._PEOPLE
    for old, new in [
        ("THEN\n                (SELECT count(*) FROM company c WHERE c.account = {})",
         "THEN every.companies"),
        ("LEFT JOIN invitation v ON v.id = found.id AND found.status = 'invited'\n",
         "LEFT JOIN invitation v ON v.id = found.id AND found.status = 'invited'\n"
         "CROSS JOIN (SELECT count(*) AS companies FROM company c WHERE c.account = {}) "
         "AS every\n"),
    ]:
        assert old in template, old
        template = template.replace(old, new)
    return template


def _people_sql(template: str, sort: str, before: bool) -> str:
    keys = people._ORDER[sort]
    if before:
        keys = tuple((_OLD_NAME if expr == people._NAME else
                      "i.last_login_at" if expr == people._LAST_LOGIN else expr, direction)
                     for expr, direction in keys)
    sql = (template.replace("KEYS", ", ".join(f"{e} AS sort_{n}" for n, (e, _) in enumerate(keys)))
           .replace("ORDER BY ORDER", "ORDER BY " + ", ".join(
               f"sort_{n} {d}" for n, (_, d) in enumerate(keys)))
           .replace("ORDER BY FINAL", "ORDER BY " + ", ".join(
               f"found.sort_{n} {d}" for n, (_, d) in enumerate(keys)))
           .replace("(MFA)", "(true)"))
    counter = iter(range(1, 100))
    return re.sub(r"\{\}", lambda _: f"${next(counter)}", sql)


_COMPANY_COLUMNS = "SELECT id, name, nip, key, is_main, city FROM company WHERE account = $1 "


async def pairs(con: asyncpg.Connection) -> list[tuple[str, tuple, tuple]]:
    account = await con.fetchval(
        "SELECT m.account FROM membership m JOIN identity i ON i.id = m.identity "
        "WHERE i.email = $1 AND m.role = 'owner' "
        "ORDER BY (SELECT count(*) FROM company c WHERE c.account = m.account) DESC LIMIT 1",
        BIG_OWNER)
    owner = await con.fetchval("SELECT id FROM identity WHERE email = $1", BIG_OWNER)
    edge = await con.fetchval(
        _COMPANY_COLUMNS.replace("id, name, nip, key, is_main, city", "id")
        + "ORDER BY sort_name, id OFFSET 9974 LIMIT 1", account)
    event = await con.fetchrow(
        "SELECT created_at, id FROM audit_event WHERE account_id = $1 "
        "ORDER BY created_at DESC, id DESC OFFSET 4999 LIMIT 1", account)
    session = await con.fetchrow(
        "SELECT last_seen_at, id FROM session WHERE identity = $1 "
        "ORDER BY last_seen_at DESC, id DESC OFFSET 4979 LIMIT 1", owner)
    before_people, after_people = _people_before(), people._PEOPLE

    def people_args(offset: int) -> tuple:
        return (account, account, True, "", "%%", "", "", "", "", 25, offset, account)

    result = []
    for label, sort, offset in [("people by name, first page", "name", 0),
                                ("people, last page, names descending", "-name", 4975),
                                ("people by last sign-in, first page", "last_login", 0)]:
        result.append((label, (_people_sql(before_people, sort, True), people_args(offset)),
                       (_people_sql(after_people, sort, False), people_args(offset))))
    for word in ("piek", "nie ma takiej firmy"):
        result.append((
            f"company search “{word}”: the count",
            ("SELECT count(*) FROM company WHERE account = $1 "
             "AND (name ILIKE $2 OR nip LIKE $3)", (account, f"%{word}%", f"%{word}%")),
            ("SELECT count(*) FROM company WHERE account = $1 "
             "AND (search_name LIKE $2 OR nip LIKE $3)", (account, f"%{word}%", f"%{word}%"))))
        result.append((
            f"company search “{word}”: the page",
            (_COMPANY_COLUMNS + "AND (name ILIKE $2 OR nip LIKE $3) ORDER BY sort_name, id "
             "LIMIT 25", (account, f"%{word}%", f"%{word}%")),
            (_COMPANY_COLUMNS + "AND (search_name LIKE $2 OR nip LIKE $3) "
             "ORDER BY sort_name, id LIMIT 25", (account, f"%{word}%", f"%{word}%"))))
    result.append((
        "companies page 400 of 800 (OFFSET 9,975 vs after its predecessor's last row)",
        (_COMPANY_COLUMNS + "ORDER BY sort_name, id LIMIT 25 OFFSET 9975", (account,)),
        (_COMPANY_COLUMNS + "AND (sort_name, id) > (SELECT e.sort_name, e.id FROM company e "  # noqa: S608
         "WHERE e.id = $2 AND e.account = $1) ORDER BY sort_name, id LIMIT 25",
         (account, edge))))
    result.append((
        "audit log page 101, its keys (OFFSET 5,000 vs after the last event of page 100)",
        ("SELECT id FROM audit_event WHERE account_id = $1 ORDER BY created_at DESC, id DESC "
         "LIMIT 50 OFFSET 5000", (account,)),
        ("SELECT id FROM audit_event WHERE account_id = $1 AND (created_at, id) < ($2, $3) "
         "ORDER BY created_at DESC, id DESC LIMIT 50", (account, event["created_at"],
                                                        event["id"]))))
    result.append((
        "sessions page 250 of the owner's 10,000 (OFFSET 4,980 vs by key)",
        ("SELECT id, ip, user_agent, last_seen_at FROM session WHERE identity = $1 "
         "ORDER BY id_hash = '' DESC, last_seen_at DESC, id DESC LIMIT 20 OFFSET 4980", (owner,)),
        ("SELECT id, ip, user_agent, last_seen_at FROM session WHERE identity = $1 "
         "AND id_hash <> '' AND (last_seen_at, id) < ($2, $3) "
         "ORDER BY last_seen_at DESC, id DESC LIMIT 20",
         (owner, session["last_seen_at"], session["id"]))))
    return result


async def measure(url: str, rounds: int) -> list[tuple[str, list[float], list[float]]]:
    con = await asyncpg.connect(**db.connect_kwargs(url))
    try:
        await con.execute("SET plan_cache_mode = force_custom_plan")
        figures = []
        for label, (before_sql, before_args), (after_sql, after_args) in await pairs(con):
            before, after = [], []
            old = await con.fetch(before_sql, *before_args)  # warm both, and compare rows
            new = await con.fetch(after_sql, *after_args)
            if "OFFSET" in label:  # by key: the very rows the OFFSET gave
                assert [tuple(r) for r in old] == [tuple(r) for r in new], label
            for _ in range(rounds):
                for sql, args, into in ((before_sql, before_args, before),
                                        (after_sql, after_args, after)):
                    start = time.perf_counter()
                    await con.fetch(sql, *args)
                    into.append(time.perf_counter() - start)
            figures.append((label, before, after))
        return figures
    finally:
        await con.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    name = "portal_scale_" + f"{args.scale:g}".replace(".", "_")
    with server_url() as admin_url:
        figures = asyncio.run(measure(_with_database(admin_url, name), args.rounds))
    lines = ["| statement (big account) | before: median / p95 | after: median / p95 | ratio |",
             "|---|---|---|---|"]
    for label, before, after in figures:
        b, a = statistics.median(before) * 1000, statistics.median(after) * 1000
        bq = sorted(before)[int(0.95 * (len(before) - 1))] * 1000
        aq = sorted(after)[int(0.95 * (len(after) - 1))] * 1000
        lines.append(f"| {label} | {b:.1f} / {bq:.1f} ms | {a:.1f} / {aq:.1f} ms | "
                     f"**{b / a:.1f}x** |")
    body = f"""
`python -m bench.scale_queries --scale {args.scale:g} --rounds {args.rounds}` on {machine()}, \
{datetime.now(UTC):%Y-%m-%d}, on the database `bench/scale.py --keep` left. Each pair ran in \
turn, {args.rounds} times, on one connection with custom plans, timed at the client (the \
statements alone, no HTTP or rendering).

{chr(10).join(lines)}
"""
    print(body)
    if not args.no_write:
        write_section("Vendor scale: the changed statements, interleaved", body)


if __name__ == "__main__":
    main()
