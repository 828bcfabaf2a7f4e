"""Partner subscriptions and push deliveries in the SQLite store (migration 6), on a real file."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.partners import PushState
from hub.store import Conflict, NotFound
from hub.store.sqlite import SqliteStore
from tests.store.test_sqlite import T0, new_alert


async def test_subscriptions_are_kept_named_once_and_removed(store: SqliteStore) -> None:
    a = await store.add_subscription("VRT", "https://vrt.example.be/h", "s" * 16, "lang=nl", entity_id=None,
                                     at=T0)
    b = await store.add_subscription("RTBF", "https://rtbf.example.be/h", "t" * 16, "", entity_id=None, at=T0)
    assert [s.name for s in await store.subscriptions()] == ["VRT", "RTBF"]
    assert await store.subscription(a.id) == a
    assert await store.subscription_named("RTBF") == b
    with pytest.raises(Conflict, match="named 'VRT' exists"):
        await store.add_subscription("VRT", "https://x.example.be/", "u" * 16, "", entity_id=None, at=T0)
    await store.remove_subscription(a.id, at=T0)
    with pytest.raises(NotFound):
        await store.remove_subscription(a.id, at=T0)
    assert [s.name for s in await store.subscriptions()] == ["RTBF"]


async def test_one_delivery_per_subscription_and_alert_handed_over_until_published(
        store: SqliteStore) -> None:
    alert = await store.insert_alert(new_alert(1))
    sub = await store.add_subscription("p", "https://p.example.be/", "s" * 16, "", entity_id=None, at=T0)
    other = await store.add_subscription("q", "https://q.example.be/", "s" * 16, "", entity_id=None, at=T0)
    [first] = await store.open_pushes(alert.id, "new", [sub.id], at=T0)
    # The same event again, before its message was handed over: the same row, to hand over.
    assert await store.open_pushes(alert.id, "new", [sub.id], at=T0) == [first]
    await store.mark_published([first], at=T0)
    assert await store.open_pushes(alert.id, "new", [sub.id], at=T0) == []
    [second] = await store.open_pushes(alert.id, "new", [sub.id, other.id], at=T0)
    assert second != first
    assert await store.pending_pushes(published_before=None) == [second]
    assert await store.pending_pushes(published_before=T0 + timedelta(seconds=1)) == [first, second]


async def test_outcomes_attempts_due_time_and_stats(store: SqliteStore) -> None:
    alert = await store.insert_alert(new_alert(1))
    sub = await store.add_subscription("p", "https://p.example.be/", "s" * 16, "", entity_id=None, at=T0)
    [d] = await store.open_pushes(alert.id, "new", [sub.id], at=T0)
    await store.mark_published([d], at=T0)
    await store.push_outcome(d, PushState.PENDING, error="HTTP 503", at=T0, due=T0 + timedelta(minutes=30))
    # Waiting in a retry queue until T0 + 30 min: not overdue 10 minutes after T0.
    assert await store.pending_pushes(published_before=T0 + timedelta(minutes=10)) == []
    assert await store.pending_pushes(published_before=T0 + timedelta(minutes=31)) == [d]
    await store.push_outcome(d, PushState.FAILED, error="HTTP 500", at=T0 + timedelta(hours=1))
    await store.push_outcome(d, PushState.DELIVERED, error=None, at=T0 + timedelta(hours=2))  # ended: kept
    row = await store.push_delivery(d)
    assert row is not None and row.state is PushState.FAILED and row.attempts == 2
    assert row.last_error == "HTTP 500"
    stats = (await store.subscription_stats())[sub.id]
    assert (stats.delivered, stats.pending, stats.failed) == (0, 0, 1)
    assert stats.last_failure == "HTTP 500" and stats.last_failure_at == T0 + timedelta(hours=1)


async def test_removing_a_subscription_fails_what_it_was_owed(store: SqliteStore) -> None:
    alert = await store.insert_alert(new_alert(1))
    sub = await store.add_subscription("p", "https://p.example.be/", "s" * 16, "", entity_id=None, at=T0)
    [d] = await store.open_pushes(alert.id, "new", [sub.id], at=T0)
    await store.remove_subscription(sub.id, at=T0)
    row = await store.push_delivery(d)
    assert row is not None and row.state is PushState.FAILED and row.last_error == "subscription removed"
    assert await store.pending_pushes(published_before=T0 + timedelta(days=1)) == []
