"""PLP groups and members in the SQLite store: every method, conflicts, paging and search,
erasure down to the file's bytes, and atomicity of an import killed halfway (SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.domain import Channel, Entity, EntityType, Group, Kind, Language, MemberData, Phone, PhoneKind
from hub.errors import StoreError
from hub.store import Conflict, NotFound
from hub.store.sqlite import FILENAME, SqliteStore

ROOT = Path(__file__).resolve().parents[2]


async def entity(store: SqliteStore, name: str = "PLP Gent") -> Entity:
    return await store.add_entity(name, EntityType.GROUPS, (f"{name}@plp.example",),
                                  signature_required=False, profile="", territory=None)


async def group(store: SqliteStore, entity_id: int, gid: str = "plp-gent-residents") -> Group:
    return await store.add_group(Group(id=0, gid=gid, entity_id=entity_id, name=gid))


def person(i: int, *, name: str | None = None, ext: bool = True) -> MemberData:
    return MemberData(
        name=name or f"Person {i}", language=Language.NL,
        phones=(Phone(f"+3247{i:07d}", PhoneKind.MOBILE),), emails=(f"p{i}@example.be",),
        external_id=f"X{i}" if ext else None)


def raw(store: SqliteStore, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(store.path) as conn:
        return conn.execute(sql, params).fetchall()


# --- groups

async def test_groups_add_read_update(store: SqliteStore) -> None:
    e = await entity(store)
    other = await entity(store, "PLP Brugge")
    g = Group(id=0, gid="plp-gent-shops", entity_id=e.id, name="Shops", kind="shops",
              audience=("shops", "night"), territory='{"type": "Polygon", "coordinates": []}',
              languages=(Language.NL, Language.EN),
              channels=((Kind.NEWS, (Channel.EMAIL,)), (Kind.ALERT, (Channel.VOICE, Channel.SMS))))
    stored = await store.add_group(g)
    assert stored.id > 0 and stored == Group(**{**_fields(g), "id": stored.id})
    assert await store.group("plp-gent-shops") == stored
    assert await store.group("nope") is None
    plain = await group(store, e.id, "plp-gent-residents")
    assert plain.channels_for(Kind.ALERT) == (Channel.SMS, Channel.VOICE, Channel.EMAIL)
    await group(store, other.id, "plp-brugge")
    assert [x.gid for x in await store.groups(e.id)] == ["plp-gent-shops", "plp-gent-residents"]
    assert await store.groups(999) == []

    changed = Group(**{**_fields(stored), "gid": "plp-gent-shops-2", "name": "Winkels",
                       "languages": (Language.FR,), "channels": ()})
    assert await store.update_group(changed) == changed
    assert await store.group("plp-gent-shops") is None
    assert await store.group("plp-gent-shops-2") == changed


def _fields(g: Group) -> dict[str, object]:
    return {name: getattr(g, name) for name in Group.__slots__}


async def test_group_conflicts_and_not_found(store: SqliteStore) -> None:
    e = await entity(store)
    other = await entity(store, "PLP Brugge")
    g = await group(store, e.id, "plp-1")
    await group(store, e.id, "plp-2")
    with pytest.raises(Conflict, match="plp-1"):
        await group(store, other.id, "plp-1")
    with pytest.raises(NotFound, match="entity"):
        await group(store, 999, "plp-3")
    with pytest.raises(Conflict, match="plp-2"):
        await store.update_group(Group(**{**_fields(g), "gid": "plp-2"}))
    with pytest.raises(NotFound):
        await store.update_group(Group(**{**_fields(g), "id": 999}))
    with pytest.raises(NotFound):  # a group does not move to another entity
        await store.update_group(Group(**{**_fields(g), "entity_id": other.id}))
    assert (await store.group("plp-1")) == g


# --- save and read members

async def test_save_members_creates_and_reads_back(store: SqliteStore) -> None:
    e = await entity(store)
    await group(store, e.id, "plp-1")
    full = MemberData(
        name="Zoë Peeters", language=Language.FR,
        phones=(Phone("+32477123456", PhoneKind.MOBILE), Phone("+3292345678", PhoneKind.FIXED),
                Phone("+32477123456", PhoneKind.MOBILE)),  # the same number twice: one contact
        emails=("zoe@example.be", "z.peeters@Example.com"), external_id="A-1",
        address="Kerkstraat 1, 9000 Gent", lat=51.05, lon=3.72, channels=(Channel.SMS, Channel.EMAIL))
    bare = MemberData(name="No Contact", language=Language.DE)
    result = await store.save_members("plp-1", [full, bare], [])
    assert len(result.created) == 2 and result.updated == ()
    m = await store.member(result.created[0])
    assert m is not None and m.entity_id == e.id and m.groups == ("plp-1",)
    assert m.data == MemberData(**{**{k: getattr(full, k) for k in MemberData.__slots__},
                                   "phones": full.phones[:2]})
    m2 = await store.member(result.created[1])
    assert m2 is not None and m2.data == bare
    assert await store.member(999) is None
    assert (await store.save_members("plp-1", [], [])).created == ()


async def test_save_members_unknown_group(store: SqliteStore) -> None:
    with pytest.raises(NotFound, match="nope"):
        await store.save_members("nope", [person(1)], [])
    assert raw(store, "SELECT COUNT(*) FROM members") == [(0,)]


async def test_updates_replace_data_and_contacts_and_join_the_group(store: SqliteStore) -> None:
    e = await entity(store)
    await group(store, e.id, "plp-1")
    await group(store, e.id, "plp-2")
    created = (await store.save_members("plp-1", [person(1), person(2)], [])).created
    new = MemberData(name="Person One", language=Language.EN,
                     phones=(Phone("+32470000001", PhoneKind.MOBILE),), emails=("one@example.be",),
                     external_id="X1")
    result = await store.save_members("plp-2", [person(3)], [(created[0], new)])
    assert result.updated == (created[0],) and len(result.created) == 1
    m = await store.member(created[0])
    assert m is not None and m.data == new and m.groups == ("plp-1", "plp-2")
    assert raw(store, "SELECT number FROM phones WHERE member_id = ?", (created[0],)) == [("+32470000001",)]
    assert raw(store, "SELECT COUNT(*) FROM phones WHERE number = ?", ("+32470000001",)) == [(1,)]
    assert raw(store, "SELECT COUNT(*) FROM emails WHERE address = 'p1@example.be'") == [(0,)]
    again = await store.save_members("plp-2", [], [(created[0], new)])  # already in: stays once
    assert again.updated == (created[0],)
    assert raw(store, "SELECT COUNT(*) FROM group_members WHERE member_id = ?", (created[0],)) == [(2,)]
    with pytest.raises(ValueError):
        await store.save_members("plp-1", [], [(created[0], new), (created[0], new)])


async def test_update_of_unknown_or_foreign_member_stores_nothing(store: SqliteStore) -> None:
    e, f = await entity(store), await entity(store, "PLP Brugge")
    await group(store, e.id, "plp-e")
    await group(store, f.id, "plp-f")
    foreign = (await store.save_members("plp-f", [person(1)], [])).created[0]
    for member_id in (foreign, 999):
        with pytest.raises(NotFound, match="plp-e") as info:
            await store.save_members("plp-e", [person(2)], [(member_id, person(3))])
        assert "Person" not in str(info.value)
    assert raw(store, "SELECT COUNT(*) FROM members") == [(1,)]
    m = await store.member(foreign)
    assert m is not None and m.data == person(1) and m.groups == ("plp-f",)


async def test_external_id_is_unique_per_entity(store: SqliteStore) -> None:
    e, f = await entity(store), await entity(store, "PLP Brugge")
    await group(store, e.id, "plp-e")
    await group(store, f.id, "plp-f")
    await store.save_members("plp-e", [person(1)], [])
    await store.save_members("plp-f", [person(1)], [])  # another entity: another person
    cases = [[person(2), person(1, name="Other")],  # clashes with a stored member
             [person(3), MemberData(**{**{k: getattr(person(4), k) for k in MemberData.__slots__},
                                       "external_id": "X3"})]]  # twice in one call
    for creates in cases:
        with pytest.raises(Conflict, match="plp-e") as info:
            await store.save_members("plp-e", creates, [])
        assert "X1" not in str(info.value) and "X3" not in str(info.value)
    assert raw(store, "SELECT COUNT(*) FROM members") == [(2,)]
    assert raw(store, "SELECT COUNT(*) FROM phones") == [(2,)]
    # members without external id never clash on it
    await store.save_members("plp-e", [person(5, ext=False), person(6, ext=False)], [])


async def test_a_contact_point_is_unique_per_group(store: SqliteStore) -> None:
    e = await entity(store)
    for gid in ("plp-1", "plp-2"):
        await group(store, e.id, gid)
    first = (await store.save_members("plp-1", [person(1)], [])).created[0]
    same_number = MemberData(name="B", language=Language.NL,
                             phones=(Phone("+32470000001", PhoneKind.MOBILE),))
    same_mail = MemberData(name="C", language=Language.NL, emails=("p1@example.be",))
    same_phone = MemberData(name="D", language=Language.NL,
                            phones=(Phone("+32470000001", PhoneKind.MOBILE),))
    for creates in ([person(1, ext=False)], [same_mail], [same_number, same_phone]):
        with pytest.raises(Conflict, match="'plp-1'") as info:
            await store.save_members("plp-1", creates, [])
        message = str(info.value)
        assert "+32" not in message and "@" not in message and "Person" not in message
    assert raw(store, "SELECT COUNT(*) FROM members") == [(1,)]

    # in another group of the entity the same number is another member's: allowed
    other = (await store.save_members("plp-2", [person(1, ext=False)], [])).created[0]
    # but bringing that member into plp-1 would put the number twice in plp-1
    with pytest.raises(Conflict, match="'plp-1'"):
        await store.save_members("plp-1", [], [(other, person(1, ext=False))])
    # and an update made through plp-2 is checked in plp-1 too, where the member also is
    third = (await store.save_members("plp-1", [person(7)], [])).created[0]
    await store.save_members("plp-2", [], [(third, person(7))])
    with pytest.raises(Conflict, match="'plp-1'"):
        await store.save_members("plp-2", [], [(third, MemberData(
            name="E", language=Language.NL, emails=("p1@example.be",), external_id="X7"))])
    assert (await store.find_members(e.id, contact_points=["p1@example.be"])) == {"p1@example.be": first}


async def test_a_failed_import_does_not_fail_other_writes_of_its_batch(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path, linger=0.05)
    await s.open()
    try:
        e = await entity(s)
        await group(s, e.id, "plp-1")
        await s.save_members("plp-1", [person(1)], [])
        bad, ok, audit = await asyncio.gather(
            s.save_members("plp-1", [person(2), person(1)], []),
            s.save_members("plp-1", [person(3)], []),
            s.audit("admin", "members.import", "plp-1", "ok", at=datetime.now(UTC)),
            return_exceptions=True)
        assert isinstance(bad, Conflict) and not isinstance(ok, BaseException) and audit is None
        assert raw(s, "SELECT external_id FROM members ORDER BY id") == [("X1",), ("X3",)]
    finally:
        await s.close()


# --- listing, search, find

async def test_members_paging_and_search(store: SqliteStore) -> None:
    e = await entity(store)
    await group(store, e.id, "plp-1")
    await group(store, e.id, "plp-2")
    names = [f"Person {i}" for i in range(25)]
    names[3], names[4], names[5] = "Élodie Dubois", "ELODIE Martin", "100%_sure"
    ids = (await store.save_members("plp-1", [person(i, name=n) for i, n in enumerate(names)], [])).created
    await store.save_members("plp-2", [person(100, name="Élodie Elsewhere")], [])

    pages, after = [], None
    while page := await store.members("plp-1", limit=10, after_id=after):
        pages.append([m.id for m in page])
        after = page[-1].id
    assert [len(p) for p in pages] == [10, 10, 5] and sum(pages, []) == list(ids)
    assert await store.members("plp-1", limit=0) == []
    assert await store.members("nope") == []

    async def found(search: str) -> list[str]:
        return [m.data.name for m in await store.members("plp-1", search=search)]

    assert await found("élodie") == ["Élodie Dubois", "ELODIE Martin"]  # case and accents
    assert await found("ÉLODIE") == ["Élodie Dubois", "ELODIE Martin"]
    assert await found("elodie d") == ["Élodie Dubois"]
    assert await found("x12") == ["Person 12"]  # external id, any case
    assert await found("+32470000007") == ["Person 7"]  # number
    assert await found("P9@EXAMPLE") == ["Person 9"]  # e-mail, any case
    assert await found("%") == ["100%_sure"] and await found("0%_") == ["100%_sure"]
    assert await found("_") == ["100%_sure"]
    assert await found("nobody") == []
    hits = await store.members("plp-1", search="person", limit=3, after_id=ids[10])
    assert [m.id for m in hits] == list(ids[11:14])


async def test_find_members_by_external_id_and_contact_point(store: SqliteStore) -> None:
    e, f = await entity(store), await entity(store, "PLP Brugge")
    await group(store, e.id, "plp-e")
    await group(store, f.id, "plp-f")
    ids = (await store.save_members("plp-e", [person(i) for i in range(1200)], [])).created
    await store.save_members("plp-f", [person(5000)], [])
    externals = [f"X{i}" for i in range(0, 1200, 2)] + ["X5000", "unknown"]
    numbers = [f"+3247{i:07d}" for i in range(1, 1200, 2)] + ["+32475005000"]
    mails = [f"p{i}@example.be" for i in range(0, 1200, 3)] + ["p5000@example.be"]
    result = await store.find_members(e.id, external_ids=externals, contact_points=numbers + mails)
    expected = {f"X{i}": ids[i] for i in range(0, 1200, 2)}
    expected |= {f"+3247{i:07d}": ids[i] for i in range(1, 1200, 2)}
    expected |= {f"p{i}@example.be": ids[i] for i in range(0, 1200, 3)}
    assert result == expected  # nothing of the other entity, nothing unknown
    assert await store.find_members(e.id) == {}


async def test_member_data_in_bulk(store: SqliteStore) -> None:
    e = await entity(store)
    await group(store, e.id, "plp-1")
    ids = (await store.save_members("plp-1", [person(i) for i in range(12_000)], [])).created
    wanted = [ids[0], ids[5_000], ids[11_999], ids[5_000], 10**9]  # a repeat, an unknown id
    assert await store.member_data(wanted) == {ids[0]: person(0), ids[5_000]: person(5_000),
                                               ids[11_999]: person(11_999)}
    everyone = await store.member_data(ids)  # more than one chunk
    assert len(everyone) == 12_000 and everyone[ids[7_777]] == person(7_777)
    assert await store.member_data([]) == {}


# --- removal and erasure

async def test_remove_member(store: SqliteStore) -> None:
    e = await entity(store)
    await group(store, e.id, "plp-1")
    await group(store, e.id, "plp-2")
    a, b = (await store.save_members("plp-1", [person(1), person(2)], [])).created
    await store.save_members("plp-2", [], [(a, person(1))])
    assert await store.remove_member("plp-1", a)
    m = await store.member(a)
    assert m is not None and m.groups == ("plp-2",)  # still in plp-2: the record stays
    assert not await store.remove_member("plp-1", a)
    assert not await store.remove_member("nope", b)
    assert await store.remove_member("plp-1", b)  # its last group: the record goes
    assert await store.member(b) is None
    assert raw(store, "SELECT COUNT(*) FROM phones WHERE member_id = ?", (b,)) == [(0,)]


async def test_erase_member_leaves_nothing_of_the_person(store: SqliteStore) -> None:
    e = await entity(store)
    await group(store, e.id, "plp-1")
    await group(store, e.id, "plp-2")
    zoe = MemberData(name="Zoëlle Erasable-Vandamme", language=Language.NL,
                     phones=(Phone("+32470999888", PhoneKind.MOBILE), Phone("+3293337777", PhoneKind.FIXED)),
                     emails=("zoelle.erasable@example.be",), external_id="ERASE-ME-42",
                     address="Vergeetstraat 99, 9000 Gent", lat=51.0, lon=3.7)
    others = [person(i) for i in range(50)]
    created = (await store.save_members("plp-1", [*others[:25], zoe, *others[25:]], [])).created
    target = created[25]
    await store.save_members("plp-2", [], [(target, zoe)])
    assert await store.erase_member(target)
    assert not await store.erase_member(target) and not await store.erase_member(999)
    assert await store.member(target) is None
    for sql in ("SELECT * FROM members WHERE id = ?1 OR name LIKE '%Erasable%' "
                "OR external_id = 'ERASE-ME-42'",
                "SELECT * FROM phones WHERE member_id = ?1 OR number IN ('+32470999888', '+3293337777')",
                "SELECT * FROM emails WHERE member_id = ?1 OR address LIKE 'zoelle%'",
                "SELECT * FROM group_members WHERE member_id = ?1"):
        assert raw(store, sql, (target,)) == []
    assert raw(store, "SELECT COUNT(*) FROM members") == [(50,)]
    assert len(await store.members("plp-1", limit=1000)) == 50

    # ids are never given again to someone else
    later = (await store.save_members("plp-1", [person(99)], [])).created[0]
    assert later > max(created)

    # and the bytes are gone from the file (secure_delete), once the WAL is checkpointed
    await store.close()
    with sqlite3.connect(store.path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    content = store.path.read_bytes()
    for secret in ("Zoëlle", "Erasable", "+32470999888", "+3293337777", "zoelle.erasable",
                   "ERASE-ME-42", "Vergeetstraat"):
        assert secret.encode() not in content, secret
    assert b"p49@example.be" in content  # the others are still there


async def test_closed_store_refuses_member_calls(tmp_path: Path) -> None:
    s = SqliteStore.in_data_dir(tmp_path)
    await s.open()
    await s.close()
    with pytest.raises(StoreError, match="closed"):
        await s.save_members("plp-1", [person(1)], [])
    with pytest.raises(StoreError, match="closed"):
        await s.members("plp-1")


# --- atomicity: an import killed halfway leaves all or nothing

_CHILD = textwrap.dedent("""
    import asyncio, sys
    import aiosqlite
    from hub.domain import EntityType, Group, Language, MemberData, Phone, PhoneKind
    from hub.store.sqlite import SqliteStore

    data_dir, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    if mode.startswith("pause"):  # stop for good after the members are written, before the commit
        executemany = aiosqlite.Connection.executemany
        async def paused(self, sql, rows):
            result = await executemany(self, sql, rows)
            if sql.startswith("INSERT INTO emails"):
                print("midway", flush=True)
                await asyncio.sleep(3600)
            return result
        aiosqlite.Connection.executemany = paused

    async def main():
        s = SqliteStore.in_data_dir(data_dir)
        await s.open()
        if mode == "pause-spill":  # a small cache: uncommitted pages spill into the WAL file
            await s._wconn.execute("PRAGMA cache_size=-256")
        e = await s.add_entity("E", EntityType.GROUPS, ["e@x"], signature_required=False,
                               profile="", territory=None)
        await s.add_group(Group(0, "plp-1", e.id, "G"))
        data = [MemberData(name=f"P{i}", language=Language.NL,
                           phones=(Phone(f"+3247{i:07d}", PhoneKind.MOBILE),),
                           emails=(f"p{i}@example.be",)) for i in range(n)]
        print("saving", flush=True)
        await s.save_members("plp-1", data, [])
        print("done", flush=True)
        await s.close()

    asyncio.run(main())
