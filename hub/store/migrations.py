"""The store's schema, as numbered migrations applied in order.

Each migration is ``(version, SQL)``. ``apply`` runs the ones newer than the database's
version inside one ``BEGIN IMMEDIATE`` transaction (so two processes opening the same file
do not both migrate) and records each in ``schema_version``. Never edit a migration that
has shipped: add a new one.

Times are UTC ISO text of fixed width (``2024-05-01T10:00:00.000000Z``, see
``hub.store.sqlite.utc_text``), so that text order is time order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import aiosqlite

from hub.errors import StoreError

V1 = """
CREATE TABLE entities (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type INTEGER NOT NULL CHECK (type IN (1, 2)),
    signature_required INTEGER NOT NULL DEFAULT 1,
    profile TEXT NOT NULL DEFAULT '',
    territory TEXT
);

-- A CAP <sender> belongs to exactly one entity.
CREATE TABLE senders (
    sender TEXT PRIMARY KEY,
    entity_id INTEGER NOT NULL REFERENCES entities (id)
);
CREATE INDEX senders_entity ON senders (entity_id);

CREATE TABLE certificates (
    id INTEGER PRIMARY KEY,
    entity_id INTEGER NOT NULL REFERENCES entities (id),
    fingerprint TEXT NOT NULL,
    pem BLOB NOT NULL,
    subject TEXT NOT NULL,
    not_after TEXT NOT NULL,
    UNIQUE (entity_id, fingerprint)
);
CREATE INDEX certificates_fingerprint ON certificates (fingerprint);

-- One certificate vouches for one entity only.
CREATE TRIGGER certificates_one_entity BEFORE INSERT ON certificates
WHEN EXISTS (SELECT 1 FROM certificates
             WHERE fingerprint = NEW.fingerprint AND entity_id != NEW.entity_id)
BEGIN
    SELECT RAISE(ABORT, 'certificate registered to another entity');
END;

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    entity_id INTEGER NOT NULL REFERENCES entities (id),
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    grants TEXT NOT NULL
);
CREATE INDEX accounts_entity ON accounts (entity_id);

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX tokens_account ON tokens (account_id);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    sender TEXT NOT NULL,
    identifier TEXT NOT NULL,
    sent TEXT NOT NULL,
    sent_utc TEXT NOT NULL,
    status TEXT NOT NULL,
    msg_type TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_utc TEXT,
    refs TEXT,
    areas_json TEXT NOT NULL DEFAULT '[]',
    entity_id INTEGER REFERENCES entities (id),
    account_id INTEGER REFERENCES accounts (id),
    state TEXT NOT NULL,
    superseded_by INTEGER REFERENCES alerts (id),
    received BLOB NOT NULL,
    signed BLOB NOT NULL,
    answer BLOB NOT NULL,
    digest TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (sender, identifier, sent_utc)
);
CREATE INDEX alerts_sender ON alerts (sender, id);
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_sent ON alerts (sent_utc);
CREATE INDEX alerts_public ON alerts (id) WHERE scope = 'Public' AND status = 'Actual';
CREATE INDEX alerts_active_expiry ON alerts (expires_utc) WHERE state = 'active';
CREATE INDEX alerts_superseded_by ON alerts (superseded_by);

CREATE TABLE alert_links (
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    referenced_id INTEGER NOT NULL REFERENCES alerts (id),
    PRIMARY KEY (alert_id, referenced_id)
) WITHOUT ROWID;
CREATE INDEX alert_links_referenced ON alert_links (referenced_id);

