"""CPU per token request, measured side by side with panva's ``oidc-provider`` (issue 20): a
refresh grant and a code exchange, application + store, from /proc, interleaved in one run.

    PORTAL_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.token [--requests 100] [--rounds 5] [--baseline REV]

Servers, one process each, side by side:

- the portal of this tree (``portal serve --workers 1``) on its own fresh database; its cost is
  the server process plus the PostgreSQL backends serving its pool;
- the peer: ``oidc-provider`` (OpenID-certified, Node) with its grants, codes and tokens in
  Redis, bench/peer/oidc-provider/server.js, installed by ``npm ci`` from the lock file when
  node_modules is missing; its cost is the node process plus ``redis-server`` (one started for
  the run on a free port, without persistence, so nothing else shares its CPU);
- with ``--baseline REV``, also the portal at git revision REV, for a before/after.

Both do the same work per request: a confidential client authenticated with
client_secret_basic, PKCE (S256) on the exchange, the refresh token rotated on every use (the
spent one remembered for reuse detection), a JWT access token and an ID token with the person's
claims, signed RS256 or ES256 as the client registered (one client of each per server). In
every round each server in turn (the order flipped every round) takes ``--requests``
sequential refresh grants per client, then as many code exchanges (the codes got beforehand,
outside the measured window), from the same load generator (this process, httpx, one kept-open
connection). For each batch the CPU of the server and of its store (every thread's time on
the CPU, /proc/PID/task/*/schedstat) is divided by the number of requests. The load
generator's own CPU is not counted; neither are PostgreSQL's shared background processes
(WAL writer, checkpointer), which serve every database of the cluster. Writes the "OIDC token
endpoint (CPU per request)" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
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

from bench.common import ROOT, database_backends, free_port, machine, write_section
from portal import db
from portal.services import oidc, oidc_clients
from portal.testing import factories
from portal.testing.database import test_database

REDIRECT = "https://bench.example.com/cb"
SCOPE = "openid email profile accounts offline_access"
TICK = os.sysconf("SC_CLK_TCK")
PEER = ROOT / "bench" / "peer" / "oidc-provider"
PEER_SECRET = "bench-peer-client-secret"  # a benchmark's throwaway client
ALGORITHMS = ("RS256", "ES256")
PORTAL, NODE = "portal", "oidc-provider"


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, every thread, in seconds; 0 if it is gone.

    From each thread's /proc/PID/task/TID/schedstat (time on the CPU, in nanoseconds): the
    utime + stime of /proc/PID/stat count in clock ticks (10 ms), which over a batch of 100
    requests and a few processes is an error of ±0.1 ms per request each. Falls back to
    /proc/PID/stat where schedstat is missing."""
    try:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Server:
    """One server under test: its process, the processes of its store, its clients."""

    label: str
    kind: str  # PORTAL or NODE
    base: str
    pid: int
    token_path: str
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)  # alg -> id, secret
    database_url: str = ""
    store_pid: int = 0
    browser: httpx.AsyncClient | None = None
    results: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)

    async def store_pids(self) -> list[int]:
        if self.kind == NODE:
            return [self.store_pid]
        return await database_backends(self.database_url)

    async def codes(self, alg: str, count: int) -> list[tuple[str, str]]:
        """``count`` fresh authorization codes with their PKCE verifiers (never timed)."""
        client_id = self.clients[alg][0]
        got = []
        for _ in range(count):
            verifier = secrets.token_urlsafe(48)
            if self.kind == NODE:
                response = await self.browser.post("/bench/code", params={
                    "client_id": client_id, "code_challenge": oidc.s256(verifier)})
                got.append((response.json()["code"], verifier))
                continue
            response = await self.browser.get("/oauth/authorize?" + urlencode({
                "client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code",
                "scope": SCOPE, "state": "s", "nonce": "n",
                "code_challenge": oidc.s256(verifier), "code_challenge_method": "S256"}))
            got.append((parse_qs(urlparse(response.headers["location"]).query)["code"][0],
                        verifier))
        return got


