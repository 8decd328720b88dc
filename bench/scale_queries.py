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
import os
import re
import statistics
import time
from datetime import UTC, datetime

import asyncpg

from bench.common import machine, write_section
from bench.scale import BIG_OWNER
from portal import db
from portal.services import companies, company_data, people
from portal.testing.database import _with_database, server_url

# The people list as it was before it paged by key (issue 20, services/people.py before the
# people_pages migration): members and invitations unioned, counted by a window function,
# sorted whole and cut by OFFSET. Kept here verbatim so the pair runs on one database.
_OLD_NAME = "people.sort_name"
_OLD_EMAIL = 'people.search COLLATE "C"'
#: A lookup per person by primary key: as a join, PostgreSQL hashes all 200,000 identities of a
#: vendor's database to sort one account's 5,000 people (190 ms against 10 ms).
_OLD_LAST_LOGIN = "(SELECT l.last_login_at FROM identity l WHERE l.id = people.identity_id)"

#: Each sort as its keys: (expression over the narrow rows, direction). ``search`` starts with
#: the lower-cased email, so it orders by email; ``i`` (identity) and ``p`` (profile) are joined
#: in the first step only when a key or filter names them (the planner drops unused joins).
_OLD_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "email": ((_OLD_EMAIL, "ASC"), ("people.id", "ASC")),
    "-email": ((_OLD_EMAIL, "DESC"), ("people.id", "ASC")),
    "name": ((_OLD_NAME, "ASC NULLS LAST"), (_OLD_EMAIL, "ASC"), ("people.id", "ASC")),
    "-name": ((_OLD_NAME, "DESC NULLS LAST"), (_OLD_EMAIL, "ASC"), ("people.id", "ASC")),
    "role": (("CASE people.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END", "ASC"),
             (_OLD_EMAIL, "ASC"), ("people.id", "ASC")),
    "last_login": ((_OLD_LAST_LOGIN, "DESC NULLS LAST"), (_OLD_EMAIL, "ASC"),
                   ("people.id", "ASC")),
    "newest": (("people.created_at", "DESC"), ("people.id", "ASC")),
}

_OLD_HAS_PASSKEY = "EXISTS (SELECT 1 FROM passkey k WHERE k.identity = i.id)"
_OLD_MFA_MISSING = f"""people.status = 'active' AND NOT CASE {{}}
    WHEN 'passkey' THEN {_OLD_HAS_PASSKEY}
    WHEN 'app' THEN i.totp_confirmed_at IS NOT NULL OR {_OLD_HAS_PASSKEY}
    WHEN 'any' THEN i.totp_confirmed_at IS NOT NULL OR i.mfa_email_enabled OR {_OLD_HAS_PASSKEY}
    ELSE true END"""

# Members and (for those who manage people) pending invitations, as one list, in two steps:
# narrow rows are filtered, counted, sorted and cut to a page; only that page is joined with
# the identity, profile and invitation details. The account id is the first placeholder
# (tenancy.raw), repeated for the invitations and the company count.
_OLD_PEOPLE = """
WITH people AS (
    SELECT m.id, 'active' AS status, m.role, m.created_at, m.search_text AS search,
           m.identity AS identity_id, m.sort_name
    FROM membership m
    WHERE m.account = {}
    UNION ALL
    SELECT v.id, 'invited', v.role, v.created_at, lower(v.email), NULL, NULL
    FROM invitation v
    WHERE v.account = {} AND v.state = 'pending' AND {}
), found AS (
    SELECT people.*, count(*) OVER () AS total, KEYS
    FROM people
    LEFT JOIN identity i ON i.id = people.identity_id
    LEFT JOIN profile p ON p.identity = people.identity_id
    WHERE ({} = '' OR people.search LIKE lower({}))
      AND ({} = '' OR people.role = {})
      AND ({} = '' OR people.status = {})
      AND (MFA)
    ORDER BY ORDER
    LIMIT {} OFFSET {}
)
SELECT found.id, found.status, found.role, found.created_at, found.identity_id, found.total,
       coalesce(i.email, v.email) AS email,
       btrim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')) AS name,
       i.last_login_at, coalesce(i.totp_confirmed_at IS NOT NULL, false) AS has_app,
       coalesce(i.mfa_email_enabled, false) AS has_email,
       coalesce(EXISTS (SELECT 1 FROM passkey k WHERE k.identity = i.id), false)
           AS has_passkey,
       v.expires_at, coalesce(v.expires_at <= now(), false) AS lapsed,
       CASE WHEN found.role IN ('owner', 'admin') THEN
                (SELECT count(*) FROM company c WHERE c.account = {})
            WHEN found.status = 'invited' THEN
                (SELECT count(*) FROM jsonb_each_text(v.company_levels) AS level
                 WHERE level.value <> 'none')
            ELSE (SELECT count(*) FROM company_access ca WHERE ca.membership = found.id)
       END::int AS company_count
FROM found
LEFT JOIN identity i ON i.id = found.identity_id
LEFT JOIN profile p ON p.identity = found.identity_id
LEFT JOIN invitation v ON v.id = found.id AND found.status = 'invited'
ORDER BY FINAL
"""


