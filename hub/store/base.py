"""The store seam: what the services need persisted, as one Protocol.

The store is the source of truth (the broker only carries events). Its one implementation
today is SQLite in WAL mode (``hub.store.sqlite``). Nothing here knows CAP rules: callers
pass parsed fields in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hub.domain import (
    Account,
    AlertState,
    Campaign,
    CampaignState,
    Certificate,
    Channel,
    DeliveryRow,
    DeliveryState,
    Entity,
    EntityType,
    Grants,
    Group,
    Kind,
    Member,
    MemberData,
    Role,
    StoredAlert,
)
from hub.errors import StoreError

# One SMS part's message id: (delivery id, message id, part, parts), or with the state and
# reason of its receipt when that came first.
MessageRow = tuple[int, str, int, int] | tuple[int, str, int, int, str | None, str | None]


class Conflict(StoreError):
    """A unique thing already exists (an entity name, a sender of another entity, an alert
    key, an account name)."""


class NotFound(StoreError):
    """The thing asked for does not exist."""


@dataclass(frozen=True, slots=True)
class NewAlert:
    """What ingest hands the store for one accepted message."""

    sender: str
    identifier: str
    sent: str  # exactly as in the message
    sent_utc: datetime
    status: str
    msg_type: str
    scope: str
    expires: datetime | None
    references: str | None
    areas_json: str  # the <area> blocks as JSON, for queries by area
    entity_id: int | None
    account_id: int | None
    received: bytes
    signed: bytes
    answer: bytes
    digest: str
    received_at: datetime
    state: AlertState = AlertState.ACTIVE
    simulation: bool = False  # of the simulation environment: never in the public feeds


@dataclass(frozen=True, slots=True)
class NewCertificate:
    pem: bytes
    fingerprint: str  # SHA-256 of the DER, hex
    subject: str
    not_after: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str  # "account:NAME", "admin" (the CLI), "anonymous"
    action: str  # e.g. "cap.post", "entity.add", "token.new"
    target: str  # what it acted on: an alert key, an entity name; never personal data
    outcome: str  # "ok", "refused:<reason>"
    detail: str  # JSON, never personal data or secrets


class Store(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema to the current version (migrations)."""

    async def close(self) -> None: ...

    async def healthy(self) -> bool: ...

    # --- entities, certificates, accounts, tokens
    async def add_entity(
        self, name: str, type: EntityType, senders: Sequence[str], *,
        signature_required: bool, profile: str, territory: str | None,
        certificates: Sequence[NewCertificate] = (), simulation: bool = False,
    ) -> Entity:
        """Store the entity with its senders and certificates in one transaction. Raises
        ``Conflict`` when the name exists, a sender belongs to another entity, or a
        certificate is registered to another entity; then nothing is stored."""

    async def entity(self, entity_id: int) -> Entity | None: ...

    async def entity_by_name(self, name: str) -> Entity | None: ...

    async def entity_for_sender(self, sender: str) -> Entity | None: ...

    async def set_entity_simulation(self, entity_id: int, simulation: bool) -> None:
        """Put an entity in or out of the simulation environment, for what it sends from now."""

    async def add_certificate(
        self, entity_id: int, pem: bytes, *, fingerprint: str, subject: str, not_after: datetime
    ) -> Certificate:
        """Raises ``Conflict`` when the same certificate is registered to another entity."""

    async def certificates(self, entity_id: int) -> list[Certificate]: ...

    async def add_account(self, entity_id: int, name: str, role: Role, grants: Grants) -> Account:
        """Raises ``Conflict`` when the name is taken anywhere in the hub."""

    async def account_by_name(self, name: str) -> Account | None: ...

    async def add_token(self, account_id: int, token_hash: str, *, created_at: datetime) -> int: ...

    async def revoke_token(self, token_hash: str, *, revoked_at: datetime) -> bool: ...

    async def account_for_token(self, token_hash: str) -> tuple[Account, Entity] | None:
        """The account and entity of a token that exists and is not revoked."""

    # --- alerts
    async def find_alert(self, sender: str, identifier: str, sent_utc: datetime) -> StoredAlert | None:
        """The message with this key; ``sent`` is compared as an instant, so that a reference
        written with another offset still finds it."""

    async def insert_alert(
        self, alert: NewAlert, *, references: Sequence[int] = (),
        supersede: Sequence[int] = (), cancel: Sequence[int] = (),
    ) -> StoredAlert:
        """Store one message, link it to the ids it references, mark ``supersede`` as updated
        by it and ``cancel`` as cancelled: all in one transaction. Raises ``Conflict`` if its
        key exists."""

    async def alert(self, alert_id: int) -> StoredAlert | None: ...

    async def list_alerts(
        self, *, status: str | None = None, since: datetime | None = None,
        sender: str | None = None, public_only: bool = False, limit: int = 100,
        before_id: int | None = None, identifier: str | None = None,
    ) -> list[StoredAlert]:
        """Newest first; ``before_id`` pages on. ``public_only``: scope Public, status Actual."""

    async def active_alerts(self, *, statuses: Sequence[str], now: datetime, scope: str = "Public",
                            limit: int = 10_000) -> list[StoredAlert]:
        """Alerts in state active and not expired at ``now``, of ``scope`` and one of
        ``statuses``; newest sent first (what the feeds show)."""

    async def active_mark(self, now: datetime) -> tuple[int, int]:
        """(count, sum of ids) of the alerts active and unexpired at ``now``: changes whenever
        that set does, so a cache of active alerts can tell when to rebuild."""

    async def expire_alerts(self, now: datetime) -> list[int]:
        """Mark active alerts whose expires has passed as expired; returns their ids."""

    async def set_state(self, alert_id: int, state: AlertState) -> None: ...

    async def set_signed(self, alert_id: int, signed: bytes) -> None:
        """Store the hub-signed copy of an alert (made when first emitted, see ingest)."""

    # --- audit (append-only)
    async def audit(self, actor: str, action: str, target: str, outcome: str, detail: str = "{}",
                    *, at: datetime) -> None: ...

    async def audit_entries(self, *, limit: int = 100) -> list[AuditEntry]: ...


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: tuple[int, ...]  # member ids
    updated: tuple[int, ...]


