"""The store on SQLite: WAL, ``synchronous=FULL``, one writer task with group commit.

An Ack promises the alert is stored, so every write is durable when its call returns:
``synchronous=FULL`` syncs the WAL at each commit. To keep that affordable, all writes go
through one writer task on its own connection. It takes everything queued since its last
commit (up to ``max_batch`` jobs, optionally lingering ``linger`` seconds for more), runs
each job inside a SAVEPOINT of one ``BEGIN IMMEDIATE`` transaction, commits once, and only
then answers each caller. A job that fails (a UNIQUE violation: ``Conflict``) is rolled
back to its savepoint and fails alone; the others of the batch commit. If the commit
itself fails, every job of the batch fails with ``StoreError``. Jobs of plain SQL (most
writes, an alert's included) run together on the connection's thread, one trip for the
whole run of them, rather than one trip per statement.

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
import threading
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, cast

import aiosqlite

from hub.errors import StoreError
from hub.store import migrations
from hub.store.base import CampaignStore, MemberStore, Store
from hub.store.sql_alerts import AlertSql
from hub.store.sql_audit import AuditSql
from hub.store.sql_campaigns import CampaignSql
from hub.store.sql_common import Op, T, from_utc_text, mapped, utc_text
from hub.store.sql_entities import EntitySql
from hub.store.sql_ledger import LedgerSql
from hub.store.sql_members import MemberSql, fold
from hub.store.sql_progress import ProgressSql
from hub.store.sql_receipts import ReceiptSql
from hub.store.sql_subscriptions import SubscriptionSql
from hub.store.sql_templates import TemplateSql

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
    in_thread: bool = False  # plain SQL: runs on the connection's thread (``_run_in_thread``)
    outcome: tuple[bool, Any] = field(default=(False, None))


class SqliteStore(EntitySql, AlertSql, AuditSql, MemberSql, CampaignSql, ReceiptSql, ProgressSql, TemplateSql,
                  LedgerSql, SubscriptionSql):
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
        if self._wconn is not None:
            with contextlib.suppress(Exception):
                await self._wconn._execute(_close_thread_loop)  # type: ignore[no-untyped-call]
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

    async def _write(self, op: Op[T], *, single_statement: bool = False, sql_only: bool = False) -> T:
        """Queue ``op`` for the writer and wait until its batch is committed.
        ``single_statement``: ``op`` runs exactly one statement (no savepoint needed).
        ``sql_only`` (implied by ``single_statement``): ``op`` only awaits the connection's
        own methods, so it may run on the connection's thread with the rest of its batch."""
        if self._closing or self._queue is None or self._writer is None or self._writer.done():
            raise StoreError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(op, future, single_statement, single_statement or sql_only))
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
            await self._run_batch(conn, live)
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

    @classmethod
    async def _run_batch(cls, conn: aiosqlite.Connection, jobs: list[_Job[Any]]) -> None:
        """One transaction for ``jobs``. Runs of plain-SQL jobs go to the connection's thread in
        one trip each (BEGIN and COMMIT with them when they are at the ends): a trip per
        statement, several per alert, cost more than the statements. Other jobs: a trip per
        statement, as they may await other things between statements."""
        begun = False
        i = 0
        while i < len(jobs):
            if jobs[i].in_thread:
                j = i
                while j < len(jobs) and jobs[j].in_thread:
                    j += 1
                await conn._execute(  # type: ignore[no-untyped-call]
                    _run_in_thread, conn, jobs[i:j], not begun, j == len(jobs))
                begun = True
                i = j
                continue
            if not begun:
                await conn.execute("BEGIN IMMEDIATE")
                begun = True
            await cls._run_job(conn, jobs[i])
            i += 1
            if i == len(jobs):
                await conn.execute("COMMIT")

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


# --- the writer's batch, on the writer connection's own thread


def _run_in_thread(conn: aiosqlite.Connection, jobs: list[_Job[Any]], begin: bool, commit: bool) -> None:
    """Jobs of the batch's transaction, run on the thread of ``conn`` (aiosqlite's worker),
    the transaction begun first and committed last when asked. Each job's failure undoes it
    alone, as in ``_run_job``. The outcomes are left on the jobs for the event loop."""
    sconn = conn._conn
    shim = cast(aiosqlite.Connection, _InThread(sconn))
    if begin:
        sconn.execute("BEGIN IMMEDIATE")
    for job in jobs:
        if job.single_statement:
            try:
                job.outcome = (True, _finish(job.op(shim)))
            except Exception as exc:
                job.outcome = (False, mapped(exc))
        else:
            sconn.execute("SAVEPOINT job")
            try:
                value = _finish(job.op(shim))
            except Exception as exc:
                sconn.execute("ROLLBACK TO job")
                sconn.execute("RELEASE job")
                job.outcome = (False, mapped(exc))
            else:
                sconn.execute("RELEASE job")
                job.outcome = (True, value)
        if not sconn.in_transaction:  # an error that rolled back the whole batch (disk full, I/O)
            raise StoreError("the transaction was rolled back")
    if commit:
        sconn.execute("COMMIT")


_thread = threading.local()


def _finish(step: Awaitable[T]) -> T:
    """Run a write op to its end on the writer connection's thread, in an event loop of that
    thread's own: on ``_InThread`` the database calls never suspend, and an op that hands
    work to yet another thread (``asyncio.to_thread``) still can."""
    loop: asyncio.AbstractEventLoop | None = getattr(_thread, "loop", None)
    if loop is None:
        loop = _thread.loop = asyncio.new_event_loop()
    return loop.run_until_complete(step)


def _close_thread_loop() -> None:
    loop: asyncio.AbstractEventLoop | None = getattr(_thread, "loop", None)
    if loop is not None:
        _thread.loop = None
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


class _InThread:
    """The part of ``aiosqlite.Connection`` that write ops use, done at once on the sqlite3
    connection: ops run on the connection's own thread, so nothing needs to be awaited."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        return _Cursor(self._conn.execute(sql, parameters))

    async def executemany(self, sql: str, parameters: Any) -> _Cursor:
        return _Cursor(self._conn.executemany(sql, parameters))

    async def execute_fetchall(self, sql: str, parameters: Any = ()) -> list[Any]:
        return self._conn.execute(sql, parameters).fetchall()

    async def execute_insert(self, sql: str, parameters: Any = ()) -> Any:
        cursor = self._conn.execute(sql, parameters)
        cursor.execute("SELECT last_insert_rowid()")
        return cursor.fetchone()


class _Cursor:
    """The part of ``aiosqlite.Cursor`` that write ops use."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()
