"""The database: one Piccolo engine, the embedded PostgreSQL when no URL is given, the pool.

``ENGINE`` is created unconfigured at import time so the table modules can bind to it;
``configure()`` points it at a database before first use.
"""

from __future__ import annotations

import contextlib
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
    """asyncpg keyword arguments for a ``postgresql://`` URL (unix-socket hosts included)."""
    parsed = urlparse(url)
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    kwargs: dict[str, Any] = {
        "host": query.get("host") or parsed.hostname or "127.0.0.1",
        "port": parsed.port or int(query.get("port", 5432)),
        "user": unquote(parsed.username or "") or "postgres",
        "database": (parsed.path or "/").lstrip("/") or "postgres",
    }
    if parsed.password:
        kwargs["password"] = unquote(parsed.password)
    return kwargs


#: Session settings of every connection the engine opens (sent in the startup packet, so they
#: need no round trip and survive ``RESET ALL``). One account holds three companies and the
#: next 20,000: asyncpg keeps each statement prepared, and after five executions PostgreSQL
#: would switch it to a generic plan costed for "an account" (and unable to drop the
#: ``{} = '' OR ...`` branches of optional filters), which is 100 times slower for the big
#: one. A custom plan costs a fraction of a millisecond to make; the lists all need it.
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def configure(url: str) -> None:
    ENGINE.config.clear()
    ENGINE.config.update(connect_kwargs(url))
    ENGINE.config["server_settings"] = dict(SERVER_SETTINGS)


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


async def ping() -> bool:
    try:
        await ENGINE.run_ddl("SELECT 1")
    except Exception:  # any failure means "not ready"; /healthz reports it
        log.warning("database ping failed", exc_info=True)
        return False
    return True


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


def start_embedded(data_dir: Path):  # -> pgserver.PostgresServer
    import pgserver  # imported lazily: it starts nothing until asked

    pgdata = (data_dir / "pgdata").absolute()
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
        where = f"{kwargs['host']}:{kwargs['port']}/{kwargs['database']}"
        reason = (
            f"no answer within {CONNECT_TIMEOUT} s" if isinstance(error, TimeoutError) else error
        )
        raise DatabaseUnavailable(f"cannot connect to the database at {where}: {reason}") from error
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        # Piccolo prints a line per migration (and miscounts them on a fresh database): keep
        # it for the error, show people one line.
        with contextlib.redirect_stdout(io.StringIO()) as chatter:
            result = await run_forwards(app_name="portal")
        if not result.success:
            raise RuntimeError(f"migrations failed: {result.message}\n{chatter.getvalue()}")
        applied = chatter.getvalue().count("[forwards]")
        log.info("database ready%s", f" ({applied} migrations applied)" if applied else "")
    finally:
        await lock.close()  # closing the connection releases the lock