-- Append-only: rows are added, never changed or removed.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit is append-only');
END;
"""

# PLP groups and the personal data of their members. Erasing a member is one DELETE FROM
# members: phones, e-mails and group links go with it (ON DELETE CASCADE). Member ids are
# never reused (AUTOINCREMENT), so an anonymous reference kept elsewhere never names
# another person later.
V2 = """
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    gid TEXT NOT NULL UNIQUE,
    entity_id INTEGER NOT NULL REFERENCES entities (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    audience TEXT NOT NULL DEFAULT '[]',
    territory TEXT,
    languages TEXT NOT NULL DEFAULT '[]',
    channels TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX groups_entity ON groups (entity_id);

CREATE TABLE members (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_id INTEGER NOT NULL REFERENCES entities (id),
    external_id TEXT,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    address TEXT,
    lat REAL,
    lon REAL,
    channels TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX members_entity ON members (entity_id);
-- The coordinator's own id is unique within the entity, when given.
CREATE UNIQUE INDEX members_external_id ON members (entity_id, external_id)
    WHERE external_id IS NOT NULL;

-- Numbers in E.164; a number appears once per member (rowid order is the member's order).
CREATE TABLE phones (
    member_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    number TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (member_id, number)
);
CREATE INDEX phones_number ON phones (number);

CREATE TABLE emails (
    member_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    UNIQUE (member_id, address)
);
CREATE INDEX emails_address ON emails (address);

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX group_members_member ON group_members (member_id);
"""

V3 = """
-- One campaign per alert that owes deliveries (an Alert or an Update).
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL UNIQUE REFERENCES alerts (id),
    entity_id INTEGER REFERENCES entities (id),
    kind TEXT NOT NULL,
    simulation INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    plan TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One row per (contact point, channel) a campaign owes. After a member is erased the row
-- stays as an anonymous reference: no member id, no address.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    member_id INTEGER,
    channel TEXT NOT NULL,
    address TEXT,
    language TEXT NOT NULL,
    info INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    published_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX deliveries_once ON deliveries (campaign_id, channel, address)
    WHERE address IS NOT NULL;
-- No index on state alone: every state change would update it, and only the start-up sweep
-- (unsent_deliveries) asks by state, walking the table in id order.
CREATE INDEX deliveries_campaign ON deliveries (campaign_id, state);
CREATE INDEX deliveries_member ON deliveries (member_id);

CREATE TRIGGER members_erased AFTER DELETE ON members BEGIN
    UPDATE deliveries SET member_id = NULL, address = NULL WHERE member_id = OLD.id;
END;
"""

V4 = """
-- What the channel workers and the tracker record per delivery: when a worker claimed it
-- for sending (the exactly-once marker), how many SMS parts it took and what it cost.
ALTER TABLE deliveries ADD COLUMN submitted_at TEXT;
ALTER TABLE deliveries ADD COLUMN parts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN cost_eur REAL NOT NULL DEFAULT 0;
"""

V5 = """
-- The SMSC's message id of every SMS part submitted, so that a delivery receipt, even one
-- arriving hours later after a restart, finds its delivery. ``state`` is the part's final
-- receipt ('delivered' or 'failed'), NULL until it comes; a delivery is delivered when
-- every one of its ``parts`` is.
CREATE TABLE delivery_messages (
    message_id TEXT PRIMARY KEY,
    delivery_id INTEGER NOT NULL,
    part INTEGER NOT NULL,
    parts INTEGER NOT NULL,
    state TEXT,
    reason TEXT
);
CREATE INDEX delivery_messages_delivery ON delivery_messages (delivery_id);
"""

V8 = """
-- Templates: a ready scenario per entity (a CAP skeleton with {placeholders}, as JSON).
CREATE TABLE templates (
    id INTEGER PRIMARY KEY,
    entity_id INTEGER NOT NULL REFERENCES entities (id),
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (entity_id, name)
);

-- The ledger: what an entity was charged or bought, in euro excluding VAT. Usage is not
-- written here: it is each campaign's cost, read from its deliveries.
CREATE TABLE ledger_entries (
    id INTEGER PRIMARY KEY,
    entity_id INTEGER NOT NULL REFERENCES entities (id),
    at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('activation', 'package')),
    amount_eur REAL NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ledger_entries_entity ON ledger_entries (entity_id, at);
-- An entity is activated once.
CREATE UNIQUE INDEX ledger_entries_activation ON ledger_entries (entity_id)
    WHERE kind = 'activation';

-- An entity in the simulation environment: every campaign of it is simulated.
ALTER TABLE entities ADD COLUMN simulation INTEGER NOT NULL DEFAULT 0;
"""

V6 = """
-- Push to partners: a subscription is a callback URL with the feeds' filters (the canonical
-- query string, hub.outputs.feed.FeedFilter.query) and the shared secret of its HMAC. It
-- belongs to the entity whose account registered it by API, or to no entity (the admin CLI).
CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    filters TEXT NOT NULL DEFAULT '',
    entity_id INTEGER REFERENCES entities (id),
    created_at TEXT NOT NULL
);

-- One row per (subscription, alert) owed a POST: pending until the partner answers 2xx
-- (delivered) or the retry period runs out (failed, with the last error). Rows outlive
-- their subscription, as a record.
CREATE TABLE push_deliveries (
    id INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    event TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    published_at TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (subscription_id, alert_id)
);
CREATE INDEX push_deliveries_pending ON push_deliveries (id) WHERE state = 'pending';
"""

V7 = """
-- When a campaign's sending ended (nothing left to hand a provider: its report is ready)
-- and when it ended (every delivery final, or the rest timed out waiting for an outcome).
ALTER TABLE campaigns ADD COLUMN sent_at TEXT;
ALTER TABLE campaigns ADD COLUMN ended_at TEXT;
-- Live progress counts a campaign's deliveries per state, channel and language, with those
-- made final in the last seconds and the cost so far, several times a second: from this
-- index alone (~4x faster than from the rows at 170,000 deliveries). Its prefix serves every
-- query the narrower index did; a state change rewrote an entry of it already.
DROP INDEX deliveries_campaign;
CREATE INDEX deliveries_campaign ON deliveries (campaign_id, state, channel, language, updated_at, cost_eur);
"""

V9 = """
-- SMSC message ids in the index in canonical form (lower case, no leading zeros, as receipts
-- look them up): ids stored as the SMSC wrote them ("00EE6B2800") were never found by their
-- receipts, which wrote a second row for the same part instead. That part's row still waiting
-- beside a final one is the stale half of such a pair and goes.
DELETE FROM delivery_messages AS old WHERE old.state IS NULL
    AND old.message_id != COALESCE(NULLIF(ltrim(lower(trim(old.message_id)), '0'), ''),
                                   CASE WHEN trim(old.message_id) = '' THEN '' ELSE '0' END)
    AND EXISTS (SELECT 1 FROM delivery_messages AS twin WHERE twin.delivery_id = old.delivery_id
                AND twin.part = old.part AND twin.message_id != old.message_id
                AND twin.state IS NOT NULL);
UPDATE OR IGNORE delivery_messages SET message_id =
    COALESCE(NULLIF(ltrim(lower(trim(message_id)), '0'), ''),
             CASE WHEN trim(message_id) = '' THEN '' ELSE '0' END)
WHERE message_id != COALESCE(NULLIF(ltrim(lower(trim(message_id)), '0'), ''),
                             CASE WHEN trim(message_id) = '' THEN '' ELSE '0' END);
"""

V10 = """
-- Whether an alert belongs to the simulation environment, kept with the alert: decided when it
-- is received (its entity's flag then, or a hub in simulation), so that an entity taken live
-- later never turns its exercise alerts into public ones (nor the reverse).
ALTER TABLE alerts ADD COLUMN simulation INTEGER NOT NULL DEFAULT 0;
UPDATE alerts SET simulation = 1 WHERE entity_id IN (SELECT id FROM entities WHERE simulation = 1);
"""

MIGRATIONS: list[tuple[int, str]] = [
    (1, V1),
    (2, V2),
    (3, V3),
    (4, V4),
    (5, V5),
    (6, V6),
    (7, V7),
    (8, V8),
    (9, V9),
    (10, V10),
]

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


def latest(migrations: Sequence[tuple[int, str]] = MIGRATIONS) -> int:
    return max((v for v, _ in migrations), default=0)


def statements(sql: str) -> list[str]:
    """Split a script into whole statements (a trigger body's ``;`` does not end one).

    ``executescript`` would commit the open transaction first, so migrations run statement
    by statement instead.
    """
    out: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _strip_comments(pending).strip(" \t\r\n;"):
                out.append(pending.strip())
            pending = ""
    if _strip_comments(pending).strip(" \t\r\n;"):
        raise ValueError("migration ends in an incomplete statement")
    return out


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


async def current_version(conn: aiosqlite.Connection) -> int:
    rows = list(await conn.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"))
    if not rows:
        return 0
    rows = list(await conn.execute_fetchall("SELECT MAX(version) FROM schema_version"))
    return int(rows[0][0] or 0)


async def apply(conn: aiosqlite.Connection, migrations: Sequence[tuple[int, str]] = MIGRATIONS) -> int:
    """Bring the database to the newest version in ``migrations``; returns that version.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Raises ``StoreError`` if
    the database was written by a newer cap-hub than this one.
    """
    known = latest(migrations)
    try:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(_VERSION_TABLE)
            version = await current_version(conn)
            if version > known:
                raise StoreError(
                    f"database schema version {version} is newer than this cap-hub knows "
                    f"({known}); upgrade cap-hub or open another data directory")
            for number, sql in sorted(migrations):
                if number <= version:
                    continue
                for statement in statements(sql):
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"could not migrate the database schema: {exc}") from exc
    return known