def wait_until_up(url: str, label: str, process: subprocess.Popen, log: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{label} did not start; see {log}")
        time.sleep(0.3)


@contextmanager
def running(label: str, command: list[str], *, env: dict | None = None, cwd: Path = ROOT,
            ready: str | None = None):
    """A subprocess with its output in a log file, stopped by SIGTERM afterwards."""
    log = tempfile.NamedTemporaryFile("w", prefix=f"bench-token-{label}-", suffix=".log",
                                      delete=False)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                               cwd=cwd)
    try:
        if ready is not None:
            wait_until_up(ready, label, process, log.name)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def portal_server(label: str, database_url: str, source: Path):
    port = free_port()
    env = {**os.environ, "PORTAL_DATABASE_URL": database_url,
           "PORTAL_DATA_DIR": tempfile.mkdtemp(prefix="portal-bench-"),
           "PORTAL_SECRET_KEY": "bench-secret-key-not-for-production",
           "PORTAL_BASE_URL": f"http://127.0.0.1:{port}", "PYTHONPATH": f"{source}:{ROOT}"}
    base = f"http://127.0.0.1:{port}"
    with running(label, [sys.executable, "-m", "portal.cli", "serve", "--port", str(port),
                         "--workers", "1"], env=env, ready=base + "/healthz") as process:
        yield Server(label, PORTAL, base, process.pid, "/oauth/token",
                     database_url=database_url)


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("redis-server did not start")


def redis_pid(url: str) -> int:
    """The process id of the Redis at ``url`` (INFO server), to read its CPU."""
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=5) as sock:
        sock.sendall(b"INFO server\r\n")
        data = b""
        while b"process_id:" not in data or not data.endswith(b"\r\n"):
            data += sock.recv(65536)
    return int(re.search(rb"process_id:(\d+)", data).group(1))


