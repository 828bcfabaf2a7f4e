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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import aiosqlite

from hub.domain import (
    Account,
    AlertState,
    Certificate,
    Entity,
    EntityType,
    Grants,
    Role,
    StoredAlert,
)
from hub.errors import HubError, StoreError
from hub.store import migrations
from hub.store.base import AuditEntry, Conflict, NewAlert, NotFound, Store

__all__ = ["FILENAME", "SqliteStore", "from_utc_text", "utc_text"]

FILENAME = "hub.sqlite3"

T = TypeVar("T")
Op = Callable[[aiosqlite.Connection], Awaitable[T]]

_UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
_FOREIGN_KEY = "SQLITE_CONSTRAINT_FOREIGNKEY"


def utc_text(moment: datetime) -> str:
    """An aware datetime as fixed-width UTC text: ``2024-05-01T10:00:00.000000Z``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the store keeps instants: pass a timezone-aware datetime")
    u = moment.astimezone(UTC)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
            f".{u.microsecond:06d}Z")


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _opt_utc(moment: datetime | None) -> str | None:
    return None if moment is None else utc_text(moment)


def _integrity(exc: sqlite3.IntegrityError, conflict: str, missing: str) -> StoreError:
    """A constraint failure as ``Conflict`` (unique key, trigger) or ``NotFound`` (a
    reference to a row that does not exist)."""
    if getattr(exc, "sqlite_errorname", "") == _FOREIGN_KEY:
        return NotFound(missing)
    return Conflict(conflict)


def _mapped(exc: Exception) -> Exception:
    """What a failed job raises to its caller."""
    if isinstance(exc, HubError):
        return exc
    mapped: StoreError
    if isinstance(exc, sqlite3.IntegrityError):
        mapped = _integrity(exc, f"constraint failed: {exc}", f"reference not found: {exc}")
    elif isinstance(exc, sqlite3.Error):
        mapped = StoreError(f"could not write: {exc}")
    else:
        return exc  # a bug, not a store failure: let it through unchanged
    mapped.__cause__ = exc
    return mapped


@dataclass(slots=True)
class _Job(Generic[T]):
    op: Op[T]
    future: asyncio.Future[T]
    single_statement: bool = False
    outcome: tuple[bool, Any] = field(default=(False, None))


# --- rows to domain values

_ENTITY_COLUMNS = (
    "e.id, e.name, e.type, e.signature_required, e.profile, e.territory, "
    "(SELECT json_group_array(sender) FROM "
    "(SELECT s.sender FROM senders s WHERE s.entity_id = e.id ORDER BY s.rowid))"
)
_ACCOUNT_COLUMNS = "a.id, a.entity_id, a.name, a.role, a.grants"
_CERT_COLUMNS = "id, entity_id, pem, fingerprint, subject, not_after"
_ALERT_COLUMNS = (
    "id, sender, identifier, sent, status, msg_type, scope, expires_utc, refs, entity_id, "
    "account_id, state, received, signed, answer, digest, received_at, superseded_by"
)


def _entity(row: Sequence[Any]) -> Entity:
    return Entity(
        id=row[0], name=row[1], type=EntityType(row[2]),
        senders=tuple(json.loads(row[6])), signature_required=bool(row[3]),
        profile=row[4], territory=row[5],
    )


def _account(row: Sequence[Any]) -> Account:
    return Account(id=row[0], entity_id=row[1], name=row[2], role=Role(row[3]),
                   grants=Grants.from_json(json.loads(row[4])))


def _certificate(row: Sequence[Any]) -> Certificate:
    return Certificate(id=row[0], entity_id=row[1], pem=bytes(row[2]), fingerprint=row[3],
                       subject=row[4], not_after=from_utc_text(row[5]))


def _alert(row: Sequence[Any]) -> StoredAlert:
    return StoredAlert(
        id=row[0], sender=row[1], identifier=row[2], sent=row[3], status=row[4],
        msg_type=row[5], scope=row[6],
        expires=None if row[7] is None else from_utc_text(row[7]),
        references=row[8], entity_id=row[9], account_id=row[10], state=AlertState(row[11]),
        received=bytes(row[12]), signed=bytes(row[13]), answer=bytes(row[14]), digest=row[15],
        received_at=from_utc_text(row[16]), superseded_by=row[17],
    )


def _ids_json(ids: Iterable[int]) -> str:
    return json.dumps(list(dict.fromkeys(int(i) for i in ids)))


class SqliteStore:
    """The ``Store`` on one SQLite file, usually ``<data_dir>/hub.sqlite3``.

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
            for pragma in ("synchronous=FULL", "foreign_keys=ON", f"busy_timeout={self._busy_ms}"):
                await self._wconn.execute(f"PRAGMA {pragma}")
            await migrations.apply(self._wconn)
            self._rconn = await aiosqlite.connect(self.path, isolation_level=None)
            for pragma in ("query_only=ON", f"busy_timeout={self._busy_ms}"):
                await self._rconn.execute(f"PRAGMA {pragma}")
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
                job.outcome = (False, _mapped(exc))
        else:
            await conn.execute("SAVEPOINT job")
            try:
                value = await job.op(conn)
            except Exception as exc:
                await conn.execute("ROLLBACK TO job")
                await conn.execute("RELEASE job")
                job.outcome = (False, _mapped(exc))
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

    async def _read_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = await self._read(sql, params)
        return rows[0] if rows else None

    # --- entities, certificates, accounts, tokens

    async def add_entity(
        self, name: str, type: EntityType, senders: Sequence[str], *,
        signature_required: bool, profile: str, territory: str | None,
    ) -> Entity:
        unique_senders = tuple(dict.fromkeys(senders))

        async def op(conn: aiosqlite.Connection) -> Entity:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO entities (name, type, signature_required, profile, territory) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, int(type), int(signature_required), profile, territory))
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"an entity named {name!r} exists") from exc
            assert row is not None
            for sender in unique_senders:
                try:
                    await conn.execute("INSERT INTO senders (sender, entity_id) VALUES (?, ?)",
                                       (sender, row[0]))
                except sqlite3.IntegrityError as exc:
                    raise Conflict(f"sender {sender!r} belongs to another entity") from exc
            return Entity(id=row[0], name=name, type=EntityType(type), senders=unique_senders,
                          signature_required=signature_required, profile=profile,
                          territory=territory)

        return await self._write(op)

    async def entity(self, entity_id: int) -> Entity | None:
        row = await self._read_one(f"SELECT {_ENTITY_COLUMNS} FROM entities e WHERE e.id = ?",
                                   (entity_id,))
        return None if row is None else _entity(row)

    async def entity_by_name(self, name: str) -> Entity | None:
        row = await self._read_one(f"SELECT {_ENTITY_COLUMNS} FROM entities e WHERE e.name = ?",
                                   (name,))
        return None if row is None else _entity(row)

    async def entity_for_sender(self, sender: str) -> Entity | None:
        row = await self._read_one(
            f"SELECT {_ENTITY_COLUMNS} FROM senders s0 JOIN entities e ON e.id = s0.entity_id "
            "WHERE s0.sender = ?", (sender,))
        return None if row is None else _entity(row)

    async def add_certificate(
        self, entity_id: int, pem: bytes, *, fingerprint: str, subject: str, not_after: datetime
    ) -> Certificate:
        not_after_text = utc_text(not_after)

        async def op(conn: aiosqlite.Connection) -> Certificate:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO certificates (entity_id, fingerprint, pem, subject, not_after) "
                    "VALUES (?, ?, ?, ?, ?)", (entity_id, fingerprint, pem, subject, not_after_text))
            except sqlite3.IntegrityError as exc:
                if getattr(exc, "sqlite_errorname", "") in _UNIQUE:
                    raise Conflict(f"certificate {fingerprint} is already registered to entity "
                                   f"{entity_id}") from exc
                raise _integrity(exc, f"certificate {fingerprint} is registered to another entity",
                                 f"no entity {entity_id}") from exc
            assert row is not None
            return Certificate(id=row[0], entity_id=entity_id, pem=pem, fingerprint=fingerprint,
                               subject=subject, not_after=from_utc_text(not_after_text))

        return await self._write(op, single_statement=True)

    async def certificates(self, entity_id: int) -> list[Certificate]:
        rows = await self._read(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE entity_id = ? ORDER BY id", (entity_id,))
        return [_certificate(row) for row in rows]

    async def add_account(self, entity_id: int, name: str, role: Role, grants: Grants) -> Account:
        grants_json = json.dumps(grants.to_json(), sort_keys=True)

        async def op(conn: aiosqlite.Connection) -> Account:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO accounts (entity_id, name, role, grants) VALUES (?, ?, ?, ?)",
                    (entity_id, name, str(role), grants_json))
            except sqlite3.IntegrityError as exc:
                # the name may be a person's: say what conflicted, not the value
                raise _integrity(exc, "the account name is taken", f"no entity {entity_id}") from exc
            assert row is not None
            return Account(id=row[0], entity_id=entity_id, name=name, role=Role(role),
                           grants=grants)

        return await self._write(op, single_statement=True)

    async def account_by_name(self, name: str) -> Account | None:
        row = await self._read_one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.name = ?",
                                   (name,))
        return None if row is None else _account(row)

    async def add_token(self, account_id: int, token_hash: str, *, created_at: datetime) -> int:
        created = utc_text(created_at)

        async def op(conn: aiosqlite.Connection) -> int:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO tokens (account_id, hash, created_at) VALUES (?, ?, ?)",
                    (account_id, token_hash, created))
            except sqlite3.IntegrityError as exc:
                raise _integrity(exc, "the token exists", f"no account {account_id}") from exc
            assert row is not None
            return int(row[0])

        return await self._write(op, single_statement=True)

    async def revoke_token(self, token_hash: str, *, revoked_at: datetime) -> bool:
        """True if the token existed and was live; False if unknown or already revoked."""
        revoked = utc_text(revoked_at)

        async def op(conn: aiosqlite.Connection) -> bool:
            cursor = await conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL",
                (revoked, token_hash))
            return cursor.rowcount > 0

        return await self._write(op, single_statement=True)

    async def account_for_token(self, token_hash: str) -> tuple[Account, Entity] | None:
        row = await self._read_one(
            f"SELECT {_ACCOUNT_COLUMNS}, {_ENTITY_COLUMNS} FROM tokens t "
            "JOIN accounts a ON a.id = t.account_id JOIN entities e ON e.id = a.entity_id "
            "WHERE t.hash = ? AND t.revoked_at IS NULL", (token_hash,))
        if row is None:
            return None
        return _account(row[:5]), _entity(row[5:])

    # --- alerts

    async def find_alert(self, sender: str, identifier: str, sent_utc: datetime) -> StoredAlert | None:
        row = await self._read_one(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE sender = ? AND identifier = ? AND sent_utc = ?",
            (sender, identifier, utc_text(sent_utc)))
        return None if row is None else _alert(row)

    async def insert_alert(
        self, alert: NewAlert, *, references: Sequence[int] = (),
        supersede: Sequence[int] = (), cancel: Sequence[int] = (),
    ) -> StoredAlert:
        key = f"{alert.sender},{alert.identifier},{alert.sent}"
        params = (
            alert.sender, alert.identifier, alert.sent, utc_text(alert.sent_utc), alert.status,
            alert.msg_type, alert.scope, _opt_utc(alert.expires), alert.references,
            alert.areas_json, alert.entity_id, alert.account_id, str(alert.state), alert.received,
            alert.signed, alert.answer, alert.digest, utc_text(alert.received_at),
        )
        links = list(dict.fromkeys(int(i) for i in references))
        supersede_ids, cancel_ids = _ids_json(supersede), _ids_json(cancel)

        async def op(conn: aiosqlite.Connection) -> StoredAlert:
            try:
                row = await conn.execute_insert(_INSERT_ALERT, params)
            except sqlite3.IntegrityError as exc:
                raise _integrity(exc, f"alert {key} exists",
                                 f"alert {key}: its entity or account does not exist") from exc
            assert row is not None
            alert_id = int(row[0])
            if links:
                try:
                    await conn.executemany(
                        "INSERT INTO alert_links (alert_id, referenced_id) VALUES (?, ?)",
                        [(alert_id, ref) for ref in links])
                except sqlite3.IntegrityError as exc:
                    raise NotFound(f"alert {key}: a referenced alert does not exist") from exc
            await _set_states(conn, supersede_ids, AlertState.UPDATED, alert_id,
                              f"alert {key}: an alert it updates does not exist")
            await _set_states(conn, cancel_ids, AlertState.CANCELLED, None,
                              f"alert {key}: an alert it cancels does not exist")
            return _stored(alert_id, alert)

        plain = not links and supersede_ids == "[]" and cancel_ids == "[]"
        return await self._write(op, single_statement=plain)

    async def alert(self, alert_id: int) -> StoredAlert | None:
        row = await self._read_one(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return None if row is None else _alert(row)

    async def list_alerts(
        self, *, status: str | None = None, since: datetime | None = None,
        sender: str | None = None, public_only: bool = False, limit: int = 100,
        before_id: int | None = None,
    ) -> list[StoredAlert]:
        """Newest first (by id). ``since`` keeps alerts sent at or after that instant."""
        if limit <= 0:
            return []
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if since is not None:
            where.append("sent_utc >= ?")
            params.append(utc_text(since))
        if sender is not None:
            where.append("sender = ?")
            params.append(sender)
        if public_only:
            where.append("scope = 'Public' AND status = 'Actual'")
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = await self._read(
            f"SELECT {_ALERT_COLUMNS} FROM alerts {clause}ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_alert(row) for row in rows]

    async def expire_alerts(self, now: datetime) -> list[int]:
        cutoff = utc_text(now)

        async def op(conn: aiosqlite.Connection) -> list[int]:
            rows = await conn.execute_fetchall(
                "UPDATE alerts SET state = 'expired' "
                "WHERE state = 'active' AND expires_utc <= ? RETURNING id", (cutoff,))
            return sorted(int(row[0]) for row in rows)

        return await self._write(op, single_statement=True)

    async def set_state(self, alert_id: int, state: AlertState) -> None:
        async def op(conn: aiosqlite.Connection) -> None:
            cursor = await conn.execute("UPDATE alerts SET state = ? WHERE id = ?",
                                        (str(AlertState(state)), alert_id))
            if cursor.rowcount == 0:
                raise NotFound(f"no alert {alert_id}")

        await self._write(op, single_statement=True)

    # --- audit (append-only)

    async def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "{}",
                    *, at: datetime) -> None:
        params = (utc_text(at), actor, action, target, outcome, detail)

        async def op(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)",
                params)

        await self._write(op, single_statement=True)

    async def audit_entries(self, *, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        if limit <= 0:
            return []
        rows = await self._read(
            "SELECT id, at, actor, action, target, outcome, detail FROM audit ORDER BY id DESC LIMIT ?",
            (limit,))
        return [AuditEntry(id=r[0], at=from_utc_text(r[1]), actor=r[2], action=r[3], target=r[4],
                           outcome=r[5], detail=r[6]) for r in rows]


_INSERT_ALERT = (
    "INSERT INTO alerts (sender, identifier, sent, sent_utc, status, msg_type, scope, expires_utc, "
    "refs, areas_json, entity_id, account_id, state, received, signed, answer, digest, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def _set_states(conn: aiosqlite.Connection, ids_json: str, state: AlertState,
                      superseded_by: int | None, missing: str) -> None:
    """Set ``state`` on the alerts listed (a JSON array); all must exist."""
    wanted = len(json.loads(ids_json))
    if not wanted:
        return
    if superseded_by is None:
        sql = "UPDATE alerts SET state = ? WHERE id IN (SELECT value FROM json_each(?))"
        cursor = await conn.execute(sql, (str(state), ids_json))
    else:
        sql = ("UPDATE alerts SET state = ?, superseded_by = ? "
               "WHERE id IN (SELECT value FROM json_each(?))")
        cursor = await conn.execute(sql, (str(state), superseded_by, ids_json))
    if cursor.rowcount != wanted:
        raise NotFound(missing)


def _stored(alert_id: int, alert: NewAlert) -> StoredAlert:
    return StoredAlert(
        id=alert_id, sender=alert.sender, identifier=alert.identifier, sent=alert.sent,
        status=alert.status, msg_type=alert.msg_type, scope=alert.scope,
        expires=None if alert.expires is None else alert.expires.astimezone(UTC),
        references=alert.references, entity_id=alert.entity_id, account_id=alert.account_id,
        state=alert.state, received=alert.received, signed=alert.signed, answer=alert.answer,
        digest=alert.digest, received_at=alert.received_at.astimezone(UTC),
    )


def _conforms(store: SqliteStore) -> Store:
    """mypy checks here that ``SqliteStore`` implements the ``Store`` Protocol."""
    return store
