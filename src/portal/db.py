"""The database: one Piccolo engine, the embedded PostgreSQL when no URL is given, the pool.

``ENGINE`` is created unconfigured at import time so the table modules can bind to it;
``configure()`` points it at a database before first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlparse

from piccolo.engine.postgres import PostgresEngine

import portal.settings  # noqa: F401  (sets PICCOLO_CONF before Piccolo looks for it)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from portal.settings import Settings

log = logging.getLogger(__name__)

ENGINE = PostgresEngine(config={}, extensions=())


def connect_kwargs(url: str) -> dict[str, Any]:
    """asyncpg keyword arguments for a ``postgresql://`` URL: unix-socket hosts, and libpq's
    multi-host form (``postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write``),
    for which asyncpg tries each host in turn and keeps the first that matches the attribute
    (``read-write``: the primary of a replicated cluster)."""
    # The authority is cut out by hand: urllib refuses "h1,[::1]:5434" as an invalid IPv6 URL
    # in some Python builds (Debian's 3.11.2), and a list of hosts is no single netloc anyway.
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:cut]
    parsed = urlparse(f"{scheme}://authority{rest[cut:]}")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    userinfo, _, hostlist = authority.rpartition("@")
    user, _, password = userinfo.partition(":")
    hosts, ports = [], []
    for entry in filter(None, hostlist.split(",")):
        host, port = _host_port(entry)
        hosts.append(host)
        ports.append(port)
    if not hosts and query.get("host"):  # ?host=/run/postgresql (a socket directory)
        hosts = query["host"].split(",")
    hosts = hosts or ["127.0.0.1"]
    default_port = int(query.get("port", 5432))
    ports = [port or default_port for port in ports] or [default_port] * len(hosts)
    kwargs: dict[str, Any] = {
        "host": hosts[0] if len(hosts) == 1 else hosts,
        "port": ports[0] if len(hosts) == 1 else ports,
        "user": unquote(user) or "postgres",
        "database": unquote((parsed.path or "/").lstrip("/")) or "postgres",
    }
    if password:
        kwargs["password"] = unquote(password)
    if query.get("target_session_attrs"):
        kwargs["target_session_attrs"] = query["target_session_attrs"]
    if query.get("statement_cache_size"):  # 0 behind PgBouncer in transaction mode
        kwargs["statement_cache_size"] = int(query["statement_cache_size"])
    return kwargs


def _host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [::1]:5432
        host, _, rest = entry[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = entry.partition(":")
    return unquote(host), int(port) if port else None


def describe(url: str) -> str:
    """host:port/database of a URL, for messages (never the password)."""
    kwargs = connect_kwargs(url)
    hosts = kwargs["host"] if isinstance(kwargs["host"], list) else [kwargs["host"]]
    ports = kwargs["port"] if isinstance(kwargs["port"], list) else [kwargs["port"]]
    where = ",".join(f"{host}:{port}" for host, port in zip(hosts, ports, strict=True))
    return f"{where}/{kwargs['database']}"


#: Session settings of every connection the engine opens (sent in the startup packet, so they
#: need no round trip and survive ``RESET ALL``). One account holds three companies and the
#: next 20,000: asyncpg keeps each statement prepared, and after five executions PostgreSQL
#: would switch it to a generic plan costed for "an account" (and unable to drop the
#: ``{} = '' OR ...`` branches of optional filters), which is 100 times slower for the big
#: one. A custom plan costs a fraction of a millisecond to make; the lists all need it.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


#: Seconds a pooled connection may take to open. A primary that died mid-failover refuses at
#: once, but one behind a dead network would hold a request for asyncpg's default minute.
POOL_CONNECT_TIMEOUT = 5


def configure(url: str) -> None:
    ENGINE.config.clear()
    ENGINE.config.update(connect_kwargs(url))
    if ENGINE.config.get("statement_cache_size") != 0:
        ENGINE.config["server_settings"] = dict(SERVER_SETTINGS)
    # else: behind a transaction-mode pooler (docs/SCALING.md) no statement is kept prepared
    # (each is planned for its values anyway), and PgBouncer refuses unknown startup settings.
    ENGINE.config["timeout"] = POOL_CONNECT_TIMEOUT


_pool_users = 0


async def start_pool(max_size: int = 10) -> None:
    """Start the pool, or join the one already running (tests share it with the app)."""
    global _pool_users
    _pool_users += 1
    if _pool_users == 1:
        await ENGINE.start_connection_pool(min_size=1, max_size=max_size, reset=_keep_session)


async def _keep_session(connection) -> None:
    """asyncpg's pool resets each connection it takes back with ``pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL``: a round trip after every query. The portal keeps no
    session state on pooled connections (advisory locks are ``pg_advisory_xact_lock``,
    settings ``SET LOCAL``, no cursors outside transactions, no LISTEN), so there is nothing
    to reset; an open transaction is still rolled back by asyncpg before this is called."""


async def close_pool() -> None:
    global _pool_users
    _pool_users = max(0, _pool_users - 1)
    if _pool_users == 0:
        await ENGINE.close_connection_pool()


#: Seconds /healthz waits for the database before calling it down.
PING_TIMEOUT = 3


async def ping() -> bool:
    """Whether the database answers and takes writes. A server in recovery (a standby, or the
    old primary coming back as one) does not: the load balancer should send nobody here.
    A pooled connection that finds its server gone gets one more try on a new connection,
    so a stale pool after a failover does not take a healthy instance out."""
    for last in (False, True):
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                rows = await ENGINE.run_ddl("SELECT pg_is_in_recovery() AS standby")
        except Exception as error:  # any failure means "not ready"; /healthz reports it
            forget_connections()
            if last or not unavailable(error):
                log.warning("database ping failed: %s", _reason(error))
                return False
            await asyncio.sleep(0)  # let the expiry run before the second try
            continue
        if rows and rows[0]["standby"]:
            log.warning("database ping: the server is a standby (read-only)")
            forget_connections()
            return False
        return True
    return False


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached or cannot take writes right now
    (a failover: the primary died, a standby is being promoted, the pool's connections point
    at a server that is gone): the request gets a 503 with Retry-After, not a 500."""
    import asyncpg
    from asyncpg import exceptions as pg

    transient = (
        OSError,  # refused, reset, unreachable
        TimeoutError,  # no answer within POOL_CONNECT_TIMEOUT
        pg.PostgresConnectionError,  # class 08: the connection broke or does not exist
        pg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
        pg.AdminShutdownError,  # 57P01: the server is stopping
        pg.CrashShutdownError,  # 57P02: another backend crashed
        pg.ReadOnlySQLTransactionError,  # 25006: this server was demoted to a standby
        pg.TargetServerAttributeNotMatched,  # no host of the list is the primary (yet)
    )
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, transient):
            return True
        if isinstance(error, asyncpg.InterfaceError) and (
                "connection is closed" in str(error) or "pool is closing" in str(error)):
            return True
        # A connection whose server end vanished while a query was being set up is left
        # mid-operation; asyncpg then refuses every use of it with this.
        if isinstance(error, pg.InternalClientError) and "cannot switch to state" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


