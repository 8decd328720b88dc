"""CPU per token request, application + PostgreSQL, from /proc: a refresh grant and a code
exchange, before and after (issue 20), interleaved in one run.

    .venv/bin/python -m bench.token [--baseline REV] [--requests 150] [--rounds 5]

Two real servers (``portal serve``, one process each) run side by side: the code at REV (the
"before", default the commit before the token-endpoint work) and this tree (the "after"),
each on its own fresh database. In every round, in turn, each server takes ``--requests``
sequential refresh grants, then as many code exchanges (the codes are got beforehand, outside
the measured window), for an RS256 client and, after, also for an ES256 one. For each batch
the CPU the server process used (utime + stime of every thread, /proc/PID/stat) and the CPU of
the PostgreSQL backends serving its pool (pg_stat_activity → /proc/PID/stat) are divided by
the number of requests. The load generator's own CPU is not counted. Writes the
"OIDC token endpoint (CPU per request)" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import asyncpg
import httpx

from bench.common import ROOT, free_port, machine, write_section
from portal import db
from portal.services import oidc, oidc_clients
from portal.testing import factories
from portal.testing.database import test_database

REDIRECT = "https://bench.example.com/cb"
SCOPE = "openid email profile accounts offline_access"
TICK = os.sysconf("SC_CLK_TCK")
#: The tree just before the token-endpoint work of issue 20 (Task A of the same session).
DEFAULT_BASELINE = "ac643b6"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Portal:
    label: str
    base: str
    process: subprocess.Popen
    database_url: str
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)  # alg -> id, secret
    results: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)

    async def backends(self) -> list[int]:
        connection = await asyncpg.connect(self.database_url)
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")
        finally:
            await connection.close()
        return [row["pid"] for row in rows]


@contextmanager
def portal_server(label: str, database_url: str, source: Path):
    port = free_port()
    env = {**os.environ, "PORTAL_DATABASE_URL": database_url,
           "PORTAL_DATA_DIR": tempfile.mkdtemp(prefix="portal-bench-"),
           "PORTAL_SECRET_KEY": "bench-secret-key-not-for-production",
           "PORTAL_BASE_URL": f"http://127.0.0.1:{port}", "PYTHONPATH": f"{source}:{ROOT}"}
    log = tempfile.NamedTemporaryFile("w", prefix=f"portal-bench-{label}-", suffix=".log",
                                      delete=False)
    process = subprocess.Popen([sys.executable, "-m", "portal.cli", "serve", "--port",
                                str(port), "--workers", "1"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{label} server did not start; see {log.name}")
            time.sleep(0.3)
        yield Portal(label, base, process, database_url)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def export(revision: str) -> Path:
    """The src/ tree of ``revision`` in a temporary folder (git archive)."""
    target = Path(tempfile.mkdtemp(prefix="portal-baseline-"))
    archive = subprocess.run(["git", "archive", revision, "src"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


async def seed(url: str, algorithms: list[str]) -> dict[str, tuple[str, str]]:
    db.configure(url)
    await db.start_pool(max_size=2)
    identity_id = await factories.identity("bench@example.com", first_name="Anna",
                                           last_name="Nowak")
    await factories.account(identity_id)
    clients = {}
    for alg in algorithms:
        clients[alg] = await oidc_clients.register_client(
            name=f"Bench {alg}", redirect_uris=[REDIRECT], first_party=True,
            id_token_signed_response_alg=alg)
    await db.close_pool()
    return clients


async def browser_session(base: str) -> httpx.AsyncClient:
    browser = httpx.AsyncClient(base_url=base, timeout=30)
    page = await browser.get("/login")
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    await browser.post("/login", data={"email": "bench@example.com",
                                       "password": factories.PASSWORD, "_csrf_token": csrf})
    return browser


async def codes(browser: httpx.AsyncClient, client_id: str, count: int) -> list[tuple[str, str]]:
    got = []
    for _ in range(count):
        verifier = secrets.token_urlsafe(48)
        response = await browser.get("/oauth/authorize?" + urlencode({
            "client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code",
            "scope": SCOPE, "state": "s", "nonce": "n", "code_challenge": oidc.s256(verifier),
            "code_challenge_method": "S256"}))
        got.append((parse_qs(urlparse(response.headers["location"]).query)["code"][0],
                    verifier))
    return got


async def batch(portal: Portal, grant: str, alg: str, requests: int,
                browser: httpx.AsyncClient, chains: dict[str, str]) -> None:
    client_id, secret = portal.clients[alg]
    prepared = await codes(browser, client_id, requests) if grant == "code" else []
    async with httpx.AsyncClient(base_url=portal.base, timeout=30,
                                 auth=(client_id, secret)) as backend:
        await backend.get("/healthz")  # the connection is open before the window
        pids = await portal.backends()
        app_before = cpu_seconds(portal.process.pid)
        db_before = {pid: cpu_seconds(pid) for pid in pids}
        for index in range(requests):
            if grant == "refresh":
                response = await backend.post("/oauth/token", data={
                    "grant_type": "refresh_token", "refresh_token": chains[alg]})
                chains[alg] = response.json()["refresh_token"]
            else:
                code, verifier = prepared[index]
                response = await backend.post("/oauth/token", data={
                    "grant_type": "authorization_code", "code": code,
                    "redirect_uri": REDIRECT, "code_verifier": verifier})
            assert response.status_code == 200, response.text
        app_used = cpu_seconds(portal.process.pid) - app_before
        db_used = sum(cpu_seconds(pid) - db_before.get(pid, 0.0)
                      for pid in set(pids) | set(await portal.backends()))
    portal.results.setdefault((grant, alg), []).append(
        (app_used / requests * 1000, db_used / requests * 1000))


async def run(portals: list[Portal], rounds: int, requests: int) -> None:
    browsers = {p.label: await browser_session(p.base) for p in portals}
    chains: dict[str, dict[str, str]] = {}
    for portal in portals:  # one refresh chain per client, started outside the windows
        chains[portal.label] = {}
        for alg, (client_id, secret) in portal.clients.items():
            code, verifier = (await codes(browsers[portal.label], client_id, 1))[0]
            tokens = (await httpx.AsyncClient(base_url=portal.base).post(
                "/oauth/token", auth=(client_id, secret), data={
                    "grant_type": "authorization_code", "code": code,
                    "redirect_uri": REDIRECT, "code_verifier": verifier})).json()
            chains[portal.label][alg] = tokens["refresh_token"]
    for grant in ("refresh", "code"):  # a warm-up batch each, not counted
        for portal in portals:
            for alg in portal.clients:
                await batch(portal, grant, alg, 20, browsers[portal.label],
                            chains[portal.label])
                portal.results.clear()
    for number in range(rounds):
        for grant in ("refresh", "code"):
            for portal in (portals if number % 2 == 0 else portals[::-1]):
                for alg in portal.clients:
                    await batch(portal, grant, alg, requests, browsers[portal.label],
                                chains[portal.label])
        print(f"round {number + 1} of {rounds} done", flush=True)
    for browser in browsers.values():
        await browser.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    baseline_src = export(args.baseline)
    with ExitStack() as stack:
        before_url = stack.enter_context(test_database("portal_bench_before"))
        after_url = stack.enter_context(test_database("portal_bench_after"))
        before_clients = asyncio.run(seed(before_url, ["RS256"]))
        after_clients = asyncio.run(seed(after_url, ["RS256", "ES256"]))
        before = stack.enter_context(portal_server("before", before_url, baseline_src))
        after = stack.enter_context(portal_server("after", after_url, ROOT / "src"))
        before.clients, after.clients = before_clients, after_clients
        load_before = os.getloadavg()[0]
        asyncio.run(run([before, after], args.rounds, args.requests))
        load_after = os.getloadavg()[0]

    def cell(portal: Portal, grant: str, alg: str) -> tuple[str, float]:
        samples = portal.results[(grant, alg)]
        app = statistics.median(s[0] for s in samples)
        database = statistics.median(s[1] for s in samples)
        return (f"{app:.2f} + {database:.2f} = **{app + database:.2f} ms** "
                f"(app {min(s[0] for s in samples):.2f} to {max(s[0] for s in samples):.2f})",
                app + database)

    lines = []
    for grant, name in (("refresh", "refresh grant"), ("code", "code exchange")):
        text, reference = cell(before, grant, "RS256")
        lines.append(f"| {name} | before ({args.baseline}), RS256 | {text} | 1.00x |")
        for alg in ("RS256", "ES256"):
            text, total = cell(after, grant, alg)
            lines.append(f"| {name} | after, {alg} | {text} | **{total / reference:.2f}x** |")
    rows = "\n".join(lines)
    body = f"""
`python -m bench.token --baseline {args.baseline} --requests {args.requests} --rounds \
{args.rounds}` on {machine()}, {datetime.now(UTC):%Y-%m-%d}. Two servers side by side, one
process each, each on its own fresh database: the code before the token-endpoint work (git
{args.baseline}) and after it. In each of {args.rounds} rounds, in turn (the order flipped
every round), each server took {args.requests} sequential refresh grants and then as many
code exchanges (codes got beforehand, outside the measured window), per client. CPU from
/proc: the server process (every thread) and the PostgreSQL backends of its pool; the load
generator is not counted. Medians over the rounds, in ms of CPU per request, application +
PostgreSQL; the range is the application's over the rounds. Load average (1 min)
{load_before:.1f} before and {load_after:.1f} after (other work shares the machine).

| request | server, client's signing algorithm | CPU per request: app + database | total vs before |
|---|---|---|---|
{rows}
"""
    print(body)
    write_section("OIDC token endpoint (CPU per request)", body)


if __name__ == "__main__":
    main()
