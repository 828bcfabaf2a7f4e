"""PLP groups, their members and the members' contact points: the SQL.

This is the only part of the store that holds personal data. Rules kept here:

- a member belongs to one entity, and only to groups of that entity;
- a contact point (a number or an e-mail address) is unique per group: two members of one
  group never share one (``save_members`` refuses with ``Conflict``);
- an external id is unique per entity (the schema's partial UNIQUE index);
- erasing a member is one ``DELETE``: phones, e-mails and group links cascade, and the
  writer runs with ``secure_delete`` so the freed bytes are zeroed, not left in the file;
- error messages name groups and ids, never a name, number, address or external id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from hub.domain import Channel, Group, Kind, Language, Member, MemberData, Phone, PhoneKind
from hub.store.base import Conflict, ImportResult, NotFound
from hub.store.sql_common import SqlBase, integrity, utc_text

GROUP_COLUMNS = "g.id, g.gid, g.entity_id, g.name, g.kind, g.audience, g.territory, g.languages, g.channels"

DATA_COLUMNS = (
    "m.id, m.entity_id, m.name, m.language, m.external_id, m.address, m.lat, m.lon, m.channels, "
    "(SELECT json_group_array(json_array(p.number, p.kind)) FROM "
    "(SELECT number, kind FROM phones WHERE member_id = m.id ORDER BY rowid) p), "
    "(SELECT json_group_array(e.address) FROM "
    "(SELECT address FROM emails WHERE member_id = m.id ORDER BY rowid) e)"
)
MEMBER_COLUMNS = (
    f"{DATA_COLUMNS}, (SELECT json_group_array(x.gid) FROM "
    "(SELECT g.gid FROM group_members gm2 JOIN groups g ON g.id = gm2.group_id "
    "WHERE gm2.member_id = m.id ORDER BY g.gid) x)"
)

_INSERT_MEMBER = (
    "INSERT INTO members (id, entity_id, external_id, name, language, address, lat, lon, channels, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_MEMBER = (
    "UPDATE members SET external_id = ?, name = ?, language = ?, address = ?, lat = ?, lon = ?, "
    "channels = ?, updated_at = ? WHERE id = ?"
)
_UPDATE_GROUP = (
    "UPDATE groups SET gid = ?, name = ?, kind = ?, audience = ?, territory = ?, languages = ?, "
    "channels = ? WHERE id = ? AND entity_id = ?"
)

# Two members of one group sharing a contact point: for the members just written, look for
# another member with the same number (or address) in a group they share.
_SHARED_CONTACT = """
WITH touched(id) AS (SELECT value FROM json_each(?1))
SELECT g.gid FROM touched t
    CROSS JOIN {table} c ON c.member_id = t.id
    CROSS JOIN {table} o ON o.{column} = c.{column} AND o.member_id <> c.member_id
    CROSS JOIN group_members a ON a.member_id = c.member_id
    CROSS JOIN group_members b ON b.group_id = a.group_id AND b.member_id = o.member_id
    CROSS JOIN groups g ON g.id = a.group_id
LIMIT 1
"""
_SHARED_PHONE = _SHARED_CONTACT.format(table="phones", column="number")
_SHARED_EMAIL = _SHARED_CONTACT.format(table="emails", column="address")

# ``find_members`` binds at most 500 parameters per statement (the entity id and 499 keys);
# ``member_data`` passes its ids as one JSON parameter, 5,000 at a time.
_CHUNK = 499
_IDS_CHUNK = 5000


def fold(value: object) -> str | None:
    """``hub_fold``: case and accents folded for search (SQLite's LIKE folds ASCII case
    only), so that ``elodie`` finds ``Élodie``."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKD", str(value))
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def like_pattern(search: str) -> str:
    escaped = (fold(search) or "").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def group_params(group: Group) -> tuple[Any, ...]:
    """The columns after ``id`` and ``entity_id`` are JSON: audience and languages as arrays,
    channels as an object ``{kind: [channel, ...]}`` in the group's order."""
    return (
        group.gid, group.name, group.kind, json.dumps(list(group.audience)), group.territory,
        json.dumps([str(lang) for lang in group.languages]),
        json.dumps({str(kind): [str(c) for c in channels] for kind, channels in group.channels}),
    )


def group_row(row: Sequence[Any]) -> Group:
    channels: dict[str, list[str]] = json.loads(row[8])
    return Group(
        id=row[0], gid=row[1], entity_id=row[2], name=row[3], kind=row[4],
        audience=tuple(json.loads(row[5])), territory=row[6],
        languages=tuple(Language(lang) for lang in json.loads(row[7])),
        channels=tuple((Kind(k), tuple(Channel(c) for c in cs)) for k, cs in channels.items()),
    )


