"""The people pages at vendor scale (issue 20), before and after, interleaved in one run.

    .venv/bin/python -m bench.scale_people --database portal_scale_people --before /tmp/old/src
                                           [--requests 30]

Two real servers (one worker each) on the same copy of the database ``bench/scale.py --keep``
left, migrated by today's code: one runs the code under ``--before`` (e.g. ``git archive main
src | tar -x -C /tmp/old``), the other this checkout. One signed-in client per account and
server; each page is asked of the old server, then of the new one, ``--requests`` times, for
the big account (an accounting office with 5,000 people and 20,000 companies) and a small one
(2 people). A link with a cursor (``after=``) is taken from the new server's page; the old
server ignores the cursor and counts the same page by number, which is what it did. Machine
load moves both servers alike, so the ratio is the figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from contextlib import ExitStack
from datetime import UTC, datetime

import asyncpg

from bench.common import machine, percentile, server, write_section
from bench.scale import (
    BIG_OWNER,
    PEOPLE_SEARCHES,
    SMALL_OWNER,
    TARGET_MS,
    last_page,
    next_link,
    signed_in,
    timed,
)
from portal import db
from portal.testing.database import _with_database, server_url

HTMX = {"HX-Request": "true"}


async def paths(client, con: asyncpg.Connection, email: str) -> list[tuple[str, str, dict]]:
    """(label, path, headers) of every people page and fragment, for the account ``email``
    owns (cursors from the new server, ``client``)."""
    account = await con.fetchval(
        "SELECT m.account FROM membership m JOIN identity i ON i.id = m.identity "
        "WHERE i.email = $1 AND m.role = 'owner' ORDER BY (SELECT count(*) FROM membership o "
        "WHERE o.account = m.account) DESC LIMIT 1", email)
    member = await con.fetchval(
        "SELECT id FROM membership WHERE account = $1 AND role = 'member' LIMIT 1", account)
    first = await client.get("/users?sort=name", headers=HTMX)
    pages = last_page(first.text)
    middle = max(1, pages // 2)
    deep = (next_link((await client.get(f"/users?sort=name&page={middle}", headers=HTMX)).text)
            if pages > middle else "/users?sort=name")
    found = [
        ("people `GET /users`, the whole page", "/users", {}),
        ("people first page (fragment)", "/users", HTMX),
        ("people by name, first page", "/users?sort=name", HTMX),
        (f"people by name, page {middle + 1} (next by key)", deep, HTMX),
        ("people, last page, names descending", f"/users?sort=-name&page={pages}", HTMX),
        ("people by last sign-in", "/users?sort=last_login", HTMX),
        ("people filtered: admins", "/users?role=admin", HTMX),
        ("people filtered: second factor missing", "/users?mfa=missing", HTMX),
        ("people search, 6 searches", "/users?q={q}", HTMX),
    ]
    if member is not None:
        access = f"/users/{member}/access"
        matrix = await client.get(access, headers=HTMX)
        matrix_pages = last_page(matrix.text)
        if matrix_pages > 2:
            half = matrix_pages // 2
            found.append((f"access matrix page {half + 1} (next by key)", next_link(
                (await client.get(f"{access}?page={half}", headers=HTMX)).text), HTMX))
        found.append(("access matrix, first page", access, HTMX))
    return found


async def measure(old_base: str, new_base: str, url: str, requests: int,
                  secrets: dict[str, str]) -> dict:
    import httpx

    con = await asyncpg.connect(**db.connect_kwargs(url))
    results: dict = {}
    try:
        for label, email in (("big", BIG_OWNER), ("small", SMALL_OWNER)):
            old, new = await signed_in(old_base, email), await signed_in(new_base, email)
            apis = [httpx.AsyncClient(base_url=base, timeout=60, headers={
                "Authorization": f"Bearer {secrets[label]}"}) for base in (old_base, new_base)]
            listing = (await apis[1].get("/api/v1/people")).json()
            cases = [(name, path, headers, (old, new))
                     for name, path, headers in await paths(new, con, email)]
            cases.append(("API `GET /api/v1/people`", "/api/v1/people", {}, tuple(apis)))
            if listing["next_cursor"]:
                cases.append(("API people page 2 (after=)", "/api/v1/people?page=2&after="
                              + listing["next_cursor"], {}, tuple(apis)))
            figures = {}
            for name, path, headers, (before_client, after_client) in cases:
                words = PEOPLE_SEARCHES if "{q}" in path else ("",)
                await timed(before_client, path, 3, words, headers)  # warm both
                await timed(after_client, path, 3, words, headers)
                before, after = [], []
                for i in range(requests):
                    word = [words[i % len(words)]]
                    before += await timed(before_client, path, 1, word, headers)
                    after += await timed(after_client, path, 1, word, headers)
                figures[name] = (before, after)
            results[label] = figures
            for client in (old, new, *apis):
                await client.aclose()
    finally:
        await con.close()
    return results


def report(args, results: dict, load: list[float]) -> str:
    def cell(values: list[float]) -> str:
        return (f"{statistics.median(values) * 1000:.1f} / "
                f"{percentile(values, 95) * 1000:.1f} ms")

    lines = []
    for label in ("big", "small"):
        title = ("The big account (5,000 people, 20,000 companies)" if label == "big"
                 else "A small account (2 people, 3 companies)")
        lines += [f"**{title}**",
                  "", "| page or fragment | before: median / p95 | after: median / p95 | "
                  "ratio (medians) | after p95 ≤ 50 ms |", "|---|---|---|---|---|"]
        for name, (before, after) in results[label].items():
            ok = "yes" if percentile(after, 95) * 1000 <= TARGET_MS else "**no**"
            lines.append(f"| {name} | {cell(before)} | {cell(after)} | "
                         f"**{statistics.median(before) / statistics.median(after):.1f}x** | "
                         f"{ok} |")
        lines.append("")
    return f"""
`python -m bench.scale_people --database {args.database} --requests {args.requests}` on \
{machine()}, {datetime.now(UTC):%Y-%m-%d}, load average (1/5/15 min, the higher of start and \
end) {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. Two servers (one worker each) on one copy \
of the vendor-scale database: "before" runs the code before the people list paged by key, \
"after" this one; each request went to one, then the other, {args.requests} times, one client \
each, timed at the client (HTTP, rendering and all). The machine is shared (2 cores, other \
work running), so absolute figures are high; the ratio is the figure to read.

{chr(10).join(lines)}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True, help="a copy of the kept database")
    parser.add_argument("--before", required=True, help="the old code's src directory")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with server_url() as admin_url:
        url = _with_database(admin_url, args.database)
        secrets = asyncio.run(_secrets(url))
        here = os.environ.get("PYTHONPATH", "")
        load = os.getloadavg()
        with ExitStack() as stack:
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (args.before, here) if p)
            old_base = stack.enter_context(server(url))
            os.environ["PYTHONPATH"] = here
            new_base = stack.enter_context(server(url))
            results = asyncio.run(measure(old_base, new_base, url, args.requests, secrets))
        load = [max(a, b) for a, b in zip(load, os.getloadavg(), strict=True)]
    body = report(args, results, load)
    print(body)
    if not args.no_write:
        write_section("People at vendor scale: pages, interleaved", body)


async def _secrets(url: str) -> dict[str, str]:
    con = await asyncpg.connect(**db.connect_kwargs(url))
    try:
        return {row["label"]: row["secret"] for row in
                await con.fetch("SELECT label, secret FROM bench_scale")}
    finally:
        await con.close()


if __name__ == "__main__":
    main()
