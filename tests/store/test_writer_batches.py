"""The writer's batches: runs of plain-SQL jobs go to the connection's thread in one trip,
other jobs a statement at a time, all in one transaction, each failure undone alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite
import pytest

from hub.errors import StoreError
from hub.store import Conflict
from hub.store.sqlite import SqliteStore
from tests.store.test_sqlite import T0, new_alert


async def _count(s: SqliteStore) -> int:
    return int((await s._read("SELECT COUNT(*) FROM audit"))[0][0])


async def test_mixed_batch_commits_together_and_fails_alone(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path, linger=0.02)  # all of them in one batch
    await s.open()
    try:
        async def awaits_between(conn: aiosqlite.Connection) -> str:  # not plain SQL
            await conn.execute("INSERT INTO audit (at, actor, action, target, outcome, detail) "
                               "VALUES ('2026-01-01T00:00:00.000000', 'a', 'b', 'c', 'ok', '{}')")
            await asyncio.sleep(0)
            return "slow"

        async def uses_a_thread(conn: aiosqlite.Connection) -> int:  # plain SQL, plus work elsewhere
            n = await asyncio.to_thread(lambda: 21 * 2)
            await conn.execute("INSERT INTO audit (at, actor, action, target, outcome, detail) "
                               "VALUES ('2026-01-01T00:00:00.000000', 'x', 'y', 'z', 'ok', '{}')")
            return n

        async def fails_after_a_statement(conn: aiosqlite.Connection) -> None:
            await conn.execute("INSERT INTO audit (at, actor, action, target, outcome, detail) "
                               "VALUES ('2026-01-01T00:00:00.000000', 'gone', 'y', 'z', 'ok', '{}')")
            raise StoreError("refused on purpose")

        first = await s.insert_alert(new_alert(0))
        results = await asyncio.gather(
            s.insert_alert(new_alert(1)),
            s.audit("admin", "x", "y", "ok", at=T0),
            s._write(awaits_between),
            s.insert_alert(new_alert(0)),  # the key exists
            s._write(uses_a_thread, sql_only=True),
            s._write(fails_after_a_statement, sql_only=True),
            s.insert_alert(new_alert(2), references=[first.id]),
            return_exceptions=True,
        )
        assert results[2] == "slow" and results[4] == 42
        assert isinstance(results[3], Conflict)
        assert isinstance(results[5], StoreError) and "on purpose" in str(results[5])
        assert len(await s.list_alerts()) == 3
        assert await _count(s) == 3  # the failed job's row was undone with it
        actors = {e.actor for e in await s.audit_entries()}
        assert actors == {"admin", "a", "x"}
    finally:
        await s.close()


async def test_a_plain_job_that_waits_on_the_event_loop_does_not_hang(tmp_path: Path) -> None:
    """A job marked plain SQL that awaits something of the caller's loop is a bug in the job:
    it fails alone (its own loop cannot run it) instead of stalling the writer."""
    s = SqliteStore.in_data_dir(tmp_path)
    await s.open()
    try:
        caller_loop_future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def wrong(conn: aiosqlite.Connection) -> None:
            await caller_loop_future

        with pytest.raises(Exception):  # noqa: B017 - whatever asyncio says about a foreign future
            await asyncio.wait_for(s._write(wrong, sql_only=True), 10)
        await s.audit("admin", "x", "y", "ok", at=T0)  # the writer still works
        assert await _count(s) == 1
    finally:
        await s.close()
