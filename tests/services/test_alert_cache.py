"""The channel workers' cache of parsed alerts."""

from __future__ import annotations

import asyncio

import pytest

from hub.broker.base import Reject
from hub.domain import StoredAlert
from hub.services.alert_cache import AlertCache
from hub.wiring import Hub
from tests.services.test_router import cap, post

KEYS = dict[str, tuple[bytes, bytes]]


class CountingStore:
    def __init__(self, hub: Hub) -> None:
        self.hub, self.reads = hub, 0

    async def alert(self, alert_id: int) -> StoredAlert | None:
        self.reads += 1
        await asyncio.sleep(0.01)  # the read takes a while: the other batches arrive meanwhile
        return await self.hub.store.alert(alert_id)


async def test_batches_arriving_together_read_and_parse_the_alert_once(hub: Hub, keypairs: KEYS) -> None:
    alert_id = await post(hub, keypairs, cap("AC-1"))
    store = CountingStore(hub)
    cache = AlertCache(store)
    got = await asyncio.gather(*(cache.get(alert_id) for _ in range(20)))
    assert store.reads == 1 and all(g is got[0] for g in got)
    assert got[0][1].identifier == "AC-1"
    await cache.get(alert_id)
    assert store.reads == 1


async def test_a_missing_alert_is_rejected_for_every_waiter_and_read_again_later(hub: Hub) -> None:
    store = CountingStore(hub)
    cache = AlertCache(store)
    results = await asyncio.gather(*(cache.get(999) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, Reject) for r in results) and store.reads == 1
    with pytest.raises(Reject):
        await cache.get(999)
    assert store.reads == 2  # a failure is not cached