def data_row(row: Sequence[Any]) -> MemberData:
    return MemberData(
        name=row[2], language=Language(row[3]), external_id=row[4], address=row[5],
        lat=row[6], lon=row[7], channels=tuple(Channel(c) for c in json.loads(row[8])),
        phones=tuple(Phone(number, PhoneKind(kind)) for number, kind in json.loads(row[9])),
        emails=tuple(json.loads(row[10])),
    )


def member_row(row: Sequence[Any]) -> Member:
    return Member(id=row[0], entity_id=row[1], data=data_row(row), groups=tuple(json.loads(row[11])))


def _chunks(values: Sequence[str]) -> list[list[str]]:
    distinct = list(dict.fromkeys(values))
    return [distinct[i:i + _CHUNK] for i in range(0, len(distinct), _CHUNK)]


class _Rows:
    """The parameter rows of one ``save_members`` call, built inside its job (in a worker
    thread) once the first free member id is known."""

    def __init__(self, entity_id: int, creates: Sequence[MemberData],
                 updates: Sequence[tuple[int, MemberData]], first_id: int, now: str) -> None:
        self.created = tuple(range(first_id, first_id + len(creates)))
        self.updated = tuple(member_id for member_id, _ in updates)
        self.members: list[tuple[Any, ...]] = []
        self.changes: list[tuple[Any, ...]] = []
        self.phones: list[tuple[int, str, str]] = []
        self.emails: list[tuple[int, str]] = []
        for member_id, data in zip(self.created, creates, strict=True):
            self.members.append((member_id, entity_id, data.external_id, data.name, str(data.language),
                                 data.address, data.lat, data.lon, _channels(data), now, now))
            self._contacts(member_id, data)
        for member_id, data in updates:
            self.changes.append((data.external_id, data.name, str(data.language), data.address,
                                 data.lat, data.lon, _channels(data), now, member_id))
            self._contacts(member_id, data)

    def _contacts(self, member_id: int, data: MemberData) -> None:
        numbers: dict[str, PhoneKind] = {}
        for phone in data.phones:
            numbers.setdefault(phone.number, phone.kind)
        self.phones.extend((member_id, number, str(kind)) for number, kind in numbers.items())
        self.emails.extend((member_id, address) for address in dict.fromkeys(data.emails))


def _channels(data: MemberData) -> str:
    return json.dumps([str(c) for c in data.channels])


