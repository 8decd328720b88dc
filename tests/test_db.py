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