def _people_before(sort: str, mfa: bool = False) -> str:
    keys = _OLD_ORDER[sort]
    sql = (_OLD_PEOPLE.replace("KEYS", ", ".join(f"{e} AS sort_{n}"
                                                 for n, (e, _) in enumerate(keys)))
           .replace("ORDER BY ORDER", "ORDER BY " + ", ".join(
               f"sort_{n} {d}" for n, (_, d) in enumerate(keys)))
           .replace("ORDER BY FINAL", "ORDER BY " + ", ".join(
               f"found.sort_{n} {d}" for n, (_, d) in enumerate(keys)))
           .replace("(MFA)", f"({_OLD_MFA_MISSING})" if mfa else "(true)"))
    return _numbered(sql)


def _numbered(sql: str) -> str:
    counter = iter(range(1, 100))
    return re.sub(r"\{\}", lambda _: f"${next(counter)}", sql)


def _after(statement) -> tuple[str, tuple]:
    """A statement of today's people list (people.count_statement / page_statement)."""
    return _numbered(statement.sql), tuple(statement.args)


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
    result = []
    people_edge = await con.fetchval(  # the last person of page 100 by name
        "SELECT id FROM membership WHERE account = $1 ORDER BY coalesce(sort_name, "
        "E'\\U0010FFFF'), search_text COLLATE \"C\", id OFFSET 2499 LIMIT 1", account)
    total = await con.fetchval(
        "SELECT (SELECT count(*) FROM membership WHERE account = $1) + (SELECT count(*) FROM "
        "invitation WHERE account = $1 AND state = 'pending')", account)
    last = (total - 1) // 25 * 25  # rows before the last page

    def old(sort: str, offset: int, *, q: str = "", role: str = "", status: str = "",
            mfa: str = "") -> list[tuple[str, tuple]]:
        pattern = "%" + q + "%" if q else "%%"
        return [(_people_before(sort, bool(mfa)),
                 (account, account, True, q, pattern, role, role, status, status,
                  *((mfa,) if mfa else ()), 25, offset, account))]

    def new(sort: str, *, q: str = "", role: str = "", mfa: str = "", nobody: bool = False,
            **where) -> list[tuple[str, tuple]]:
        found = people.Filters(account_id=account, text=q, role=role, mfa=bool(mfa),
                               policy=mfa or "none", members=True, invitations=not mfa)
        counting = [_after(people.count_statement(found))]
        # A count of 0 needs no page (people.list_page skips it).
        return counting if nobody else [*counting,
                                        _after(people.page_statement(found, sort, **where))]

    for label, before, after in [
        ("people by email (the default), first page", old("email", 0), new("email")),
        ("people by name, first page", old("name", 0), new("name")),
        ("people by name, page 101 (OFFSET 2,500 vs after page 100's last person)",
         old("name", 2500), new("name", edge=people_edge)),
        ("people, last page, names descending", old("-name", last),
         new("-name", reverse=True, limit=total - last)),
        ("people by last sign-in, first page", old("last_login", 0), new("last_login")),
        ("people filtered by role (admins), by role", old("role", 0, role="admin"),
         new("role", role="admin")),
        ("people missing the second factor (policy: app)", old("email", 0, mfa="app"),
         new("email", mfa="app")),
        ("people search “kowal”", old("email", 0, q="kowal"), new("email", q="kowal")),
        ("people search, no match", old("email", 0, q="nie ma takiej osoby"),
         new("email", q="nie ma takiej osoby", nobody=True)),
    ]:
        result.append((label, before, after))
    matrix_edge = await con.fetchval(  # the last company of the matrix's page 200 (50 a page)
        "SELECT id FROM company WHERE account = $1 ORDER BY sort_name, id OFFSET 9999 LIMIT 1",
        account)
    matrix = "SELECT id, name, nip, key, is_main, city FROM company WHERE account = $1 "
    result.append((
        "access matrix page 201 (OFFSET 10,000 vs after page 200's last company)",
        [("SELECT count(*) FROM company WHERE account = $1", (account,)),
         (matrix + "ORDER BY sort_name, id LIMIT 50 OFFSET 10000", (account,))],
        [("SELECT count(*) FROM company WHERE account = $1", (account,)),
         (matrix + "AND (sort_name, id) > (SELECT e.sort_name, e.id FROM company e "  # noqa: S608
          "WHERE e.id = $2 AND e.account = $1) ORDER BY sort_name, id LIMIT 50",
          (account, matrix_edge))]))
    bucket = companies.grams_bucket(account)
    grams = ("(search_grams @> portal_grams($4::integer, $5) OR search_grams @> "
             "portal_grams($4::integer, $6)) AND ")
    for word in ("piek", "zakład stol", "kowalski", "nie ma takiej firmy"):
        digits = company_data.nip_digits(word)
        like = (account, f"%{word}%", f"%{digits}%")
        indexed = (*like, bucket, word, digits)
        result.append((
            f"company search “{word}”: the count (LIKE vs trigram index + LIKE)",
            ("SELECT count(*) FROM company WHERE account = $1 "
             "AND (search_name LIKE $2 OR nip LIKE $3)", like),
            ("SELECT count(*) FROM company WHERE account = $1 AND " + grams  # noqa: S608 (fixed)
             + "(search_name LIKE $2 OR nip LIKE $3)", indexed)))
        result.append((
            f"company search “{word}”: the page",
            (_COMPANY_COLUMNS + "AND (search_name LIKE $2 OR nip LIKE $3) "
             "ORDER BY sort_name, id LIMIT 25", like),
            (_COMPANY_COLUMNS + "AND " + grams + "(search_name LIKE $2 OR nip LIKE $3) "
             "ORDER BY sort_name, id LIMIT 25", indexed)))
    result.append((
        "company search “526” (every NIP): the count (all vs up to 1,001)",
        ("SELECT count(*) FROM company WHERE account = $1 "
         "AND (search_name LIKE $2 OR nip LIKE $2)", (account, "%526%")),
        ("SELECT id FROM company WHERE account = $1 AND (search_grams @> portal_grams("
         "$3::integer, '526')) AND (search_name LIKE $2 OR nip LIKE $2) LIMIT 1001",
         (account, "%526%", bucket))))
    result.append((
        "companies page 400 of 800 by number (OFFSET of whole rows vs of ids, then 25 rows)",
        (_COMPANY_COLUMNS + "ORDER BY sort_name, id LIMIT 25 OFFSET 9975", (account,)),
        (_COMPANY_COLUMNS + "AND id IN (SELECT id FROM company WHERE account = $1 "  # noqa: S608
         "ORDER BY sort_name, id LIMIT 25 OFFSET 9975) ORDER BY sort_name, id", (account,))))
    switcher = ("SELECT a.public_id, a.name, a.nip, m.role FROM membership m CROSS JOIN LATERAL "
                "(SELECT public_id, name, nip, sort_name FROM account WHERE id = m.account "
                "LIMIT 1) AS a WHERE m.identity = $1 ORDER BY KEY, a.public_id LIMIT 50")
    result.append((
        "switcher, the owner's 1,000 accounts (portal_sort_key per row vs account.sort_name)",
        (switcher.replace("KEY", "portal_sort_key(a.name)"), (owner,)),
        (switcher.replace("KEY", "a.sort_name"), (owner,))))
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
    if session is None:  # the sessions have expired since bench/scale.py made them
        return result
    result.append((
        "sessions page 250 of the owner's 10,000 (OFFSET 4,980 vs by key)",
        ("SELECT id, ip, user_agent, last_seen_at FROM session WHERE identity = $1 "
         "ORDER BY id_hash = '' DESC, last_seen_at DESC, id DESC LIMIT 20 OFFSET 4980", (owner,)),
        ("SELECT id, ip, user_agent, last_seen_at FROM session WHERE identity = $1 "
         "AND id_hash <> '' AND (last_seen_at, id) < ($2, $3) "
         "ORDER BY last_seen_at DESC, id DESC LIMIT 20",
         (owner, session["last_seen_at"], session["id"]))))
    return result