_expiring: set[asyncio.Task] = set()


def forget_connections() -> None:
    """Replace every pooled connection on its next use: after one of them found the server
    gone, the others point at it too (asyncpg drops a broken connection by itself only when
    it is used, one failed request each). Callable from synchronous code (Litestar's
    exception handlers): asyncpg's expiry is a coroutine that only bumps a generation."""
    pool = ENGINE.pool
    if pool is not None:
        task = asyncio.get_running_loop().create_task(pool.expire_connections())
        _expiring.add(task)
        task.add_done_callback(_expiring.discard)


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Yield the database URL: the configured one, or an embedded PostgreSQL kept running
    for the duration of the block and stopped cleanly afterwards (its data stays)."""
    if settings.database_url:
        yield settings.database_url
        return
    server = start_embedded(settings.data_dir)
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()


#: Where the embedded clusters of root's data dirs live (see ``embedded_pgdata``).
ROOT_CLUSTERS = Path("/var/lib/portal/embedded")


def embedded_pgdata(data_dir: Path) -> Path:
    """The embedded cluster's directory for a data dir: ``DATA_DIR/pgdata``.

    As root, pgserver runs PostgreSQL as the unprivileged user ``pgserver``, which must be able
    to reach the cluster by its full path (PostgreSQL opens ``global/pg_control`` that way).
    A root-owned data dir usually sits under a 0700 directory (pytest's /tmp/pytest-of-root,
    /root), and pgserver's chmod of each parent lasts only until something resets it (every
    pytest session resets /tmp/pytest-of-root to 0700). So for root a new cluster is made under
    ROOT_CLUSTERS, which only root and ``pgserver`` use, one per data dir, and
    ``DATA_DIR/pgdata`` is a symlink to it; the server is given the resolved path and never
    passes through the data dir. A cluster already inside a data dir stays where it is."""
    import os

    link = (data_dir / "pgdata").absolute()
    if os.geteuid() != 0 or (link.is_dir() and not link.is_symlink()):
        return link
    if link.is_symlink():
        target = link.resolve()
    else:
        key = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
        target = ROOT_CLUSTERS / key / "pgdata"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=True)
    target.mkdir(parents=True, exist_ok=True)
    return target


def start_embedded(data_dir: Path):  # -> pgserver.PostgresServer
    import pgserver  # imported lazily: it starts nothing until asked

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = embedded_pgdata(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_holders(pgdata)
    log.info("starting embedded PostgreSQL in %s", pgdata)
    return pgserver.get_server(pgdata, cleanup_mode="stop")


def _forget_dead_holders(pgdata: Path) -> None:
    """pgserver stops the server when the last process using it exits, counting users in a pid
    list in pgdata. A process killed before its cleanup stays listed for ever, and the server
    would then never be stopped again; drop such pids before joining."""
    import psutil
    from pgserver import PostgresServer
    from pgserver.utils import DiskList

    holders = DiskList(pgdata / ".handle_pids.json")
    with PostgresServer._lock:
        pids = holders.get()
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            holders.put(alive)


class DatabaseUnavailable(RuntimeError):
    """The database server did not accept a connection."""


#: Seconds to wait for the server to answer before giving up (asyncpg's default is 60).
CONNECT_TIMEOUT = 10


#: Any constant: serialises concurrent ``migrate`` calls (several servers starting at once).
_MIGRATION_LOCK = 7_274_013_001


async def migrate(url: str) -> None:
    """Apply every pending migration, holding an advisory lock so only one process does."""
    import asyncpg
    from piccolo.apps.migrations.commands.forwards import run_forwards

    configure(url)
    kwargs = connect_kwargs(url)
    try:
        lock = await asyncpg.connect(**kwargs, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        where = describe(url)
        reason = (
            f"no answer within {CONNECT_TIMEOUT} s" if isinstance(error, TimeoutError) else error
        )
        raise DatabaseUnavailable(f"cannot connect to the database at {where}: {reason}") from error
    try:
        # A transaction-scoped lock in a transaction kept open for the whole run: behind a
        # transaction-mode pooler the transaction pins one server connection, and the lock
        # ends with it (a session lock would stay on a pooled server connection).
        await lock.execute("BEGIN")
        await lock.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        # Piccolo prints a line per migration (and miscounts them on a fresh database): keep
        # it for the error, show people one line.
        with contextlib.redirect_stdout(io.StringIO()) as chatter:
            result = await run_forwards(app_name="portal")
        if not result.success:
            raise RuntimeError(f"migrations failed: {result.message}\n{chatter.getvalue()}")
        applied = chatter.getvalue().count("[forwards]")
        log.info("database ready%s", f" ({applied} migrations applied)" if applied else "")
    finally:
        await lock.close()  # closing the connection ends the transaction and the lock