class MemberStore(Protocol):
    """Groups and the personal data of their members. Only this part of the store holds
    personal data; erasing a member removes it from everywhere it appears."""

    async def add_group(self, group: Group) -> Group:
        """Stores ``group`` (its ``id`` is ignored); raises ``Conflict`` if the gid exists."""

    async def update_group(self, group: Group) -> Group: ...

    async def delete_group(self, gid: str) -> int | None:
        """Delete the group; members left in no other group go with it (the hub keeps no
        one it cannot reach). Returns how many members went, or None for no such group."""

    async def group(self, gid: str) -> Group | None: ...

    async def groups(self, entity_id: int) -> list[Group]: ...

    async def members(self, gid: str, *, search: str | None = None, limit: int = 100,
                      after_id: int | None = None) -> list[Member]:
        """Members of a group by id; ``search`` matches name, contact points or external id."""

    async def member(self, member_id: int) -> Member | None: ...

    async def member_data(self, member_ids: Sequence[int]) -> dict[int, MemberData]:
        """The data of many members at once (what an import compares its rows with)."""

    async def find_members(self, entity_id: int, *, external_ids: Sequence[str] = (),
                           contact_points: Sequence[str] = ()) -> dict[str, int]:
        """Existing members of the entity by external id and by contact point
        (``{key: member_id}``), so an import can tell an update from a creation."""

    async def save_members(self, gid: str, creates: Sequence[MemberData],
                           updates: Sequence[tuple[int, MemberData]],
                           join: Sequence[int] = ()) -> ImportResult:
        """Create and update members and put them all in the group, with ``join`` (existing
        members of the entity whose data do not change): one transaction, so either
        everything is stored or, on any error, nothing."""

    async def remove_member(self, gid: str, member_id: int) -> bool:
        """Take a member out of a group. A member left in no group is deleted with its data:
        the hub keeps no personal data it has no group for."""

    async def erase_member(self, member_id: int) -> bool:
        """Remove every personal datum of the member, everywhere."""


MemberRow = tuple[int, str, float | None, float | None, str | None]


