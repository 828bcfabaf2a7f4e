"""Entities, their senders and certificates, accounts and their tokens: the SQL."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from hub.domain import Account, Certificate, Entity, EntityType, Grants, Role
from hub.store.base import Conflict, NewCertificate
from hub.store.sql_common import UNIQUE, SqlBase, error_name, from_utc_text, integrity, utc_text

ENTITY_COLUMNS = (
    "e.id, e.name, e.type, e.signature_required, e.profile, e.territory, "
    "(SELECT json_group_array(sender) FROM "
    "(SELECT s.sender FROM senders s WHERE s.entity_id = e.id ORDER BY s.rowid)), e.simulation"
)
ACCOUNT_COLUMNS = "a.id, a.entity_id, a.name, a.role, a.grants"
CERT_COLUMNS = "id, entity_id, pem, fingerprint, subject, not_after"


def entity_row(row: Sequence[Any]) -> Entity:
    return Entity(
        id=row[0], name=row[1], type=EntityType(row[2]),
        senders=tuple(json.loads(row[6])), signature_required=bool(row[3]),
        profile=row[4], territory=row[5], simulation=bool(row[7]),
    )


def account_row(row: Sequence[Any]) -> Account:
    return Account(id=row[0], entity_id=row[1], name=row[2], role=Role(row[3]),
                   grants=Grants.from_json(json.loads(row[4])))


def certificate_row(row: Sequence[Any]) -> Certificate:
    return Certificate(id=row[0], entity_id=row[1], pem=bytes(row[2]), fingerprint=row[3],
                       subject=row[4], not_after=from_utc_text(row[5]))


async def _insert_certificate(
    conn: aiosqlite.Connection, entity_id: int, cert: NewCertificate
) -> Certificate:
    not_after_text = utc_text(cert.not_after)
    try:
        row = await conn.execute_insert(
            "INSERT INTO certificates (entity_id, fingerprint, pem, subject, not_after) "
            "VALUES (?, ?, ?, ?, ?)", (entity_id, cert.fingerprint, cert.pem, cert.subject, not_after_text))
    except sqlite3.IntegrityError as exc:
        if error_name(exc) in UNIQUE:
            raise Conflict(f"certificate {cert.fingerprint} is already registered to entity "
                           f"{entity_id}") from exc
        raise integrity(exc, f"certificate {cert.fingerprint} is registered to another entity",
                        f"no entity {entity_id}") from exc
    assert row is not None
    return Certificate(id=row[0], entity_id=entity_id, pem=cert.pem, fingerprint=cert.fingerprint,
                       subject=cert.subject, not_after=from_utc_text(not_after_text))


class EntitySql(SqlBase):
    async def add_entity(
        self, name: str, type: EntityType, senders: Sequence[str], *,
        signature_required: bool, profile: str, territory: str | None,
        certificates: Sequence[NewCertificate] = (), simulation: bool = False,
    ) -> Entity:
        unique_senders = tuple(dict.fromkeys(senders))

        async def op(conn: aiosqlite.Connection) -> Entity:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO entities (name, type, signature_required, profile, territory, "
                    "simulation) VALUES (?, ?, ?, ?, ?, ?)",
                    (name, int(type), int(signature_required), profile, territory, int(simulation)))
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"an entity named {name!r} exists") from exc
            assert row is not None
            for sender in unique_senders:
                try:
                    await conn.execute("INSERT INTO senders (sender, entity_id) VALUES (?, ?)",
                                       (sender, row[0]))
                except sqlite3.IntegrityError as exc:
                    raise Conflict(f"sender {sender!r} belongs to another entity") from exc
            for cert in certificates:  # in the same transaction: all of the entity, or nothing
                await _insert_certificate(conn, row[0], cert)
            return Entity(id=row[0], name=name, type=EntityType(type), senders=unique_senders,
                          signature_required=signature_required, profile=profile,
                          territory=territory, simulation=simulation)

        return await self._write(op)

    async def entity(self, entity_id: int) -> Entity | None:
        row = await self._read_one(f"SELECT {ENTITY_COLUMNS} FROM entities e WHERE e.id = ?",
                                   (entity_id,))
        return None if row is None else entity_row(row)

    async def entity_by_name(self, name: str) -> Entity | None:
        row = await self._read_one(f"SELECT {ENTITY_COLUMNS} FROM entities e WHERE e.name = ?",
                                   (name,))
        return None if row is None else entity_row(row)

    async def set_entity_simulation(self, entity_id: int, simulation: bool) -> None:
        async def op(conn: aiosqlite.Connection) -> None:
            await conn.execute("UPDATE entities SET simulation = ? WHERE id = ?",
                               (int(simulation), entity_id))

        await self._write(op, single_statement=True)

    async def entity_for_sender(self, sender: str) -> Entity | None:
        row = await self._read_one(
            f"SELECT {ENTITY_COLUMNS} FROM senders s0 JOIN entities e ON e.id = s0.entity_id "
            "WHERE s0.sender = ?", (sender,))
        return None if row is None else entity_row(row)

    async def add_certificate(
        self, entity_id: int, pem: bytes, *, fingerprint: str, subject: str, not_after: datetime
    ) -> Certificate:
        cert = NewCertificate(pem, fingerprint, subject, not_after)

        async def op(conn: aiosqlite.Connection) -> Certificate:
            return await _insert_certificate(conn, entity_id, cert)

        return await self._write(op, single_statement=True)

    async def certificates(self, entity_id: int) -> list[Certificate]:
        rows = await self._read(
            f"SELECT {CERT_COLUMNS} FROM certificates WHERE entity_id = ? ORDER BY id", (entity_id,))
        return [certificate_row(row) for row in rows]

    async def add_account(self, entity_id: int, name: str, role: Role, grants: Grants) -> Account:
        grants_json = json.dumps(grants.to_json(), sort_keys=True)

        async def op(conn: aiosqlite.Connection) -> Account:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO accounts (entity_id, name, role, grants) VALUES (?, ?, ?, ?)",
                    (entity_id, name, str(role), grants_json))
            except sqlite3.IntegrityError as exc:
                # the name may be a person's: say what conflicted, not the value
                raise integrity(exc, "the account name is taken", f"no entity {entity_id}") from exc
            assert row is not None
            return Account(id=row[0], entity_id=entity_id, name=name, role=Role(role),
                           grants=grants)

        return await self._write(op, single_statement=True)

    async def account_by_name(self, name: str) -> Account | None:
        row = await self._read_one(f"SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.name = ?",
                                   (name,))
        return None if row is None else account_row(row)

    async def add_token(self, account_id: int, token_hash: str, *, created_at: datetime) -> int:
        created = utc_text(created_at)

        async def op(conn: aiosqlite.Connection) -> int:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO tokens (account_id, hash, created_at) VALUES (?, ?, ?)",
                    (account_id, token_hash, created))
            except sqlite3.IntegrityError as exc:
                raise integrity(exc, "the token exists", f"no account {account_id}") from exc
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
            f"SELECT {ACCOUNT_COLUMNS}, {ENTITY_COLUMNS} FROM tokens t "
            "JOIN accounts a ON a.id = t.account_id JOIN entities e ON e.id = a.entity_id "
            "WHERE t.hash = ? AND t.revoked_at IS NULL", (token_hash,))
        if row is None:
            return None
        return account_row(row[:5]), entity_row(row[5:])