""")


async def _import_and_kill(tmp_path: Path, n: int, mode: str,
                           delay: float) -> tuple[str, int, list[int]]:
    """Run an import of ``n`` members in a child process, SIGKILL it, reopen the store:
    (whether it finished first, the WAL's size at the kill, the rows of each table)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(tmp_path), str(n), mode,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    wanted = b"midway\n" if mode.startswith("pause") else b"saving\n"
    try:
        while (line := await asyncio.wait_for(proc.stdout.readline(), 30)) not in (wanted, b""):
            pass
        if line != wanted:  # the child failed: show why
            await proc.wait()
            assert proc.stderr is not None
            pytest.fail((await proc.stderr.read()).decode()[-3000:])
        await asyncio.sleep(delay)
        wal = tmp_path / f"{FILENAME}-wal"
        wal_size = wal.stat().st_size if wal.exists() else 0
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finished = b"done" in await proc.stdout.read()
    s = SqliteStore.in_data_dir(tmp_path)
    await s.open()  # recovers from the WAL as it was left
    try:
        assert await s.healthy()
        counts = [int(str(raw(s, f"SELECT COUNT(*) FROM {t}")[0][0]))
                  for t in ("members", "phones", "emails", "group_members")]
    finally:
        await s.close()
    return ("done" if finished else "killed"), wal_size, counts


@pytest.mark.parametrize("mode", ["pause", "pause-spill"])
async def test_import_killed_before_its_commit_leaves_nothing(tmp_path: Path, mode: str) -> None:
    """Killed after every row was written, before the commit: nothing. With a small page
    cache, the uncommitted pages were already in the WAL file (several MB) when it died."""
    state, wal_size, counts = await _import_and_kill(tmp_path, 20_000, mode, 0.0)
    assert counts == [0, 0, 0, 0], state
    if mode == "pause-spill":
        assert wal_size > 1_000_000


@pytest.mark.parametrize("delay", [0.3, 0.6, 1.5])
async def test_import_killed_at_any_moment_is_all_or_nothing(tmp_path: Path, delay: float) -> None:
    n = 50_000
    state, wal_size, counts = await _import_and_kill(tmp_path, n, "run", delay)
    print(f"\nkilled {delay}s into the import ({state}, WAL {wal_size} bytes): {counts}")
    assert counts in ([0, 0, 0, 0], [n, n, n, n])


# --- speed (printed, not asserted)

async def test_speed_of_a_100k_import(store: SqliteStore, capsys: pytest.CaptureFixture[str]) -> None:
    e = await entity(store)
    await group(store, e.id, "plp-1")
    n = 100_000
    data = [person(i) for i in range(n)]
    start = time.perf_counter()
    result = await store.save_members("plp-1", data, [])
    saved = time.perf_counter() - start
    start = time.perf_counter()
    keys = await store.find_members(e.id, external_ids=[f"X{i}" for i in range(n)],
                                    contact_points=[c for d in data for c in d.contact_points])
    found = time.perf_counter() - start
    start = time.perf_counter()
    current = await store.member_data(result.created)
    read = time.perf_counter() - start
    start = time.perf_counter()
    updated = await store.save_members("plp-1", [], [(i, person(i + n)) for i in result.created])
    rewritten = time.perf_counter() - start
    start = time.perf_counter()
    nobody = await store.members("plp-1", search="nobody")  # a scan of the whole group
    searched = time.perf_counter() - start
    assert len(result.created) == n and len(keys) == 3 * n and len(current) == n
    assert len(updated.updated) == n and nobody == []
    with capsys.disabled():
        print(f"\n{n} members (1 phone, 1 e-mail each): save_members (create) {saved:.2f} s, "
              f"find_members ({3 * n} keys) {found:.2f} s, member_data {read:.2f} s, "
              f"save_members (update) {rewritten:.2f} s, search without a hit {searched:.2f} s")