def _statements(side) -> list[tuple[str, tuple]]:
    """One side of a pair: a statement (sql, args), or several run one after another."""
    return [side] if isinstance(side[0], str) else list(side)


async def measure(url: str, rounds: int, only_people: bool = False
                  ) -> list[tuple[str, list[float], list[float]]]:
    con = await asyncpg.connect(**db.connect_kwargs(url))
    try:
        await con.execute("SET plan_cache_mode = force_custom_plan")
        figures = []
        for label, before_side, after_side in await pairs(con):
            if only_people and not label.startswith(PEOPLE_LABELS):
                continue
            before_run, after_run = _statements(before_side), _statements(after_side)
            before, after = [], []
            old = [await con.fetch(sql, *args) for sql, args in before_run]  # warm both
            new = [await con.fetch(sql, *args) for sql, args in after_run]
            if "OFFSET" in label:  # by key: the very rows the OFFSET gave
                assert [r["id"] for r in old[-1]] == [r["id"] for r in new[-1]], label
            for _ in range(rounds):
                for run, into in ((before_run, before), (after_run, after)):
                    start = time.perf_counter()
                    for sql, args in run:
                        await con.fetch(sql, *args)
                    into.append(time.perf_counter() - start)
            figures.append((label, before, after))
        return figures
    finally:
        await con.close()


