"""Push to partners, the pure part: subscriptions, what a delivery is, when to retry, the HMAC.

A partner *subscription* is a callback URL, the feeds' filters (``hub.outputs.feed``) and a
shared secret. On each change of a public alert (a new Alert, an Update, a Cancel) that its
filters match, the hub POSTs the hub-signed CAP document to the URL, signed with::

    X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the exact body under the shared secret>

(the header and form WebSub and GitHub use), with ``Content-Type: application/cap+xml``,
``X-CAP-Hub-Event: new|update|cancel`` and ``X-CAP-Hub-Delivery: <delivery id>`` (the same on
every retry of one delivery, so a partner can drop a repeat). A 2xx answer delivers it; any
other answer, a timeout or a refused connection is retried with exponential back-off until
the retry period runs out, after which the delivery is recorded as failed.

No I/O here: ``hub.services.push`` does the store, the broker and HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit

from hub.cap.model import Alert, MsgType, Scope, Status
from hub.domain import Account, Role
from hub.outputs.feed import FeedFilter, FilterError, parse_filters

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-CAP-Hub-Event"
DELIVERY_HEADER = "X-CAP-Hub-Delivery"
MIN_SECRET = 16  # characters: a shared secret shorter than this is guessable
FILTER_PARAMS = ("lang", "severity", "urgency", "event", "geocode", "bbox", "point")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$")


class Event(StrEnum):
    """What changed, as the partner is told (``X-CAP-Hub-Event``)."""

    NEW = "new"
    UPDATE = "update"
    CANCEL = "cancel"


class PushState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class SubscriptionError(ValueError):
    """A subscription that cannot be registered; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    name: str
    url: str
    secret: str  # never logged, never shown after registration
    filters: str  # the canonical query string of the filters ("" = every public alert)
    entity_id: int | None  # the entity that registered it by API; None: the administrator
    created_at: datetime

    def feed_filter(self) -> FeedFilter:
        return parse_filters(dict(parse_qsl(self.filters)))


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    """What the admin list shows beside a subscription."""

    delivered: int = 0
    pending: int = 0
    failed: int = 0
    last_failure: str | None = None  # the last error of the latest failed delivery
    last_failure_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PushDelivery:
    id: int
    subscription_id: int
    alert_id: int
    event: Event
    state: PushState
    attempts: int
    last_error: str | None
    created_at: datetime


def check_subscription(name: str, url: str, secret: str, filters: Mapping[str, str], *,
                       allow_private: bool = False) -> str:
    """Check what a partner registers; returns the canonical filter query string.
    Raises :class:`SubscriptionError` (or :class:`FilterError`) naming the field.
    ``allow_private``: the callback may name a loopback or private address ([push])."""
    if not _NAME.match(name):
        raise SubscriptionError("name", f"{name!r}: 1-100 letters, digits, space, '.', '_', '@' or '-'")
    check_url(url, allow_private=allow_private)
    if len(secret) < MIN_SECRET:
        raise SubscriptionError("secret", f"at least {MIN_SECRET} characters")
    unknown = set(filters) - set(FILTER_PARAMS)
    if unknown:
        raise SubscriptionError(sorted(unknown)[0], f"not a filter (filters: {', '.join(FILTER_PARAMS)})")
    return urlencode(parse_filters(filters).query())


def check_url(url: str, *, allow_private: bool = False) -> None:
    """An http(s) URL with a host, no credentials; unless ``allow_private``, a host that is
    neither a non-public IP address nor a ``localhost`` name (what a name resolves to is
    checked again at each POST: ``hub.outputs.push_http``)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SubscriptionError("url", f"{url!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise SubscriptionError("url", f"{url!r}: an http or https URL")
    if not parts.hostname:
        raise SubscriptionError("url", f"{url!r} names no host")
    if parts.username or parts.password:
        raise SubscriptionError("url", "no credentials in the URL: the HMAC signature authenticates")
    if port == 0:
        raise SubscriptionError("url", f"{url!r}: port 0")
    if allow_private:
        return
    host = parts.hostname.rstrip(".").lower()
    why = f"{host} is a local name" if host == "localhost" or host.endswith(".localhost") else \
        address_refusal(host)
    if why is not None:
        raise SubscriptionError("url", f"{url!r}: {why}; callbacks must reach a public address "
                                "(the setting [push] allow_private lifts this on a closed network)")


def address_refusal(address: str) -> str | None:
    """Why a callback may not go to this IP address (the hub's own machine, a private
    network, a cloud metadata service...), or None when it is a public address or not an IP
    address at all. Keeps a partner's registration from turning the hub into a way in."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    kinds = (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
             ("unspecified", ip.is_unspecified), ("multicast", ip.is_multicast),
             ("private", ip.is_private), ("reserved", ip.is_reserved))
    for kind, found in kinds:
        if found:
            return f"{address} is a {kind} address"
    return None if ip.is_global else f"{address} is not a public address"


def may_manage(account: Account) -> bool:
    """Only an entity's coordinators register partners for it (by API)."""
    return account.role is Role.COORDINATOR


def signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """What a partner does with the header (constant-time comparison)."""
    return hmac.compare_digest(signature(secret, body), header.strip())


def event_of(alert: Alert) -> Event | None:
    """The change an accepted message is, for partners; None for what partners are not sent
    (Acks, Errors, and anything not Public and Actual)."""
    if alert.scope is not Scope.PUBLIC or alert.status is not Status.ACTUAL:
        return None
    return {MsgType.ALERT: Event.NEW, MsgType.UPDATE: Event.UPDATE,
            MsgType.CANCEL: Event.CANCEL}.get(alert.msg_type)


def matches(subscription_filter: FeedFilter, alert: Alert, referenced: Sequence[Alert]) -> bool:
    """Whether a partner gets this change: the message meets the filters, or an alert it
    updates or cancels did (a Cancel usually has no info to filter on; a partner that got an
    alert must hear that it is cancelled or updated)."""
    if subscription_filter.match(alert) is not None:
        return True
    return any(subscription_filter.match(old) is not None for old in referenced)


def retry_delay(attempt: int, first: float, longest: float) -> float:
    """Seconds before try ``attempt + 1`` after ``attempt`` tries failed: first, 2x, 4x ...
    at most ``longest``."""
    return float(min(longest, first * 2 ** max(0, min(attempt - 1, 60))))


def give_up(created_at: datetime, now: datetime, delay: float, retry_for: float) -> bool:
    """True when the next try would come after the retry period."""
    return (now - created_at).total_seconds() + delay > retry_for


__all__ = [
    "DELIVERY_HEADER", "EVENT_HEADER", "SIGNATURE_HEADER", "Event", "FilterError", "PushDelivery",
    "PushState", "Subscription", "SubscriptionError", "SubscriptionStats", "check_subscription",
    "address_refusal", "check_url", "event_of", "give_up", "matches", "may_manage", "retry_delay",
    "signature", "verify_signature",
]
