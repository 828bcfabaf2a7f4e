"""The SQLite store against a real file in tmp_path: every method, conflicts, group commit."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiosqlite
import pytest

from hub.domain import AlertState, Entity, EntityType, Grants, Kind, Role
from hub.errors import StoreError
from hub.store import Conflict, NewAlert, NotFound, migrations
from hub.store.sqlite import FILENAME, SqliteStore, from_utc_text, utc_text

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
BRUSSELS = timezone(timedelta(hours=2))


def new_alert(n: int = 0, *, sender: str = "plp@zone.example", identifier: str | None = None,
              sent: datetime | None = None, status: str = "Actual", msg_type: str = "Alert",
              scope: str = "Public", expires: datetime | None = None,
              references: str | None = None) -> NewAlert:
    sent = sent or T0 + timedelta(minutes=n)
    return NewAlert(
        sender=sender, identifier=identifier or f"ID-{n}", sent=sent.isoformat(), sent_utc=sent,
        status=status, msg_type=msg_type, scope=scope, expires=expires, references=references,
        areas_json='[{"areaDesc": "Gent"}]', entity_id=None, account_id=None,
        received=b"<alert>%d</alert>" % n, signed=b"<alert signed>%d</alert>" % n,
        answer=b"<ack>%d</ack>" % n, digest=f"{n:064x}", received_at=sent + timedelta(seconds=1),
    )


async def add_entity(store: SqliteStore, name: str = "PLP Gent",
                     senders: tuple[str, ...] = ("plp@zone.example",)) -> Entity:
    return await store.add_entity(name, EntityType.GROUPS, senders, signature_required=True, profile="be",
                                  territory=None)


# --- life cycle

async def test_open_creates_wal_file_with_pragmas(store: SqliteStore, tmp_path: Path) -> None:
    assert store.path == tmp_path / FILENAME
    assert await store.healthy()
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [v for (v,) in raw.execute("SELECT version FROM schema_version")]
    assert versions == [v for v, _ in migrations.MIGRATIONS]


async def test_closed_store_refuses(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path)
    await s.open()
    await s.close()
    assert not await s.healthy()
    with pytest.raises(StoreError, match="closed"):
        await s.insert_alert(new_alert())
    with pytest.raises(StoreError, match="closed"):
        await s.alert(1)
    await s.close()  # twice is fine


async def test_data_survives_reopen_and_migrations_run_once(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path)
    await s.open()
    entity = await add_entity(s)
    stored = await s.insert_alert(new_alert(1))
    await s.close()
    for _ in range(2):
        s = SqliteStore.in_data_dir(tmp_path)
        await s.open()
        assert await s.entity(entity.id) == entity
        assert await s.alert(stored.id) == stored
        await s.close()
    with sqlite3.connect(tmp_path / FILENAME) as raw:
        assert raw.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(migrations.MIGRATIONS)


async def test_new_migration_applies_only_what_is_new(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path)
    await s.open()
    await s.close()
    extra = [*migrations.MIGRATIONS, (99, "CREATE TABLE later (x INTEGER); -- a comment; here\n"
                                          "CREATE TRIGGER later_t AFTER INSERT ON later BEGIN "
                                          "SELECT 1; SELECT 2; END;")]
    async with aiosqlite.connect(tmp_path / FILENAME, isolation_level=None) as conn:
        assert await migrations.apply(conn, extra) == 99
        assert await migrations.apply(conn, extra) == 99
        assert await migrations.current_version(conn) == 99


async def test_v9_puts_message_ids_in_canonical_form(tmp_path: Path) -> None:
    """An index written before version 9 holds ids as the SMSC wrote them, and beside one of
    them the row its decimal receipt added: the ids become canonical, the stale row goes."""
    async with aiosqlite.connect(tmp_path / "old.sqlite3", isolation_level=None) as conn:
        assert await migrations.apply(conn, [m for m in migrations.MIGRATIONS if m[0] < 9]) == 8
        await conn.execute("PRAGMA foreign_keys=OFF")
        await conn.executemany(
            "INSERT INTO delivery_messages (message_id, delivery_id, part, parts, state) "
            "VALUES (?, ?, ?, ?, ?)",
            [("00EE6B2800", 1, 1, 1, None), ("4000000000", 1, 1, 1, "delivered"),
             ("EE6B2801", 2, 1, 2, None), ("0", 3, 1, 1, None), ("12", 4, 1, 1, "failed")])
        assert await migrations.apply(conn) == migrations.latest()
        rows = sorted(await conn.execute_fetchall(
            "SELECT message_id, delivery_id, state FROM delivery_messages"))
    assert rows == [("0", 3, None), ("12", 4, "failed"), ("4000000000", 1, "delivered"),
                    ("ee6b2801", 2, None)]


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path)
    await s.open()
    await s.close()
    with sqlite3.connect(tmp_path / FILENAME) as raw:
        raw.execute("INSERT INTO schema_version (version) VALUES (1000)")
    s = SqliteStore.in_data_dir(tmp_path)
    with pytest.raises(StoreError, match="version 1000 is newer"):
        await s.open()
    assert not await s.healthy()


def test_statements_keep_trigger_bodies_whole() -> None:
    parts = migrations.statements(migrations.V1)
    triggers = [p for p in parts if "CREATE TRIGGER" in p]
    assert len(triggers) == 3 and all(t.endswith("END;") for t in triggers)
    with pytest.raises(ValueError):
        migrations.statements("CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1;")


def test_utc_text_is_fixed_width_and_ordered() -> None:
    a = datetime(2024, 5, 1, 12, 0, tzinfo=BRUSSELS)
    assert utc_text(a) == "2024-05-01T10:00:00.000000Z" == utc_text(T0)
    assert utc_text(T0 + timedelta(microseconds=5)) > utc_text(T0)
    assert from_utc_text(utc_text(a)) == a and from_utc_text(utc_text(a)).tzinfo == UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_text(datetime(2024, 5, 1))


# --- entities, certificates, accounts, tokens

async def test_entities(store: SqliteStore) -> None:
    e = await store.add_entity("Commune X", EntityType.AREA, ["b@x", "a@x", "b@x"],
                               signature_required=False, profile="", territory='{"type": "Polygon"}')
    assert e.senders == ("b@x", "a@x") and e.type is EntityType.AREA
    assert await store.entity(e.id) == e
    assert await store.entity_by_name("Commune X") == e
    assert await store.entity_for_sender("a@x") == e
    assert await store.entity(e.id + 1) is None
    assert await store.entity_by_name("nope") is None
    assert await store.entity_for_sender("nope@x") is None


async def test_entity_conflicts(store: SqliteStore) -> None:
    await add_entity(store, "A", ("a@x",))
    with pytest.raises(Conflict, match="entity named 'A'"):
        await add_entity(store, "A", ("other@x",))
    with pytest.raises(Conflict, match="sender 'a@x' belongs to another entity"):
        await add_entity(store, "B", ("b@x", "a@x"))
    # the failed entity was rolled back whole, senders included
    assert await store.entity_by_name("B") is None
    assert await store.entity_for_sender("b@x") is None


async def test_certificates(store: SqliteStore) -> None:
    a, b = await add_entity(store, "A", ("a@x",)), await add_entity(store, "B", ("b@x",))
    c = await store.add_certificate(a.id, b"PEM", fingerprint="ab" * 32, subject="CN=A",
                                    not_after=datetime(2030, 1, 1, 1, tzinfo=BRUSSELS))
    assert c.not_after == datetime(2030, 1, 1, tzinfo=UTC) - timedelta(hours=1)
    assert await store.certificates(a.id) == [c]
    assert await store.certificates(b.id) == []
    with pytest.raises(Conflict, match="registered to another entity"):
        await store.add_certificate(b.id, b"PEM", fingerprint="ab" * 32, subject="CN=A", not_after=T0)
    with pytest.raises(Conflict, match="already registered"):
        await store.add_certificate(a.id, b"PEM", fingerprint="ab" * 32, subject="CN=A", not_after=T0)
    with pytest.raises(NotFound):
        await store.add_certificate(999, b"PEM", fingerprint="cd" * 32, subject="CN=C", not_after=T0)
    c2 = await store.add_certificate(a.id, b"PEM2", fingerprint="ef" * 32, subject="CN=A2", not_after=T0)
    assert await store.certificates(a.id) == [c, c2]


async def test_accounts(store: SqliteStore) -> None:
    a, b = await add_entity(store, "A", ("a@x",)), await add_entity(store, "B", ("b@x",))
    grants = Grants(groups=frozenset({"g1", "g2"}), kinds=frozenset({Kind.NEWS}), manage_members=False)
    acc = await store.add_account(a.id, "jan.peeters", Role.MANDATED, grants)
    assert await store.account_by_name("jan.peeters") == acc
    assert (await store.account_by_name("jan.peeters")).grants == grants  # type: ignore[union-attr]
    assert await store.account_by_name("nobody") is None
    with pytest.raises(Conflict, match="account name is taken") as caught:
        await store.add_account(b.id, "jan.peeters", Role.COORDINATOR, Grants())
    assert "jan.peeters" not in str(caught.value)  # a person's name stays out of messages
    with pytest.raises(NotFound):
        await store.add_account(999, "someone", Role.COORDINATOR, Grants())
    coordinator = await store.add_account(b.id, "coord", Role.COORDINATOR, Grants())
    assert (await store.account_by_name("coord")) == coordinator


async def test_tokens(store: SqliteStore) -> None:
    e = await add_entity(store)
    acc = await store.add_account(e.id, "api", Role.COORDINATOR, Grants())
    token_id = await store.add_token(acc.id, "h1", created_at=T0)
    assert isinstance(token_id, int)
    assert await store.account_for_token("h1") == (acc, e)
    assert await store.account_for_token("h2") is None
    with pytest.raises(Conflict):
        await store.add_token(acc.id, "h1", created_at=T0)
    with pytest.raises(NotFound):
        await store.add_token(999, "h3", created_at=T0)
    assert await store.revoke_token("h1", revoked_at=T0) is True
    assert await store.account_for_token("h1") is None
    assert await store.revoke_token("h1", revoked_at=T0) is False
    assert await store.revoke_token("unknown", revoked_at=T0) is False


# --- alerts

async def test_insert_find_alert(store: SqliteStore) -> None:
    e = await add_entity(store)
    acc = await store.add_account(e.id, "api", Role.COORDINATOR, Grants())
    sent = datetime(2024, 5, 1, 12, 0, tzinfo=BRUSSELS)
    new = new_alert(1, sent=sent, expires=sent + timedelta(hours=2))
    new = NewAlert(**{**{f: getattr(new, f) for f in NewAlert.__dataclass_fields__},
                      "entity_id": e.id, "account_id": acc.id})
    stored = await store.insert_alert(new)
    assert stored.state is AlertState.ACTIVE and stored.sent == "2024-05-01T12:00:00+02:00"
    assert stored.received == new.received and stored.signed == new.signed
    assert await store.alert(stored.id) == stored
    assert await store.alert(stored.id + 1) is None
    # the same instant, written in UTC, finds it
    assert await store.find_alert("plp@zone.example", "ID-1", T0) == stored
    found = await store.find_alert("plp@zone.example", "ID-1", sent.astimezone(timezone(timedelta(hours=-5))))
    assert found == stored and found.received_at.tzinfo == UTC  # type: ignore[union-attr]
    assert await store.find_alert("plp@zone.example", "ID-1", T0 + timedelta(seconds=1)) is None


async def test_alert_key_conflict_across_offsets(store: SqliteStore) -> None:
    await store.insert_alert(new_alert(1, sent=T0))
    with pytest.raises(Conflict, match="alert plp@zone.example,ID-1,.* exists"):
        await store.insert_alert(new_alert(1, sent=T0.astimezone(BRUSSELS)))
    # another sender or identifier is another key
    await store.insert_alert(new_alert(1, sent=T0, sender="other@x"))
    await store.insert_alert(new_alert(2, sent=T0))


async def test_alert_with_unknown_entity_is_not_found(store: SqliteStore) -> None:
    new = new_alert(1)
    new = NewAlert(**{**{f: getattr(new, f) for f in NewAlert.__dataclass_fields__}, "entity_id": 42})
    with pytest.raises(NotFound):
        await store.insert_alert(new)


async def test_update_and_cancel_in_one_transaction(store: SqliteStore) -> None:
    first = await store.insert_alert(new_alert(1))
    update = await store.insert_alert(new_alert(2, msg_type="Update"), references=[first.id, first.id],
                                      supersede=[first.id])
    old = await store.alert(first.id)
    assert old is not None and old.state is AlertState.UPDATED and old.superseded_by == update.id
    cancel = await store.insert_alert(new_alert(3, msg_type="Cancel"), references=[first.id, update.id],
                                      cancel=[update.id])
    assert (await store.alert(update.id)).state is AlertState.CANCELLED  # type: ignore[union-attr]
    with sqlite3.connect(store.path) as raw:
        links = raw.execute("SELECT alert_id, referenced_id FROM alert_links ORDER BY 1, 2").fetchall()
    assert links == [(update.id, first.id), (cancel.id, first.id), (cancel.id, update.id)]


async def test_failed_update_leaves_nothing_behind(store: SqliteStore) -> None:
    first = await store.insert_alert(new_alert(1))
    with pytest.raises(NotFound, match="an alert it updates does not exist"):
        await store.insert_alert(new_alert(2), references=[first.id], supersede=[first.id, 999])
    with pytest.raises(NotFound, match="referenced alert does not exist"):
        await store.insert_alert(new_alert(3), references=[999], cancel=[first.id])
    with pytest.raises(NotFound, match="an alert it cancels does not exist"):
        await store.insert_alert(new_alert(4), cancel=[999])
    assert await store.alert(first.id) == first  # neither superseded nor cancelled
    assert [a.id for a in await store.list_alerts()] == [first.id]
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM alert_links").fetchone()[0] == 0


async def test_set_state(store: SqliteStore) -> None:
    a = await store.insert_alert(new_alert(1))
    await store.set_state(a.id, AlertState.CANCELLED)
    assert (await store.alert(a.id)).state is AlertState.CANCELLED  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await store.set_state(999, AlertState.EXPIRED)


async def test_expire_alerts(store: SqliteStore) -> None:
    now = T0 + timedelta(hours=1)
    past = await store.insert_alert(new_alert(1, expires=now - timedelta(seconds=1)))
    exact = await store.insert_alert(new_alert(2, expires=now.astimezone(BRUSSELS)))
    future = await store.insert_alert(new_alert(3, expires=now + timedelta(seconds=1)))
    never = await store.insert_alert(new_alert(4))
    cancelled = await store.insert_alert(new_alert(5, expires=now - timedelta(hours=1)))
    await store.set_state(cancelled.id, AlertState.CANCELLED)
    assert await store.expire_alerts(now) == [past.id, exact.id]
    assert await store.expire_alerts(now) == []
    states = {a.id: a.state for a in await store.list_alerts()}
    assert states == {past.id: AlertState.EXPIRED, exact.id: AlertState.EXPIRED,
                      future.id: AlertState.ACTIVE, never.id: AlertState.ACTIVE,
                      cancelled.id: AlertState.CANCELLED}
    assert await store.expire_alerts(now + timedelta(days=1)) == [future.id]


async def test_list_alerts_filters_and_paging(store: SqliteStore) -> None:
    ids = [(await store.insert_alert(new_alert(n))).id for n in range(10)]
    exercise = await store.insert_alert(new_alert(10, status="Exercise"))
    private = await store.insert_alert(new_alert(11, scope="Private"))
    other = await store.insert_alert(new_alert(12, sender="other@x"))
    everything = await store.list_alerts()
    assert [a.id for a in everything] == [other.id, private.id, exercise.id, *reversed(ids)]
    page1 = await store.list_alerts(limit=5)
    page2 = await store.list_alerts(limit=5, before_id=page1[-1].id)
    page3 = await store.list_alerts(limit=5, before_id=page2[-1].id)
    assert [a.id for a in page1 + page2 + page3] == [a.id for a in everything]
    assert await store.list_alerts(limit=0) == []
    assert [a.id for a in await store.list_alerts(status="Exercise")] == [exercise.id]
    assert [a.id for a in await store.list_alerts(sender="other@x")] == [other.id]
    public = await store.list_alerts(public_only=True)
    assert exercise.id not in {a.id for a in public} and private.id not in {a.id for a in public}
    assert len(public) == 11
    since = await store.list_alerts(since=(T0 + timedelta(minutes=8)).astimezone(BRUSSELS), limit=3)
    assert [a.id for a in since] == [other.id, private.id, exercise.id]
    assert [a.id for a in await store.list_alerts(since=T0 + timedelta(minutes=8), public_only=True,
                                                  sender="plp@zone.example")] == [ids[9], ids[8]]


# --- audit

async def test_audit_is_append_only(store: SqliteStore) -> None:
    await store.audit("admin", "entity.add", "PLP Gent", "ok", at=T0)
    await store.audit("account:api", "cap.post", "s,i,t", "refused:signature", '{"code": 1}',
                      at=T0.astimezone(BRUSSELS))
    entries = await store.audit_entries()
    assert [(e.actor, e.action, e.outcome, e.detail) for e in entries] == [
        ("account:api", "cap.post", "refused:signature", '{"code": 1}'),
        ("admin", "entity.add", "ok", "{}"),
    ]
    assert entries[0].at == T0 and entries[0].at.tzinfo == UTC
    assert len(await store.audit_entries(limit=1)) == 1
    with sqlite3.connect(store.path) as raw:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE audit SET outcome = 'ok'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM audit")
    assert len(await store.audit_entries()) == 2


# --- group commit

async def test_many_concurrent_inserts_are_all_stored(store: SqliteStore) -> None:
    stored = await asyncio.gather(*(store.insert_alert(new_alert(n)) for n in range(200)))
    assert len({a.id for a in stored}) == 200
    listed = await store.list_alerts(limit=1000)
    assert sorted(a.id for a in listed) == sorted(a.id for a in stored)
    assert {a.identifier for a in listed} == {f"ID-{n}" for n in range(200)}


async def test_a_conflict_does_not_fail_its_batch(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path, linger=0.01)  # make sure all land in one batch
    await s.open()
    try:
        existing = await s.insert_alert(new_alert(0))
        calls = [
            s.insert_alert(new_alert(1)),
            s.insert_alert(new_alert(0)),  # the key exists
            s.audit("admin", "x", "y", "ok", at=T0),
            s.insert_alert(new_alert(2), supersede=[existing.id, 999]),  # a savepoint job that fails
            s.insert_alert(new_alert(3), references=[existing.id]),
            s.insert_alert(new_alert(1)),  # the same key as the first call of the batch
            s.insert_alert(new_alert(4)),
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results[1], Conflict) and isinstance(results[5], Conflict)
        assert isinstance(results[3], NotFound)
        assert results[2] is None
        ok = [r for i, r in enumerate(results) if i in (0, 4, 6)]
        for r in ok:
            assert not isinstance(r, BaseException)
            assert await s.alert(r.id) == r  # type: ignore[union-attr]
        assert (await s.alert(existing.id)).state is AlertState.ACTIVE  # type: ignore[union-attr]
        assert len(await s.list_alerts()) == 4
        assert len(await s.audit_entries()) == 1
    finally:
        await s.close()


async def test_close_flushes_queued_writes(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path, linger=0.01)
    await s.open()
    tasks = [asyncio.create_task(s.insert_alert(new_alert(n))) for n in range(20)]
    await asyncio.sleep(0)  # let them queue
    await s.close()
    stored = [await t for t in tasks]
    await s.open()
    try:
        assert len(await s.list_alerts()) == len(stored) == 20
    finally:
        await s.close()


async def test_a_cancelled_caller_is_skipped(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path, linger=0.02)
    await s.open()
    try:
        first = asyncio.create_task(s.insert_alert(new_alert(1)))
        second = asyncio.create_task(s.insert_alert(new_alert(2)))
        await asyncio.sleep(0)
        second.cancel()
        assert (await first).identifier == "ID-1"
        with pytest.raises(asyncio.CancelledError):
            await second
        assert [a.identifier for a in await s.list_alerts()] == ["ID-1"]
    finally:
        await s.close()
