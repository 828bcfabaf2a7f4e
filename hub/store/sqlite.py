"""The store on SQLite: WAL, ``synchronous=FULL``, one writer task with group commit.

An Ack promises the alert is stored, so every write is durable when its call returns:
``synchronous=FULL`` syncs the WAL at each commit. To keep that affordable, all writes go
through one writer task on its own connection. It takes everything queued since its last
commit (up to ``max_batch`` jobs, optionally lingering ``linger`` seconds for more), runs
each job inside a SAVEPOINT of one ``BEGIN IMMEDIATE`` transaction, commits once, and only
then answers each caller. A job that fails (a UNIQUE violation: ``Conflict``) is rolled
back to its savepoint and fails alone; the others of the batch commit. If the commit
itself fails, every job of the batch fails with ``StoreError``.

Reads use a second connection (``query_only``); WAL lets it read while the writer writes,
and each read is one statement, so it sees one consistent snapshot.

Times are kept as fixed-width UTC ISO text (``utc_text``), so text order is time order and
an instant written with another offset is the same key.

This module is the engine (connections, the writer, ``_write``/``_read``, open, close,
migrations). The SQL of each area lives in its own mixin, which ``SqliteStore`` composes:
``sql_entities`` (entities, senders, certificates, accounts, tokens), ``sql_alerts``
(alerts, links, states, expiry), ``sql_audit``, ``sql_members`` (PLP groups, members and
their contact points). ``sql_common`` holds what they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic

import aiosqlite

from hub.errors import StoreError
from hub.store import migrations
from hub.store.base import CampaignStore, MemberStore, Store
from hub.store.sql_alerts import AlertSql
from hub.store.sql_audit import AuditSql
from hub.store.sql_campaigns import CampaignSql
from hub.store.sql_common import Op, T, from_utc_text, mapped, utc_text
from hub.store.sql_entities import EntitySql
from hub.store.sql_members import MemberSql, fold

__all__ = ["FILENAME", "SqliteStore", "from_utc_text", "utc_text"]

FILENAME = "hub.sqlite3"

# The writer's page cache: a large import (100,000 members) stays in memory until its
# commit instead of spilling pages to the WAL halfway.
_WRITER_CACHE_KIB = 64 * 1024


@dataclass(slots=True)
class _Job(Generic[T]):
    op: Op[T]
    future: asyncio.Future[T]
    single_statement: bool = False
    outcome: tuple[bool, Any] = field(default=(False, None))


class SqliteStore(EntitySql, AlertSql, AuditSql, MemberSql, CampaignSql):
    """The ``Store``, ``MemberStore`` and ``CampaignStore`` on one SQLite file, usually
    ``<data_dir>/hub.sqlite3``.

    ``max_batch`` caps how many writes share one transaction; ``linger`` (seconds) lets the
    writer wait a little for more writes before it commits (0: commit what is queued now;
    under load, what queues up during one commit forms the next batch).
    """

    def __init__(self, path: str | Path, *, max_batch: int = 256, linger: float = 0.0,
                 busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._max_batch = max(1, max_batch)
        self._linger = max(0.0, linger)
        self._busy_ms = int(busy_timeout * 1000)
        self._wconn: aiosqlite.Connection | None = None
        self._rconn: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[_Job[Any] | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    def in_data_dir(cls, data_dir: str | Path, **options: Any) -> SqliteStore:
        return cls(Path(data_dir) / FILENAME, **options)

    # --- life cycle

    async def open(self) -> None:
        if self._wconn is not None:
            raise StoreError("the store is already open")
        self._closing = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wconn = await aiosqlite.connect(self.path, isolation_level=None)
            mode = list(await self._wconn.execute_fetchall("PRAGMA journal_mode=WAL"))
            if str(mode[0][0]).lower() != "wal":
                raise StoreError(f"{self.path.name}: could not switch to WAL mode")
            for pragma in ("synchronous=FULL", "foreign_keys=ON", f"busy_timeout={self._busy_ms}",
                           "secure_delete=ON", f"cache_size=-{_WRITER_CACHE_KIB}"):
                await self._wconn.execute(f"PRAGMA {pragma}")
            await migrations.apply(self._wconn)
            self._rconn = await aiosqlite.connect(self.path, isolation_level=None)
            for pragma in ("query_only=ON", f"busy_timeout={self._busy_ms}"):
                await self._rconn.execute(f"PRAGMA {pragma}")
            await self._rconn.create_function("hub_fold", 1, fold, deterministic=True)
        except BaseException as exc:
            await self._close_connections()
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise StoreError(f"could not open the store {self.path.name}: {exc}") from exc
            raise
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._run_writer(), name="store-writer")
        self._writer.add_done_callback(self._fail_queued)

    async def close(self) -> None:
        """Stop taking writes, commit what is queued, stop the writer, close connections."""
        self._closing = True
        writer, self._writer = self._writer, None
        if writer is not None and self._queue is not None:
            self._queue.put_nowait(None)
            await asyncio.wait([writer])  # its own failure is already reported to its callers
        await self._close_connections()

    async def _close_connections(self) -> None:
        for conn in (self._rconn, self._wconn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._rconn = self._wconn = None

    async def healthy(self) -> bool:
        if self._closing or self._writer is None or self._writer.done() or self._rconn is None:
            return False
        try:
            rows = list(await self._rconn.execute_fetchall("SELECT 1"))
        except (sqlite3.Error, ValueError):
            return False
        return rows == [(1,)]

    # --- the writer

    async def _write(self, op: Op[T], *, single_statement: bool = False) -> T:
        """Queue ``op`` for the writer and wait until its batch is committed.
        ``single_statement``: ``op`` runs exactly one statement (no savepoint needed)."""
        if self._closing or self._queue is None or self._writer is None or self._writer.done():
            raise StoreError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(op, future, single_statement))
        return await future

    async def _run_writer(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            first = await queue.get()
            if first is None:
                return
            batch: list[_Job[Any]] = [first]
            if self._linger and queue.qsize() < self._max_batch - 1:
                await asyncio.sleep(self._linger)
            stop = False
            while len(batch) < self._max_batch and not queue.empty():
                job = queue.get_nowait()
                if job is None:
                    stop = True
                    break
                batch.append(job)
            await self._commit(batch)
            if stop:
                return

    async def _commit(self, batch: list[_Job[Any]]) -> None:
        conn = self._wconn
        assert conn is not None
        live = [job for job in batch if not job.future.done()]  # a cancelled caller: skip
        if not live:
            return
        try:
            await conn.execute("BEGIN IMMEDIATE")
            for job in live:
                await self._run_job(conn, job)
            await conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
            for job in live:
                if not job.future.done():
                    error = StoreError(f"could not commit: {exc}")
                    error.__cause__ = exc
                    job.future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        for job in live:
            if job.future.done():
                continue
            ok, value = job.outcome
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    @staticmethod
    async def _run_job(conn: aiosqlite.Connection, job: _Job[Any]) -> None:
        """Run one job inside the batch's transaction. Its failure undoes it alone: a job of
        several statements runs in a SAVEPOINT; a job of one statement needs none, as SQLite
        undoes a failed statement by itself (and a thread hop per statement is what limits
        throughput here)."""
        if job.single_statement:
            try:
                job.outcome = (True, await job.op(conn))
            except Exception as exc:
                job.outcome = (False, mapped(exc))
        else:
            await conn.execute("SAVEPOINT job")
            try:
                value = await job.op(conn)
            except Exception as exc:
                await conn.execute("ROLLBACK TO job")
                await conn.execute("RELEASE job")
                job.outcome = (False, mapped(exc))
            else:
                await conn.execute("RELEASE job")
                job.outcome = (True, value)
        if not conn.in_transaction:  # an error that rolled back the whole batch (disk full, I/O)
            raise StoreError("the transaction was rolled back")

    def _fail_queued(self, _task: asyncio.Task[None]) -> None:
        """The writer stopped: nothing still queued will be written."""
        if self._queue is None:
            return
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None and not job.future.done():
                job.future.set_exception(StoreError("the store is closed"))

    # --- reads

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = self._rconn
        if conn is None:
            raise StoreError("the store is closed")
        try:
            return list(await conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"could not read: {exc}") from exc


def _conforms(store: SqliteStore) -> tuple[Store, MemberStore, CampaignStore]:
    """mypy checks here that ``SqliteStore`` implements the store Protocols."""
    return store, store, store
