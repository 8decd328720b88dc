"""The pool's connections (issue 20): every statement planned for its values, no reset query
after each one."""

from __future__ import annotations

from portal import db
from portal.tables import Account


async def test_pooled_connections_plan_for_the_values_and_keep_no_reset_round_trip():
    rows = await Account.raw("SHOW plan_cache_mode")
    assert rows == [{"plan_cache_mode": "force_custom_plan"}]
    assert db.ENGINE.pool is not None and db.ENGINE.pool._reset is db._keep_session
    # What the skipped reset would undo never outlives a transaction here: SET LOCAL ends
    # with it, and so does a transaction-scoped advisory lock.
    async with db.ENGINE.transaction():
        await Account.raw("SET LOCAL plan_cache_mode = auto")
        await Account.raw("SELECT pg_advisory_xact_lock(42)")
    assert (await Account.raw("SHOW plan_cache_mode"))[0]["plan_cache_mode"] == (
        "force_custom_plan")
    held = await Account.raw("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' "
                             "AND pid = pg_backend_pid()")
    assert held == [{"n": 0}]


def test_the_embedded_postgres_works_under_a_0700_directory_even_for_root(tmp_path):
    """As root, pgserver runs PostgreSQL as the user ``pgserver``; a data dir under a 0700
    directory (pytest's /tmp/pytest-of-root, which every pytest session resets to 0700) must
    still work after the reset (issue 17). For other users it is the same user anyway."""
    import asyncio
    import os
    import shutil

    import asyncpg

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    data_dir = locked / "data"
    server = db.start_embedded(data_dir)
    try:
        locked.chmod(0o700)  # what the next pytest session does to /tmp/pytest-of-root
        (tmp_path).chmod(0o700)

        async def control_file_and_a_write() -> None:
            connection = await asyncpg.connect(server.get_uri("postgres"))
            try:
                await connection.fetchval("SELECT system_identifier FROM pg_control_system()")
                await connection.execute("CREATE TABLE IF NOT EXISTS probe (n int)")
                await connection.execute("CHECKPOINT")
            finally:
                await connection.close()

        asyncio.run(control_file_and_a_write())
        if os.geteuid() == 0:
            assert (data_dir / "pgdata").is_symlink()
            assert not (data_dir / "pgdata").resolve().is_relative_to(tmp_path)
    finally:
        server.cleanup()
        pgdata = data_dir / "pgdata"
        if pgdata.is_symlink():
            shutil.rmtree(pgdata.resolve().parent, ignore_errors=True)


def test_the_tests_embedded_cluster_is_one_per_user(monkeypatch, tmp_path):
    """The temp dir is shared: a cluster one user made there cannot be opened by another (as root,
    pgserver hands it to its own user), so each user gets a directory of their own."""
    from portal.testing import database

    monkeypatch.delenv("PORTAL_TEST_DATA_DIR", raising=False)
    mine = database.embedded_data_dir()
    monkeypatch.setattr(database.os, "geteuid", lambda: 4242)
    assert database.embedded_data_dir() != mine
    assert database.embedded_data_dir().name.endswith("4242")
    monkeypatch.setenv("PORTAL_TEST_DATA_DIR", str(tmp_path))
    assert database.embedded_data_dir() == tmp_path