@contextmanager
def peer_server(redis_url: str | None):
    """oidc-provider on a free port, with Redis (its own redis-server unless one is given)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SystemExit("the peer needs Node.js (node and npm)")
    if not (PEER / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER,
                       check=True)
    with ExitStack() as stack:
        if redis_url is None:
            server = shutil.which("redis-server")
            if server is None:
                raise SystemExit("no redis-server: install Redis or pass --redis URL")
            redis_port = free_port()
            redis = stack.enter_context(running("redis", [
                server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", tempfile.mkdtemp(prefix="bench-redis-")]))
            wait_for_port(redis_port, redis)
            redis_url, pid = f"redis://127.0.0.1:{redis_port}/0", redis.pid
        else:
            pid = redis_pid(redis_url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = stack.enter_context(running(NODE, [
            node, "server.js", "--port", str(port), "--redis", redis_url,
            "--secret", PEER_SECRET, "--prefix", f"bench-{secrets.token_hex(4)}"], cwd=PEER,
            ready=base + "/.well-known/openid-configuration"))
        yield Server(NODE, NODE, base, process.pid, "/token", store_pid=pid, clients={
            alg: (f"bench-{alg.lower()}", PEER_SECRET) for alg in ALGORITHMS})


def export(revision: str) -> Path:
    """The src/ tree of ``revision`` in a temporary folder (git archive)."""
    target = Path(tempfile.mkdtemp(prefix="portal-baseline-"))
    archive = subprocess.run(["git", "archive", revision, "src"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


async def seed(url: str, algorithms: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    db.configure(url)
    await db.start_pool(max_size=2)
    identity_id = await factories.identity("bench@example.com", first_name="Anna",
                                           last_name="Nowak")
    await factories.account(identity_id)
    clients = {}
    for alg in algorithms:
        options = {"id_token_signed_response_alg": alg} if alg != "RS256" else {}
        clients[alg] = await oidc_clients.register_client(
            name=f"Bench {alg}", redirect_uris=[REDIRECT], first_party=True, **options)
    await db.close_pool()
    return clients


async def cluster_settings(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        names = ("server_version", "autovacuum", "synchronous_commit", "fsync")
        values = [await connection.fetchval(f"SHOW {name}") for name in names]
    finally:
        await connection.close()
    return ", ".join(f"{name} {value}" for name, value in zip(names, values, strict=True))


async def open_browser(server: Server) -> None:
    """The signed-in browser that gets the portal's codes (the peer's come from /bench/code)."""
    server.browser = httpx.AsyncClient(base_url=server.base, timeout=30)
    if server.kind == PORTAL:
        page = await server.browser.get("/login")
        csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
        await server.browser.post("/login", data={
            "email": "bench@example.com", "password": factories.PASSWORD,
            "_csrf_token": csrf})


async def batch(server: Server, grant: str, alg: str, requests: int,
                chains: dict[str, str]) -> None:
    """``requests`` sequential token requests of one kind, their CPU per request recorded."""
    client_id, secret = server.clients[alg]
    prepared = await server.codes(alg, requests) if grant == "code" else []
    async with httpx.AsyncClient(base_url=server.base, timeout=30,
                                 auth=(client_id, secret)) as backend:
        await backend.get("/healthz" if server.kind == PORTAL else "/jwks")  # connection open
        pids = await server.store_pids()
        app_before = cpu_seconds(server.pid)
        store_before = {pid: cpu_seconds(pid) for pid in pids}
        for index in range(requests):
            if grant == "refresh":
                response = await backend.post(server.token_path, data={
                    "grant_type": "refresh_token", "refresh_token": chains[alg]})
            else:
                code, verifier = prepared[index]
                response = await backend.post(server.token_path, data={
                    "grant_type": "authorization_code", "code": code,
                    "redirect_uri": REDIRECT, "code_verifier": verifier})
            assert response.status_code == 200, response.text
            chains[alg] = response.json()["refresh_token"] if grant == "refresh" else (
                chains[alg])
        app_used = cpu_seconds(server.pid) - app_before
        after = set(await server.store_pids())
        # A backend gone meanwhile is left out; one that came is counted whole.
        store_used = sum(cpu_seconds(pid) - store_before.get(pid, 0.0) for pid in after)
    server.results.setdefault((grant, alg), []).append(
        (app_used / requests * 1000, store_used / requests * 1000))


async def first_refresh_token(server: Server, alg: str) -> str:
    code, verifier = (await server.codes(alg, 1))[0]
    client_id, secret = server.clients[alg]
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        response = await http.post(server.token_path, auth=(client_id, secret), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier})
    return response.json()["refresh_token"]


async def run(servers: list[Server], rounds: int, requests: int) -> list[float]:
    loads = []
    chains: dict[str, dict[str, str]] = {}
    for server in servers:
        await open_browser(server)
        chains[server.label] = {alg: await first_refresh_token(server, alg)
                                for alg in server.clients}
    for grant in ("refresh", "code"):  # a warm-up batch each, not counted
        for server in servers:
            for alg in server.clients:
                await batch(server, grant, alg, 20, chains[server.label])
            server.results.clear()
    for number in range(rounds):
        loads.append(os.getloadavg()[0])
        for grant in ("refresh", "code"):
            for server in (servers if number % 2 == 0 else servers[::-1]):
                for alg in server.clients:
                    await batch(server, grant, alg, requests, chains[server.label])
        print(f"round {number + 1} of {rounds} done, load {os.getloadavg()[0]:.1f}",
              flush=True)
    loads.append(os.getloadavg()[0])
    for server in servers:
        await server.browser.aclose()
    return loads


def peer_versions() -> str:
    lock = json.loads((PEER / "package-lock.json").read_text())["packages"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    redis = subprocess.run([shutil.which("redis-server") or "redis-server", "--version"],
                           capture_output=True, text=True).stdout.split()
    redis_version = next((part.split("=", 1)[1] for part in redis if part.startswith("v=")),
                         "?")
    return (f"oidc-provider {lock['node_modules/oidc-provider']['version']} on Node {node}, "
            f"ioredis {lock['node_modules/ioredis']['version']}, Redis {redis_version}")


def median_pair(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Medians over the rounds of the server's, the store's and the total CPU per request."""
    return (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples),
            statistics.median(s[0] + s[1] for s in samples))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", help="also run the portal at this git revision")
    parser.add_argument("--redis", help="use this Redis (redis://host:port/db) instead of "
                                        "starting one")
    parser.add_argument("--no-write", action="store_true", help="print, leave BENCHMARKS.md")
    args = parser.parse_args()
    started = time.monotonic()
    with ExitStack() as stack:
        url = stack.enter_context(test_database("portal_bench_token"))
        portal_clients = asyncio.run(seed(url, ALGORITHMS))
        settings = asyncio.run(cluster_settings(url))
        portal = stack.enter_context(portal_server(PORTAL, url, ROOT / "src"))
        portal.clients = portal_clients
        servers = [portal, stack.enter_context(peer_server(args.redis))]
        if args.baseline:
            baseline_url = stack.enter_context(test_database("portal_bench_token_base"))
            baseline_clients = asyncio.run(seed(baseline_url, ALGORITHMS))
            baseline = stack.enter_context(portal_server(
                f"portal {args.baseline}", baseline_url, export(args.baseline)))
            baseline.clients = baseline_clients
            servers.append(baseline)
        loads = asyncio.run(run(servers, args.rounds, args.requests))
    minutes = (time.monotonic() - started) / 60

    lines = []
    peer = servers[1]
    for grant, name in (("refresh", "refresh grant"), ("code", "code exchange")):
        for alg in ALGORITHMS:
            _, _, reference = median_pair(peer.results[(grant, alg)])
            for server in servers:
                app, store, total = median_pair(server.results[(grant, alg)])
                totals = [s[0] + s[1] for s in server.results[(grant, alg)]]
                store_name = "Redis" if server.kind == NODE else "PostgreSQL"
                lines.append(
                    f"| {name} | {alg} | {server.label} | {app:.2f} + {store:.2f} "
                    f"({store_name}) = **{total:.2f} ms** | {min(totals):.2f} to "
                    f"{max(totals):.2f} | **{total / reference:.2f}x** |")
    rows = "\n".join(lines)
    _, _, portal_refresh = median_pair(portal.results[("refresh", "RS256")])
    per_cpu = 1000 / portal_refresh
    verdicts = []
    for grant, name in (("refresh", "refresh grant"), ("code", "code exchange")):
        for alg in ALGORITHMS:
            ratio = (median_pair(portal.results[(grant, alg)])[2]
                     / median_pair(peer.results[(grant, alg)])[2])
            verdicts.append(f"{name} {alg} {ratio:.2f}x")
    command = ("PORTAL_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres "
               f"python -m bench.token --requests {args.requests} --rounds {args.rounds}"
               + (f" --baseline {args.baseline}" if args.baseline else ""))
    body = f"""
`{command}` on {machine()}, {datetime.now(UTC):%Y-%m-%d}, {minutes:.1f} min (the defaults:
`python -m bench.token` alone; `--baseline REV` adds the portal at REV, `--redis URL` uses a
running Redis). The peer: {peer_versions()}, bench/peer/oidc-provider/server.js (installed by
the bench with `npm ci` from its lock file when node_modules is missing). One process each,
side by side, from the same load generator; in each of {args.rounds} rounds, in turn (the
order flipped every round), each server took {args.requests} sequential refresh grants and
then as many code exchanges per client (codes got beforehand, outside the measured window).
Same work per request on both: client_secret_basic, PKCE S256, refresh token rotated on every
use (the spent one kept for reuse detection), a JWT access token and an ID token with the
person's claims (the portal's also carry the `accounts` claim), signed with the client's
algorithm. CPU from /proc (each thread's time on the CPU, schedstat): the portal's server
process + the PostgreSQL backends of its database; oidc-provider's node process + its
redis-server (started for the run, no persistence). Medians over the rounds, in ms of CPU
per request; the range is the total's over the rounds; the ratio is the median total against
the peer's for the same request and algorithm. Load average (1 min) at the start of each
round and at the end: {", ".join(f"{load:.1f}" for load in loads)}.

| request | alg | server | CPU per request: server + store | total, range | vs peer |
|---|---|---|---|---|---|
{rows}

Portal against oidc-provider (target: at most 1.00x): {"; ".join(verdicts)}. An RS256 refresh
grant at {portal_refresh:.2f} ms of CPU, application and database together, is
{per_cpu:.0f} refresh grants per CPU-second, {per_cpu / 120:.1f}x Keycloak's published sizing
figure of 120 per vCPU.

Where PostgreSQL's CPU went (issue 20), measured on the statements alone (backend CPU per
call, one connection): every connection runs with `plan_cache_mode = force_custom_plan` (the
lists' plans depend on the tenant's size), so every statement was planned again at every
execution, and the token statements, with the `accounts` claim's two levels of subqueries,
cost more to plan than to run (a refresh about 2.1 ms, 0.5 ms with a kept plan). The claim
(`oauth_accounts_claim`) and the two hot statements (`oauth_refresh_for_secret`,
`oauth_exchange_for_secret`) are PL/pgSQL functions whose plans are made once per connection;
the code exchange's audit event is written by the same statement (one round trip and one
commit, not two); the claim orders accounts by a stored `account.sort_name` instead of
computing `portal_sort_key` for each (0.23 → 0.10 ms); and the two statements commit without
waiting for the WAL flush (`synchronous_commit = off` for their own transaction only: 0.17 ms
less, the WAL writer flushes many at once; migration 2026-12-04T12:20 says what a database
crash can then lose: the last fraction of a second of rotations and exchanges, consistently,
so those clients sign in again). A refresh is 0.32 ms of backend CPU on its own; the table's
figure also holds the portal's background polls on its database (back-channel logout,
cleanup) and grows with the machine's load. The peer's Redis,
without persistence here, does not make its writes durable at all. This cluster: {settings}; an
autovacuum worker on the portal's database is counted while connected to it, the shared WAL
writer and checkpointer are not counted for either side.
"""
    print(body)
    if not args.no_write:
        write_section("OIDC token endpoint (CPU per request)", body)


if __name__ == "__main__":
    main()
