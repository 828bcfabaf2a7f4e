"""Registering and removing partner subscriptions: the one path the admin CLI and the API share.

Checks are pure (``hub.partners.check_subscription``); this adds the store and the audit.
The administrator (``entity=None``) sees and removes every subscription; an entity's
coordinator, by API, only its entity's. Secrets are stored (the HMAC needs them) and never
shown again or logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from hub.errors import HubError
from hub.partners import Subscription, SubscriptionStats, check_subscription


class NoSuchSubscription(HubError):
    """Unknown, or another entity's."""


class SubscriptionStore(Protocol):
    async def add_subscription(self, name: str, url: str, secret: str, filters: str, *,
                               entity_id: int | None, at: datetime) -> Subscription: ...

    async def subscriptions(self, *, entity_id: int | None = None) -> list[Subscription]: ...

    async def subscription(self, subscription_id: int) -> Subscription | None: ...

    async def subscription_named(self, name: str) -> Subscription | None: ...

    async def remove_subscription(self, subscription_id: int, *, at: datetime) -> None: ...

    async def subscription_stats(self) -> dict[int, SubscriptionStats]: ...

    async def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "{}",
                    *, at: datetime) -> None: ...


async def add(store: SubscriptionStore, name: str, url: str, secret: str, filters: Mapping[str, str], *,
              entity_id: int | None, actor: str, allow_private: bool = False) -> Subscription:
    """Check and store a subscription. Raises ``SubscriptionError``/``FilterError`` (what is
    wrong) or ``Conflict`` (the name is taken). ``allow_private``: [push] allow_private."""
    query = check_subscription(name, url, secret, filters, allow_private=allow_private)
    now = datetime.now(UTC)
    found = await store.add_subscription(name, url, secret, query, entity_id=entity_id, at=now)
    await store.audit(actor, "subscription.add", f"subscription:{found.id}", "ok",
                      json.dumps({"filters": query}), at=now)
    return found


async def find(store: SubscriptionStore, key: str | int, *, entity_id: int | None) -> Subscription:
    """By id or name; ``entity_id`` None is the administrator, who sees all."""
    found = await store.subscription(key) if isinstance(key, int) else \
        await store.subscription_named(key) if not key.isdigit() else await store.subscription(int(key))
    if found is None or (entity_id is not None and found.entity_id != entity_id):
        raise NoSuchSubscription(f"no subscription {key!r}")
    return found


async def remove(store: SubscriptionStore, key: str | int, *, entity_id: int | None,
                 actor: str) -> Subscription:
    found = await find(store, key, entity_id=entity_id)
    now = datetime.now(UTC)
    await store.remove_subscription(found.id, at=now)
    await store.audit(actor, "subscription.remove", f"subscription:{found.id}", "ok", at=now)
    return found


def to_json(sub: Subscription, stats: SubscriptionStats | None = None) -> dict[str, object]:
    """A subscription as the API and ``--json`` show it: never its secret."""
    s = stats or SubscriptionStats()
    return {
        "id": sub.id, "name": sub.name, "url": sub.url, "filters": sub.filters,
        "createdAt": sub.created_at.isoformat(),
        "deliveries": {"delivered": s.delivered, "pending": s.pending, "failed": s.failed},
        "lastFailure": None if s.last_failure_at is None else {
            "at": s.last_failure_at.isoformat(), "error": s.last_failure},
    }
