"""The parsed alerts a channel worker is sending: each alert is read from the store and
parsed once, not once per batch, and forgotten oldest first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from hub.broker.base import Reject
from hub.cap.model import Alert
from hub.cap.parse import parse
from hub.domain import StoredAlert


class AlertSource(Protocol):
    async def alert(self, alert_id: int) -> StoredAlert | None: ...


class AlertCache:
    """Up to ``size`` parsed alerts. ``on_evict`` runs when one is forgotten, so that what a
    worker made from the alerts (texts, scripts) is forgotten with them."""

    def __init__(self, store: AlertSource, size: int = 64,
                 on_evict: Callable[[], None] | None = None) -> None:
        self._store = store
        self._size = size
        self._on_evict = on_evict
        self._alerts: dict[int, tuple[StoredAlert, Alert]] = {}
        self._loading: dict[int, asyncio.Future[tuple[StoredAlert, Alert]]] = {}

    async def get(self, alert_id: int) -> tuple[StoredAlert, Alert]:
        """The stored alert and its model; a :class:`Reject` when it is gone or no longer parses.
        Batches of a new campaign arrive together: the first reads and parses, the others
        wait for it (a read and a parse each, all at once, held up the first send)."""
        cached = self._alerts.get(alert_id)
        if cached is not None:
            return cached
        loading = self._loading.get(alert_id)
        if loading is None:
            loading = self._loading[alert_id] = asyncio.ensure_future(self._load(alert_id))
            loading.add_done_callback(self._loaded)
        return await asyncio.shield(loading)

    def _loaded(self, loading: asyncio.Future[tuple[StoredAlert, Alert]]) -> None:
        for alert_id, future in list(self._loading.items()):
            if future is loading:
                del self._loading[alert_id]
        if not loading.cancelled():
            loading.exception()  # each waiter raises it; seen here too, should none be left

    async def _load(self, alert_id: int) -> tuple[StoredAlert, Alert]:
        stored = await self._store.alert(alert_id)
        if stored is None:
            raise Reject(f"no alert {alert_id}")
        alert = parse(stored.received, max_bytes=len(stored.received) + 1).alert
        if alert is None:
            raise Reject(f"alert {alert_id} no longer parses")
        if len(self._alerts) >= self._size:
            self._alerts.pop(next(iter(self._alerts)))
            if self._on_evict is not None:
                self._on_evict()
        self._alerts[alert_id] = (stored, alert)
        return stored, alert
