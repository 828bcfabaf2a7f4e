"""What the providers answered: the SQL of settling sends and of SMS delivery receipts.

**The SMS state model.** A delivery is written as few times as its receipts allow:

- its receipts came while the worker still had it in hand (an SMSC on a fast link answers
  the receipt milliseconds after the submit): the worker's one ``settle`` write takes it from
  *sending* to *delivered* or *failed*, with its parts and cost; no id is indexed;
- otherwise ``settle`` makes it *submitted*, with its parts and cost, and indexes every part's
  message id in ``delivery_messages`` (with the receipts of the parts that did come); each
  later receipt updates its part's row, and the receipts write that completes the last part
  also ends the delivery (``end_by_receipts``), so the tracker has nothing left to write.

A receipt can still overtake its settle (it came after the worker stopped holding it, and
was stored first): it is indexed with its state under the delivery id it was correlated
with, and the settle that makes the delivery submitted ends it at once from those rows.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

import aiosqlite

from hub.domain import DeliveryState
from hub.store.base import MessageRow
from hub.store.sql_common import SqlBase, utc_text

# A final outcome: (delivery id, state, reason, parts, cost in euro)
OutcomeRow = tuple[int, DeliveryState, str | None, int, float]
# A receipt to record: (the message id's forms, canonical first; the delivery id when known;
# part; parts; delivered; reason)
ReceiptRow = tuple[Sequence[str], int | None, int, int, bool, str | None]
# A delivery all of whose parts have their receipt: (delivery id, all delivered, reason, parts)
Done = tuple[int, bool, str | None, int]

_SENDING = DeliveryState.SENDING.value
_SUBMITTED = DeliveryState.SUBMITTED.value


class ReceiptSql(SqlBase):
    async def settle(self, submitted: Sequence[int], retries: Sequence[tuple[int, str]], *,
                     at: datetime, outcomes: Sequence[OutcomeRow] = (),
                     message_ids: Sequence[MessageRow] = (),
                     superseded: Sequence[tuple[int, str, int, int]] = (),
                     awaiting: Sequence[tuple[int, int, float]] = (),
                     resent: Collection[int] = ()) -> None:
        """After the provider answered, in one transaction, from *sending*: → submitted
        (``submitted``: state only; ``awaiting``: SMS as (delivery, parts, cost), their
        ``message_ids`` indexed), → the final ``outcomes`` (delivery, state, reason, parts,
        cost), → queued with the transient reason for the ``retries``. ``superseded``: ids
        of parts of SMS that failed half-way, indexed as final ('superseded') so that their
        receipts neither complete nor fail the delivery. ``resent``: deliveries on a later
        attempt; the parts of earlier attempts that went out (superseded) are added to the
        parts and cost of their outcome here: they were billed."""
        if not (submitted or retries or outcomes or message_ids or superseded or awaiting):
            return
        now = utc_text(at)

        async def op(conn: aiosqlite.Connection) -> None:
            nonlocal outcomes, awaiting
            if resent:
                outcomes, awaiting = await _with_superseded(conn, resent, outcomes, awaiting)
            if message_ids:
                await conn.executemany(
                    "INSERT INTO delivery_messages (delivery_id, message_id, part, parts, state, reason) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                    [r if len(r) == 6 else (*r, None, None) for r in message_ids])
            if superseded:
                await conn.executemany(
                    "INSERT INTO delivery_messages (delivery_id, message_id, part, parts, state) "
                    "VALUES (?, ?, ?, ?, 'superseded') "
                    "ON CONFLICT (message_id) DO UPDATE SET state = 'superseded', reason = NULL", superseded)
            if submitted:
                await conn.execute(
                    "UPDATE deliveries SET state = ?, updated_at = ? "
                    "WHERE id IN (SELECT value FROM json_each(?)) AND state = ?",
                    (_SUBMITTED, now, json.dumps(list(submitted)), _SENDING))
            # One statement per distinct outcome (a chunk has a handful), not one per delivery:
            # SQLite then runs through the chunk without taking the GIL back row by row, which
            # the event loop, sending meanwhile, needs.
            groups: dict[tuple[str, str | None, int, float], list[int]] = {}
            for i, parts, cost in awaiting:
                groups.setdefault((_SUBMITTED, None, parts, cost), []).append(i)
            for i, state, reason, parts, cost in outcomes:
                groups.setdefault((state.value, reason, parts, cost), []).append(i)
            for (state_value, reason, parts, cost), ids in groups.items():
                await conn.execute(
                    "UPDATE deliveries SET state = ?, reason = ?, parts = ?, cost_eur = ?, updated_at = ? "
                    "WHERE id IN (SELECT value FROM json_each(?)) AND state = ?",
                    (state_value, reason, parts, cost, now, json.dumps(ids), _SENDING))
            if retries:
                await conn.executemany(
                    "UPDATE deliveries SET state = ?, reason = ?, published_at = ?, updated_at = ? "
                    "WHERE id = ? AND state = ?",
                    [(DeliveryState.QUEUED.value, reason, now, now, i, _SENDING) for i, reason in retries])
            if awaiting and message_ids:
                # Receipts stored before this write (they overtook it): end what they complete.
                early = await conn.execute_fetchall(
                    "SELECT DISTINCT delivery_id FROM delivery_messages WHERE delivery_id IN "
                    "(SELECT value FROM json_each(?)) AND state IN ('delivered', 'failed')",
                    (json.dumps([a[0] for a in awaiting]),))
                if early:
                    await end_by_receipts(conn, [r[0] for r in early], now)

        await self._write(op, sql_only=True)

    async def add_message_ids(self, rows: Sequence[tuple[int, str, int, int]]) -> None:
        if not rows:
            return

        async def op(conn: aiosqlite.Connection) -> None:
            await conn.executemany(
                "INSERT INTO delivery_messages (delivery_id, message_id, part, parts) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (message_id) DO NOTHING", rows)

        await self._write(op, sql_only=True)

    async def message_receipts(self, rows: Sequence[ReceiptRow], *, at: datetime | None = None) -> list[Done]:
        """Record final receipts per part; a submitted delivery whose every part now has its
        receipt ends (delivered when every part was, else failed with the first failure's
        reason) in the same write. Returns those complete deliveries (a delivery the settle
        has not made submitted yet is returned too, and ended by that settle)."""
        if not rows:
            return []
        now = utc_text(at or datetime.now(UTC))

        async def op(conn: aiosqlite.Connection) -> list[Done]:
            # A few statements for the whole batch, not three per receipt; the same outcome as
            # looking each receipt up in turn: a row a receipt inserts is found by a later one
            # (in ``by_id``), an update applies once (``state IS NULL``). A receipt correlated
            # in memory has one form: the id its submit got, as indexed.
            wanted = list({f: None for forms, *_ in rows for f in forms})
            by_id: dict[str, int] = {r[0]: r[1] for r in await conn.execute_fetchall(
                "SELECT message_id, delivery_id FROM delivery_messages "
                "WHERE message_id IN (SELECT value FROM json_each(?))", (json.dumps(wanted),))}
            touched: dict[int, None] = {}
            updates: list[tuple[str, str | None, str]] = []
            inserts: list[tuple[int, str, int, int, str, str | None]] = []
            for forms, known, part, parts, delivered, reason in rows:
                if not forms:
                    continue
                state = "delivered" if delivered else "failed"
                message_id = next((f for f in forms if f in by_id), None)
                if message_id is not None:
                    updates.append((state, reason, message_id))
                    touched[by_id[message_id]] = None
                elif known is not None:  # the receipt overtook the worker's index write
                    inserts.append((known, forms[0], part, parts, state, reason))
                    by_id[forms[0]] = known
                    touched[known] = None
            if inserts:
                await conn.executemany(
                    "INSERT INTO delivery_messages (delivery_id, message_id, part, parts, state, reason) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING", inserts)
            if updates:
                await conn.executemany(
                    "UPDATE delivery_messages SET state = ?, reason = ? WHERE message_id = ? "
                    "AND state IS NULL", updates)
            return await end_by_receipts(conn, list(touched), now) if touched else []

        # Plain SQL: on the writer's thread in one trip, not one per statement.
        return await self._write(op, sql_only=True)


async def end_by_receipts(conn: aiosqlite.Connection, delivery_ids: Sequence[int], now: str) -> list[Done]:
    """Of these deliveries, those whose every part has its final receipt in the index: ended
    (from *submitted*: one still *sending* is ended by its settle) and returned."""
    tally = {r[0]: tuple(r[1:]) for r in await conn.execute_fetchall(
        "SELECT delivery_id, COUNT(*), MAX(parts), SUM(state IS NOT NULL), SUM(state = 'failed'), "
        "MIN(CASE WHEN state = 'failed' THEN reason END) FROM delivery_messages "
        "WHERE delivery_id IN (SELECT value FROM json_each(?)) GROUP BY delivery_id",
        (json.dumps(list(delivery_ids)),))}
    done: list[Done] = []
    for delivery_id in delivery_ids:
        count, parts_max, final, failed, reason = tally.get(delivery_id, (0, None, None, None, None))
        parts = max(int(count), int(parts_max or 0))
        if int(final or 0) >= parts:
            done.append((delivery_id, not failed, reason, parts))
    if done:
        await conn.executemany(
            "UPDATE deliveries SET state = ?, reason = ?, updated_at = ? WHERE id = ? AND state = ?",
            [((DeliveryState.DELIVERED if ok else DeliveryState.FAILED).value, None if ok else reason, now,
              delivery_id, _SUBMITTED) for delivery_id, ok, reason, _ in done])
    return done


async def _with_superseded(conn: aiosqlite.Connection, resent: Collection[int],
                           outcomes: Sequence[OutcomeRow], awaiting: Sequence[tuple[int, int, float]],
                           ) -> tuple[list[OutcomeRow], list[tuple[int, int, float]]]:
    """The parts of earlier attempts (indexed superseded) added to these sends' parts, their
    cost scaled to match (a price is per part)."""
    extra = {r[0]: int(r[1]) for r in await conn.execute_fetchall(
        "SELECT delivery_id, COUNT(*) FROM delivery_messages WHERE delivery_id IN "
        "(SELECT value FROM json_each(?)) AND state = 'superseded' GROUP BY delivery_id",
        (json.dumps(sorted(resent)),))}

    def more(delivery_id: int, parts: int, cost: float) -> tuple[int, float]:
        n = extra.get(delivery_id, 0)
        if not n or not parts:
            return parts, cost
        return parts + n, round(cost * (parts + n) / parts, 6)

    return ([(i, s, r, *more(i, p, c)) for i, s, r, p, c in outcomes],
            [(i, *more(i, p, c)) for i, p, c in awaiting])