class CampaignStore(Protocol):
    """Campaigns (one per alert that owes deliveries) and their deliveries."""

    async def open_campaign(self, alert_id: int, entity_id: int | None, kind: Kind, *,
                            simulation: bool, at: datetime) -> tuple[Campaign, bool]:
        """The campaign of the alert, created if there is none; True when just created."""

    async def campaign(self, campaign_id: int) -> Campaign | None: ...

    async def campaign_for_alert(self, alert_id: int) -> Campaign | None: ...

    async def campaigns(self, *, alert_id: int | None = None, entity_id: int | None = None,
                        limit: int = 100, before_id: int | None = None) -> list[Campaign]: ...

    async def add_deliveries(self, campaign_id: int,
                             deliveries: Sequence[tuple[int | None, Channel, str, str, int]],
                             *, at: datetime) -> list[DeliveryRow]:
        """Store (member, channel, address, language, info) rows in one transaction; rows the
        campaign already has are kept as they are. Returns the batch's rows."""

    async def set_plan(self, campaign_id: int, plan: str, state: CampaignState, *, at: datetime) -> None: ...

    async def mark_queued(self, delivery_ids: Sequence[int], *, at: datetime) -> None: ...

    async def unsent_deliveries(self, *, published_before: datetime, limit: int = 10_000,
                                after_id: int = 0) -> list[DeliveryRow]: ...

    async def cancel_campaigns(self, alert_ids: Sequence[int], *, at: datetime) -> list[int]: ...

    async def delivery_states(self, campaign_id: int) -> dict[tuple[str, str], int]: ...

    async def claim(self, delivery_ids: Sequence[int], *, at: datetime,
                    stale_before: datetime | None = None) -> tuple[dict[int, int], list[int]]:
        """Move these deliveries from pending/queued (or sending, claimed before
        ``stale_before``) to sending: the marker a worker writes before sending. Returns the
        ids it moved with their attempt counts, so nothing is sent twice, and the ids still
        sending under a more recent claim."""

    async def settle(self, submitted: Sequence[int], retries: Sequence[tuple[int, str]], *,
                     at: datetime,
                     outcomes: Sequence[tuple[int, DeliveryState, str | None, int, float]] = (),
                     message_ids: Sequence[MessageRow] = (),
                     superseded: Sequence[tuple[int, str, int, int]] = (),
                     awaiting: Sequence[tuple[int, int, float]] = (),
                     resent: Collection[int] = ()) -> None:
        """The provider answered, in one transaction: sending → submitted (``submitted``;
        ``awaiting``: SMS awaiting receipts as (delivery, parts, cost), ``message_ids`` as in
        :meth:`add_message_ids`, with the state of parts whose receipt came), → a final
        outcome, or → queued (with the reason) for those retried after a transient failure.
        ``superseded``: ids of the parts of an SMS that failed half-way, whose receipts must
        not count; ``resent``: deliveries whose earlier attempts' parts are billed with this
        one's (see :mod:`hub.store.sql_receipts`)."""

    async def record_outcomes(self, rows: Sequence[tuple[int, DeliveryState, str | None, int, float]],
                              *, at: datetime) -> list[int]:
        """Store (delivery, state, reason, parts, cost_eur) outcomes; a delivery already in a
        final state keeps it. Returns the ids of the campaigns touched."""

    async def finish_campaigns(self, campaign_ids: Sequence[int], *, at: datetime) -> list[int]:
        """Mark done the sending campaigns none of whose deliveries is still owed
        (pending, queued, sending or submitted); returns those marked."""

    async def campaign_cost(self, campaign_id: int) -> float:
        """What the campaign's deliveries cost so far, in euro."""

    async def add_message_ids(self, rows: Sequence[tuple[int, str, int, int]]) -> None:
        """Index the provider's message ids: (delivery id, message id, part, parts). An id
        already known (its receipt came first) is kept as it is."""

    async def message_receipts(
        self, rows: Sequence[tuple[Sequence[str], int | None, int, int, bool, str | None]], *,
        at: datetime | None = None,
    ) -> list[tuple[int, bool, str | None, int]]:
        """Record final receipts: (the message id's forms, canonical first; the delivery id
        when already known, else None; part; parts; delivered; reason). An id found in
        neither the index nor a known delivery is ignored. Returns, for each delivery whose
        every part now has its receipt, (delivery id, all delivered, first failure's reason,
        parts); those already submitted are ended in the same write."""

    async def directory_rows(self, gids: Sequence[str]) -> tuple[
            list[MemberRow], list[tuple[int, str, str]], list[tuple[int, str]], list[tuple[str, int]]]:
        """Members, phones, e-mails and memberships of these groups, for the router."""