class MemberSql(SqlBase):
    # --- groups

    async def add_group(self, group: Group) -> Group:
        """Stores ``group`` (its ``id`` is ignored). ``Conflict`` if the gid exists,
        ``NotFound`` if the entity does not."""
        params = (group.entity_id, *group_params(group))

        async def op(conn: aiosqlite.Connection) -> Group:
            try:
                row = await conn.execute_insert(
                    "INSERT INTO groups (entity_id, gid, name, kind, audience, territory, languages, "
                    "channels) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", params)
            except sqlite3.IntegrityError as exc:
                raise integrity(exc, f"a group {group.gid!r} exists",
                                f"no entity {group.entity_id}") from exc
            assert row is not None
            return dataclasses.replace(group, id=int(row[0]))

        return await self._write(op, single_statement=True)

    async def update_group(self, group: Group) -> Group:
        """Changes the group with ``group.id`` (its gid too); a group never moves to another
        entity: ``NotFound`` unless ``group.id`` is a group of ``group.entity_id``."""
        params = (*group_params(group), group.id, group.entity_id)

        async def op(conn: aiosqlite.Connection) -> Group:
            try:
                cursor = await conn.execute(_UPDATE_GROUP, params)
            except sqlite3.IntegrityError as exc:
                raise integrity(exc, f"a group {group.gid!r} exists", f"no group {group.id}") from exc
            if cursor.rowcount == 0:
                raise NotFound(f"no group {group.id} in entity {group.entity_id}")
            return group

        return await self._write(op, single_statement=True)

    async def delete_group(self, gid: str) -> int | None:
        """Delete the group; its members left in no other group are deleted with their data.
        Returns how many members were deleted that way, or None if there is no such group."""

        async def op(conn: aiosqlite.Connection) -> int | None:
            rows = list(await conn.execute_fetchall("SELECT id FROM groups WHERE gid = ?", (gid,)))
            if not rows:
                return None
            group_id = rows[0][0]
            members = [r[0] for r in await conn.execute_fetchall(
                "SELECT member_id FROM group_members WHERE group_id = ?", (group_id,))]
            await conn.execute("DELETE FROM groups WHERE id = ?", (group_id,))  # links cascade
            cursor = await conn.execute(
                "DELETE FROM members WHERE id IN (SELECT value FROM json_each(?)) "
                "AND NOT EXISTS (SELECT 1 FROM group_members gm WHERE gm.member_id = members.id)",
                (json.dumps(members),))
            return cursor.rowcount

        return await self._write(op)

    async def group(self, gid: str) -> Group | None:
        row = await self._read_one(f"SELECT {GROUP_COLUMNS} FROM groups g WHERE g.gid = ?", (gid,))
        return None if row is None else group_row(row)

    async def groups(self, entity_id: int) -> list[Group]:
        rows = await self._read(
            f"SELECT {GROUP_COLUMNS} FROM groups g WHERE g.entity_id = ? ORDER BY g.id", (entity_id,))
        return [group_row(row) for row in rows]

    # --- members: reads

    async def members(self, gid: str, *, search: str | None = None, limit: int = 100,
                      after_id: int | None = None) -> list[Member]:
        """Members of the group in id order, after ``after_id``; ``search`` matches a part of
        the name, external id, a number (as stored: E.164) or an e-mail address, ignoring case
        and accents.
        An unknown gid has no members."""
        if limit <= 0:
            return []
        params: list[Any] = [gid, after_id if after_id is not None else 0]
        clause = ""
        if search:
            clause = (
                "AND (hub_fold(m.name) LIKE ?3 ESCAPE '\\' "
                "OR hub_fold(m.external_id) LIKE ?3 ESCAPE '\\' "
                "OR EXISTS (SELECT 1 FROM phones p WHERE p.member_id = m.id "
                "AND p.number LIKE ?3 ESCAPE '\\') "
                "OR EXISTS (SELECT 1 FROM emails e WHERE e.member_id = m.id "
                "AND hub_fold(e.address) LIKE ?3 ESCAPE '\\')) ")
            params.append(like_pattern(search))
        rows = await self._read(
            f"SELECT {MEMBER_COLUMNS} FROM group_members gm JOIN members m ON m.id = gm.member_id "
            f"WHERE gm.group_id = (SELECT id FROM groups WHERE gid = ?1) AND gm.member_id > ?2 "
            f"{clause}ORDER BY gm.member_id LIMIT {int(limit)}", params)
        return [member_row(row) for row in rows]

    async def member(self, member_id: int) -> Member | None:
        row = await self._read_one(f"SELECT {MEMBER_COLUMNS} FROM members m WHERE m.id = ?",
                                   (member_id,))
        return None if row is None else member_row(row)

    async def member_data(self, member_ids: Sequence[int]) -> dict[int, MemberData]:
        """The data of the members that exist among ``member_ids`` (unknown ids are left
        out), read in chunks of ``_IDS_CHUNK`` ids, each passed as one JSON parameter."""
        wanted = list(dict.fromkeys(int(i) for i in member_ids))
        found: dict[int, MemberData] = {}
        for start in range(0, len(wanted), _IDS_CHUNK):
            rows = await self._read(
                f"SELECT {DATA_COLUMNS} FROM members m WHERE m.id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted[start:start + _IDS_CHUNK]),))
            found.update((int(row[0]), data_row(row)) for row in rows)
        return found

    async def find_members(self, entity_id: int, *, external_ids: Sequence[str] = (),
                           contact_points: Sequence[str] = ()) -> dict[str, int]:
        """``{key: member_id}`` for the keys that name a member of the entity. Contact points
        with an ``@`` are e-mail addresses, others numbers. A contact point held by several
        members of the entity (in different groups) maps to the lowest id. Queried in chunks
        of at most 500 parameters; each chunk is its own snapshot. (``CROSS JOIN`` keeps
        SQLite from scanning the entity's members first: without statistics it would.)"""
        found: dict[str, int] = {}
        numbers = [c for c in contact_points if "@" not in c]
        addresses = [c for c in contact_points if "@" in c]
        queries = (
            (external_ids, "SELECT external_id, MIN(id) FROM members WHERE entity_id = ? "
                           "AND external_id IN ({}) GROUP BY external_id"),
            (numbers, "SELECT p.number, MIN(p.member_id) FROM phones p CROSS JOIN members m "
                      "ON m.id = p.member_id WHERE m.entity_id = ? AND p.number IN ({}) "
                      "GROUP BY p.number"),
            (addresses, "SELECT e.address, MIN(e.member_id) FROM emails e CROSS JOIN members m "
                        "ON m.id = e.member_id WHERE m.entity_id = ? AND e.address IN ({}) "
                        "GROUP BY e.address"),
        )
        for keys, sql in queries:
            for chunk in _chunks(keys):
                rows = await self._read(sql.format(", ".join("?" * len(chunk))), (entity_id, *chunk))
                for key, member_id in rows:
                    found.setdefault(key, int(member_id))
        return found

    # --- members: writes

    async def save_members(self, gid: str, creates: Sequence[MemberData],
                           updates: Sequence[tuple[int, MemberData]],
                           join: Sequence[int] = ()) -> ImportResult:
        """Create ``creates``, replace the data of ``updates`` (their phones and e-mails
        too), and put them all in the group, with ``join`` (members of the entity whose data
        do not change): one job of the writer, so one transaction.
        ``NotFound``: no such group, or an updated member is not of the group's entity.
        ``Conflict``: an external id used twice in the entity, or a contact point shared by
        two members of one group."""
        if len({member_id for member_id, _ in updates}) != len(updates):
            raise ValueError("save_members: a member is updated twice")
        now = utc_text(datetime.now(UTC))

        async def op(conn: aiosqlite.Connection) -> ImportResult:
            group = list(await conn.execute_fetchall(
                "SELECT id, entity_id FROM groups WHERE gid = ?", (gid,)))
            if not group:
                raise NotFound(f"no group {gid!r}")
            group_id, entity_id = int(group[0][0]), int(group[0][1])
            first_id = await _next_member_id(conn)
            # building 100,000 rows takes a few hundred ms: off the event loop
            rows = await asyncio.to_thread(_Rows, entity_id, creates, updates, first_id, now)
            updated_json = json.dumps(rows.updated)
            existing = sorted(set(rows.updated) | set(join))
            if existing:
                known = list(await conn.execute_fetchall(
                    "SELECT COUNT(*) FROM members WHERE entity_id = ? "
                    "AND id IN (SELECT value FROM json_each(?))", (entity_id, json.dumps(existing))))
                if int(known[0][0]) != len(existing):
                    raise NotFound(f"group {gid!r}: a member to update is not of its entity")
            try:
                await conn.executemany(_INSERT_MEMBER, rows.members)
                if rows.changes:
                    await conn.executemany(_UPDATE_MEMBER, rows.changes)
                    for table in ("phones", "emails"):
                        await conn.execute(f"DELETE FROM {table} WHERE member_id IN "
                                           "(SELECT value FROM json_each(?))", (updated_json,))
            except sqlite3.IntegrityError as exc:
                raise integrity(exc, f"group {gid!r}: an external id is used twice in the entity",
                                f"group {gid!r}: a member does not exist") from exc
            await conn.executemany(
                "INSERT INTO phones (member_id, number, kind) VALUES (?, ?, ?)", rows.phones)
            await conn.executemany(
                "INSERT INTO emails (member_id, address) VALUES (?, ?)", rows.emails)
            touched = json.dumps(list(rows.created + rows.updated) + list(join))
            await conn.execute(
                "INSERT OR IGNORE INTO group_members (group_id, member_id) "
                "SELECT ?, value FROM json_each(?)", (group_id, touched))
            for sql in (_SHARED_PHONE, _SHARED_EMAIL):
                clash = list(await conn.execute_fetchall(sql, (touched,)))
                if clash:
                    raise Conflict(f"group {clash[0][0]!r}: a contact point would belong to two "
                                   "members")
            return ImportResult(created=rows.created, updated=rows.updated)

        return await self._write(op)

    async def remove_member(self, gid: str, member_id: int) -> bool:
        """Take the member out of the group; False if it was not in it. A member left in no
        group is deleted (as ``erase_member``): the hub keeps no one it cannot reach."""

        async def op(conn: aiosqlite.Connection) -> bool:
            cursor = await conn.execute(
                "DELETE FROM group_members WHERE member_id = ? "
                "AND group_id = (SELECT id FROM groups WHERE gid = ?)", (member_id, gid))
            if cursor.rowcount == 0:
                return False
            await conn.execute(
                "DELETE FROM members WHERE id = ? "
                "AND NOT EXISTS (SELECT 1 FROM group_members WHERE member_id = ?)",
                (member_id, member_id))
            return True

        return await self._write(op)

    async def erase_member(self, member_id: int) -> bool:
        """Delete the member with its phones, e-mails and group links (one statement: they
        cascade); False if there is no such member."""

        async def op(conn: aiosqlite.Connection) -> bool:
            cursor = await conn.execute("DELETE FROM members WHERE id = ?", (member_id,))
            return cursor.rowcount > 0

        return await self._write(op, single_statement=True)


async def _next_member_id(conn: aiosqlite.Connection) -> int:
    """The first id of a block of new members. The writer holds the write lock, so the block
    is ours; ids are never reused (``members`` is AUTOINCREMENT: its sequence counts too)."""
    rows = list(await conn.execute_fetchall(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'members'), 0), "
        "COALESCE((SELECT MAX(id) FROM members), 0))"))
    return int(rows[0][0]) + 1



