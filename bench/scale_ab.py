"""Every list and fragment at vendor scale, before and after, interleaved in one run (issue 20).

    .venv/bin/python -m bench.scale_ab --database portal_scale_mine \\
        --before-database portal_scale_mine_before --before-src /tmp/before [--requests 40]

Two servers (one worker each) on two copies of one database that ``bench/scale.py`` filled
(``CREATE DATABASE … TEMPLATE portal_scale_1``): the "after" server runs this checkout on
``--database`` (its pending migrations applied at start), the "before" one the code in
``--before-src`` (e.g. ``git archive <rev> src | tar -x -C /tmp/before``) on
``--before-database``. Each request of ``bench/scale.py``'s list, and a few more (API audit log
and its pages, the support and API key pages), is sent to one server, then the other, in turn,
``--requests`` times, for the big and the small account; machine load moves both alike, so
the ratio is the figure to read. The CSV export alternates likewise (3 runs each for the big
account). Writes the "Vendor scale: before and after, interleaved" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench.common import machine, percentile, server, write_section
from bench.scale import (
    BIG_OWNER,
    COMPANY_SEARCHES,
    PEOPLE_SEARCHES,
    ROWS,
    SMALL_OWNER,
    TARGET_MS,
    export,
    last_page,
    next_link,
    server_process,
    signed_in,
)
from portal import db
from portal.testing.database import _with_database, server_url

HTMX = {"HX-Request": "true"}

EXTRA_ROWS = [
    ("API audit", "`GET /api/v1/audit`"),
    ("API audit page 100", "`GET /api/v1/audit?page=100` (after: by key from page 99)"),
    ("API companies search", "`GET /api/v1/companies?q=…`, 8 searches"),
    ("ticket form", "support `GET /support` (whole page: tickets and the form's company list)"),
    ("API key form", "API keys `GET /api-keys` (whole page: keys and the form's company list)"),
]


async def secrets_of(url: str) -> dict[str, str]:
    con = await asyncpg.connect(**db.connect_kwargs(url))
    try:
        return {r["label"]: r["secret"] for r in await con.fetch(
            "SELECT label, secret FROM bench_scale")}
    finally:
        await con.close()


async def probes(base: str, secret: str, email: str, n: int) -> tuple[list, list]:
    """This side's requests: (key, client, url template, words, headers) and its clients."""
    client = await signed_in(base, email)
    api = httpx.AsyncClient(base_url=base, timeout=60,
                            headers={"Authorization": f"Bearer {secret}"})
    company_pages = last_page((await client.get("/companies", headers=HTMX)).text)
    people_pages = last_page((await client.get("/users", headers=HTMX)).text)
    middle = max(1, company_pages // 2)
    middle_html = (await client.get(f"/companies?page={middle}", headers=HTMX)).text
    after_middle = next_link(middle_html) if company_pages > 1 else "/companies"
    audit_100 = (await client.get("/users/audit?page=100", headers=HTMX)).text
    after_100 = next_link(audit_100) if 'rel="next"' in audit_100 else "/users/audit?page=100"
    page_99 = (await api.get("/api/v1/audit?page=99")).json()
    api_100 = "/api/v1/audit?page=100" + (
        f"&after={page_99['next_cursor']}" if page_99.get("next_cursor") else "")
    await client.get("/companies?q=piek", headers=HTMX)
    fragment, page, none = HTMX, {}, {}
    listing = [
        ("companies search", client, "/companies?q={q}", COMPANY_SEARCHES, fragment),
        ("companies first page", client, "/companies", [""], fragment),
        ("companies last page by name", client,
         f"/companies?sort=-name&page={company_pages}", [""], fragment),
        ("people first page", client, "/users", [""], fragment),
        ("people by last sign-in", client, "/users?sort=last_login", [""], fragment),
        ("people search", client, "/users?q={q}", PEOPLE_SEARCHES, fragment),
        ("people last page", client, f"/users?sort=-name&page={people_pages}", [""], fragment),
        ("audit page", client, "/users/audit", [""], fragment),
        ("audit page filtered by who", client, "/users/audit?who={q}",
         ["osoba1", "wlasciciel", "firma-7"], fragment),
        ("audit page 100", client, "/users/audit?page=100", [""], fragment),
        ("companies middle page", client, f"/companies?page={middle}", [""], fragment),
        ("companies next page by key", client, after_middle, [""], fragment),
        ("audit next page by key", client, after_100, [""], fragment),
        ("account card", client, "/account", [""], fragment),
        ("switcher", client, "/accounts?next=/users", [""], fragment),
        ("switcher filter", client, "/accounts?q={q}&next=/users",
         ["klient 1", "klient 42", "5260", "nic"], fragment),
        ("home", client, "/", [""], page),
        ("API companies", api, "/api/v1/companies", [""], none),
        ("API companies last page", api, f"/api/v1/companies?page={company_pages}", [""], none),
        ("API people", api, "/api/v1/people", [""], none),
        ("API audit", api, "/api/v1/audit", [""], none),
        ("API audit page 100", api, api_100, [""], none),
        ("API companies search", api, "/api/v1/companies?q={q}", COMPANY_SEARCHES, none),
        ("ticket form", client, "/support", [""], page),
        ("API key form", client, "/api-keys", [""], page),
    ]
    return listing, [client, api]


async def one(client: httpx.AsyncClient, url: str, headers: dict) -> float:
    start = time.perf_counter()
    response = await client.get(url, headers=headers)
    took = time.perf_counter() - start
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return took


async def measure(bases: dict[str, str], secrets: dict[str, str], n: int) -> dict:
    results: dict = {side: {} for side in bases}
    for label, email in (("big", BIG_OWNER), ("small", SMALL_OWNER)):
        sides = {}
        for side, base in bases.items():
            sides[side] = await probes(base, secrets[label], email, n)
        keys = [probe[0] for probe in sides["after"][0]]
        for side in bases:
            results[side][label] = {"times": {key: [] for key in keys}, "export": []}
        for index, key in enumerate(keys):
            for i in range(n):
                for side in bases:  # before, after, before, after, ...
                    _, client, url, words, headers = sides[side][0][index]
                    results[side][label]["times"][key].append(
                        await one(client, url.format(q=words[i % len(words)]), headers))
        for _ in range(3 if label == "big" else 1):
            for side, base in bases.items():
                run = await export(sides[side][1][0], server_process(base))
                results[side][label]["export"].append(run)
        for side in bases:
            results[side][label]["times"]["CSV export"] = [
                run["seconds"] for run in results[side][label]["export"]]
            for client in sides[side][1]:
                await client.aclose()
    return results


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000


def report(args, results: dict, load: tuple[float, float]) -> str:
    rows = [*(row for row in ROWS if row[0] != "security"), *EXTRA_ROWS]  # /security: scale.py
    lines = ["| request | big before | big after | ratio | small before | small after | ratio |",
             "|---|---|---|---|---|---|---|"]
    worst = {"before": 0.0, "after": 0.0}
    over = []
    for key, label in rows:
        cells = []
        for which in ("big", "small"):
            before = results["before"][which]["times"][key]
            after = results["after"][which]["times"][key]
            for side, values in (("before", before), ("after", after)):
                worst[side] = max(worst[side], ms(values, 95))
            if ms(after, 95) > TARGET_MS:
                over.append(f"{label} ({which}, p95 {ms(after, 95):.0f} ms)")
            cells += [f"{ms(before, 50):.1f} / {ms(before, 95):.1f} ms",
                      f"{ms(after, 50):.1f} / {ms(after, 95):.1f} ms",
                      f"**{ms(before, 50) / ms(after, 50):.1f}x**"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    def export_line(side: str) -> str:
        runs = results[side]["big"]["export"]
        return (f"{side}: " + ", ".join(
            f"{r['rows']:,} rows in {r['seconds']:.2f} s (first byte "
            f"{r['first_byte'] * 1000:.0f} ms, peak RSS +{r['rss_growth']:.1f} MB)"
            for r in runs))

    verdict = "met" if not over else "**not met**: " + "; ".join(over)
    return f"""
`python -m bench.scale_ab --requests {args.requests}` on {machine()}, \
{datetime.now(UTC):%Y-%m-%d}, load average {load[0]:.1f} at the start and {load[1]:.1f} at the \
end (the machine was shared). Two servers, one worker each, on two copies of the vendor-scale \
database `bench/scale.py` filled (`portal_scale_1`: 200,000 IDs, 50,000 accounts, 500,000 \
companies, 1,000,000 memberships, 2,000,000 audit events; the big account an accounting office \
with 20,000 companies, 5,000 people and 300,000 events, the small one 3 companies, 2 people, \
100 events): "before" is `{args.before_label}` on its copy, "after" this checkout with its \
migrations. Each request went to one, then the other, {args.requests} times; median / p95 \
at the client, htmx fragments unless marked; the ratio is before ÷ after of the medians.

{chr(10).join(lines)}

CSV export of the big account's audit log (the newest 100,000 events), alternating: \
{export_line("before")}; {export_line("after")}.

Target: every list and fragment p95 ≤ {TARGET_MS:.0f} ms for both accounts (the CSV export \
aside) — {verdict}. Worst p95 before {worst["before"]:.0f} ms, after {worst["after"]:.0f} ms.
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True, help="the 'after' copy (migrated)")
    parser.add_argument("--before-database", required=True)
    parser.add_argument("--before-src", type=Path, required=True,
                        help="a directory holding the 'before' code's src/")
    parser.add_argument("--before-label", default="the code before",
                        help="what to call the 'before' code in the report (e.g. a commit)")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PORTAL_API_RATE_PER_MINUTE", "1000000")
    with server_url() as admin_url:  # PORTAL_TEST_DATABASE_URL's server, as bench/scale.py
        after_url = _with_database(admin_url, args.database)
        before_url = _with_database(admin_url, args.before_database)
        secrets = asyncio.run(secrets_of(after_url))
        start_load = os.getloadavg()[0]
        before_path = str((args.before_src / "src").resolve())
        with server(before_url, extra_env={"PYTHONPATH": before_path}) as before, \
                server(after_url) as after:
            results = asyncio.run(measure({"before": before, "after": after}, secrets,
                                          args.requests))
    body = report(args, results, (start_load, os.getloadavg()[0]))
    print(body)
    if not args.no_write:
        write_section("Vendor scale: before and after, interleaved", body)


if __name__ == "__main__":
    main()
