"""The ``portal`` command: serve, migrate, demo, staff add."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import warnings
from dataclasses import replace

from portal import db
from portal.settings import Settings


async def _with_database(url: str, work) -> object:
    db.configure(url)
    await db.start_pool(max_size=4)
    try:
        return await work()
    finally:
        await db.close_pool()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _stop_like_sigterm(signum: int, frame: object) -> None:
    """A closed terminal (SIGHUP) stops the portal as SIGTERM does: uvicorn shuts down
    gracefully, then the embedded PostgreSQL is stopped (the default SIGHUP handler would
    kill the process and leave it running)."""
    os.kill(os.getpid(), signal.SIGTERM)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM, then restores this handler and raises the signal
    # again. With the default handler that kills the process before the embedded PostgreSQL is
    # stopped; exiting normally lets db.database() stop it.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.signal(signal.SIGINT, _exit_on_sigterm)  # Ctrl+C: the same way out
    signal.signal(signal.SIGHUP, _stop_like_sigterm)
    settings = Settings.from_env()
    if settings.base_url == Settings.base_url:
        settings = replace(settings, base_url=f"http://{args.host}:{args.port}")
    with db.database(settings) as url:
        where = ("the database at PORTAL_DATABASE_URL" if settings.database_url
                 else f"an embedded PostgreSQL in {db.embedded_pgdata(settings.data_dir)}")
        settings = replace(settings, database_url=url)
        asyncio.run(db.migrate(url))
        if args.demo:
            asyncio.run(_load_demo(url))
        settings.export_to_process()
        print(f"Data: {where}", flush=True)
        print(f"Portal is running at {settings.base_url}  (Ctrl+C to stop)", flush=True)
        uvicorn.run(
            "portal.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            **proxy_options(settings),
            server_header=False,
            log_level="info",
            timeout_graceful_shutdown=10,
        )
    return 0


def proxy_options(settings: Settings) -> dict[str, object]:
    """uvicorn's proxy settings: X-Forwarded-For and -Proto are believed only from the
    configured proxies (PORTAL_TRUSTED_PROXIES), and with none not at all. uvicorn's own default
    trusts 127.0.0.1, so a bare header from any local process (or a proxy that passes the
    client's header through) would forge the address in audit events and per-address limits."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


async def _load_demo(url: str) -> None:
    from portal.services import demo

    people = await _with_database(url, demo.load)
    print("Demo data loaded. Sign in as any of these (password for all):")
    for email in people:
        print(f"  {email}")
    print(f"  password: {demo.DEMO_PASSWORD}")


def migrate(_: argparse.Namespace) -> int:
    settings = Settings.from_env()
    with db.database(settings) as url:
        asyncio.run(db.migrate(url))
    return 0


def demo_command(_: argparse.Namespace) -> int:
    settings = Settings.from_env()
    with db.database(settings) as url:
        asyncio.run(db.migrate(url))
        asyncio.run(_load_demo(url))
    return 0


def staff(args: argparse.Namespace) -> int:
    from portal.services import staff as staff_service

    settings = Settings.from_env()
    with db.database(settings) as url:
        asyncio.run(db.migrate(url))
        created = asyncio.run(_with_database(url, lambda: staff_service.grant(args.email)))
    if created:
        print(
            f"{args.email} has no ID yet: register at {settings.base_url}/register with this "
            "email; the ID will be staff."
        )
    else:
        print(f"{args.email} is now staff.")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="portal", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="migrate, then serve the portal")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--workers", type=int, default=1, help="processes sharing one database")
    run.add_argument("--demo", action="store_true", help="load demo data first")
    run.set_defaults(func=serve)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=migrate)
    commands.add_parser("demo", help="load demo data").set_defaults(func=demo_command)
    staff_cmd = commands.add_parser("staff", help="back-office staff")
    staff_sub = staff_cmd.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="make an ID support staff")
    add.add_argument("email")
    add.set_defaults(func=staff)
    return top


def main(argv: list[str] | None = None) -> int:
    # A short, clear start: the portal's own progress lines, not its libraries' (pgserver logs
    # initdb's whole output at INFO); warnings and errors from everyone.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("portal").setLevel(logging.INFO)
    # platformdirs (under pgserver) warns on every start when XDG_RUNTIME_DIR is unset.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except db.DatabaseUnavailable as error:
        print(f"portal: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