#: The pairs of the people list and the access matrix (``--people``).
PEOPLE_LABELS = ("people", "access matrix")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--database", help="a copy of the kept database to measure on "
                        "(default portal_scale_<scale>)")
    parser.add_argument("--people", action="store_true", help="only the people list and "
                        "the access matrix; writes the \"People at vendor scale\" section")
    args = parser.parse_args()
    name = args.database or "portal_scale_" + f"{args.scale:g}".replace(".", "_")
    with server_url() as admin_url:
        load = os.getloadavg()
        figures = asyncio.run(measure(_with_database(admin_url, name), args.rounds,
                                      args.people))
        load = [max(a, b) for a, b in zip(load, os.getloadavg(), strict=True)]
    lines = ["| statement (big account) | before: median / p95 | after: median / p95 | ratio |",
             "|---|---|---|---|"]
    for label, before, after in figures:
        b, a = statistics.median(before) * 1000, statistics.median(after) * 1000
        bq = sorted(before)[int(0.95 * (len(before) - 1))] * 1000
        aq = sorted(after)[int(0.95 * (len(after) - 1))] * 1000
        lines.append(f"| {label} | {b:.1f} / {bq:.1f} ms | {a:.1f} / {aq:.1f} ms | "
                     f"**{b / a:.1f}x** |")
    command = (f"python -m bench.scale_queries --scale {args.scale:g} --rounds {args.rounds}"
               + (f" --database {args.database}" if args.database else "")
               + (" --people" if args.people else ""))
    body = f"""
`{command}` on {machine()}, {datetime.now(UTC):%Y-%m-%d}, load average (1/5/15 min, the \
higher of start and end) {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, on the database \
`bench/scale.py --keep` left (or a copy of it). Each pair ran in turn, {args.rounds} times, on \
one connection with custom plans, timed at the client (the statements alone, no HTTP or \
rendering; a side of several statements is timed whole: today's people list is a count and a \
page).

{chr(10).join(lines)}
"""
    print(body)
    if not args.no_write:
        write_section("People at vendor scale: the list's statements, interleaved" if args.people
                      else "Vendor scale: the changed statements, interleaved", body)


if __name__ == "__main__":
    main()
