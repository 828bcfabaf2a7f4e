"""The durable floor of an SMS worker: the bare SMPP client plus the least bookkeeping issue 6 asks.

bench/sms_smpp.py's bare client parses nothing and stores nothing. A worker must at least
(a) mark what it is about to send, durably, before it sends (so a restart does not send it
twice), (b) store each submit's message id once the SMSC answered (so receipts arriving
hours later find their delivery) and (c) store each receipt's outcome, findable by the
message id. This client does exactly that and nothing more: the same binds, window and
hand-packed frames as the bare client, and one SQLite file (WAL, ``synchronous=FULL``,
written by one thread, as the hub's store is) with one row per recipient. Per chunk of 500:
a claim, then the ids once every resp of the chunk is in. Receipts' ids are read from their
text by one regular expression and stored in batches in a table of their own, keyed by the
id (a receipt often comes before its submit's id is stored). No events, no counts, no
prices, no tracker.

What it reaches beside the bare client, in the same run, says how far the store alone keeps
a worker from the bare client on this machine.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import struct
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hub.outputs.smpp import pdu as p

CHUNK = 500
_RECEIPT_ID = re.compile(rb"id:(\S+)")


class _Store:
    """One connection on one thread, every write a committed transaction."""

    def __init__(self, path: Path, n: int) -> None:
        self._thread = ThreadPoolExecutor(1)
        self._thread.submit(self._open, path, n).result()

    def _open(self, path: Path, n: int) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, state TEXT NOT NULL, message_id TEXT)")
        self.conn.execute("CREATE UNIQUE INDEX d_message ON d (message_id)")
        self.conn.execute("CREATE TABLE r (message_id TEXT PRIMARY KEY, state TEXT NOT NULL)")
        self.conn.executemany("INSERT INTO d (id, state) VALUES (?, 'queued')", ((i,) for i in range(n)))

    def _tx(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(sql, rows)
        self.conn.execute("COMMIT")

    async def write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._tx, sql, rows)

    def undelivered(self) -> int:
        """Rows whose receipt is not stored."""
        sql = "SELECT COUNT(*) FROM d LEFT JOIN r USING (message_id) WHERE r.state IS NULL"
        return int(self._thread.submit(lambda: self.conn.execute(sql).fetchone()[0]).result())

    def close(self) -> None:
        self._thread.submit(self.conn.close).result()
        self._thread.shutdown()


class _Durable(asyncio.Protocol):
    """One bind: chunks claimed, sent with ``window`` in flight, their ids stored, receipts stored."""

    def __init__(self, store: _Store, ids: list[int], bodies: list[bytes], window: int) -> None:
        self.store, self.ids, self.bodies, self.window = store, ids, bodies, window
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.bound = asyncio.Event()
        self.slots = asyncio.Semaphore(window)
        self.resp: dict[int, asyncio.Future[str]] = {}
        self.receipts: list[tuple[str]] = []
        self.received = 0
        self.seq = 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(p.encode(p.BindTransceiver(sequence_number=1, system_id="floor", password="pw")))

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buf = self.buf
        buf += data
        pos, replies = 0, []
        while len(buf) - pos >= 16:
            length, cid, _status, seq = struct.unpack_from(">IIII", buf, pos)
            if len(buf) - pos < length:
                break
            if cid == 0x80000004:
                end = buf.index(b"\0", pos + 16)
                fut = self.resp.pop(seq)
                fut.set_result(bytes(buf[pos + 16:end]).decode("latin-1"))
                self.slots.release()
            elif cid == 0x00000005:
                m = _RECEIPT_ID.search(buf, pos + 16, pos + length)
                if m is not None:
                    self.receipts.append((m.group(1).decode("latin-1"),))
                replies.append(struct.pack(">IIII", 17, 0x80000005, 0, seq) + b"\0")
            elif cid == 0x80000009:
                self.bound.set()
            pos += length
        del buf[:pos]
        if replies:
            self.transport.write(b"".join(replies))

    async def run(self) -> None:
        await self.bound.wait()
        flusher = asyncio.create_task(self._store_receipts())
        chunks = [asyncio.create_task(self._chunk(k)) for k in range(0, len(self.ids), CHUNK)]
        await asyncio.gather(*chunks)
        await flusher

    async def _chunk(self, start: int) -> None:
        ids = self.ids[start:start + CHUNK]
        await self.store.write("UPDATE d SET state = 'sending' WHERE id = ?", [(i,) for i in ids])
        futures = []
        assert self.transport is not None
        for k in range(start, start + len(ids)):
            await self.slots.acquire()
            self.seq += 1
            fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self.resp[self.seq] = fut
            body = self.bodies[k]
            self.transport.write(struct.pack(">IIII", 16 + len(body), 4, 0, self.seq) + body)
            futures.append(fut)
        message_ids = await asyncio.gather(*futures)
        await self.store.write("UPDATE d SET state = 'submitted', message_id = ? WHERE id = ?",
                               list(zip(message_ids, ids, strict=True)))

    async def _store_receipts(self) -> None:
        while self.received < len(self.ids):
            batch, self.receipts = self.receipts, []
            if not batch:
                await asyncio.sleep(0.005)
                continue
            # Keyed by the message id, as the receipt may come before its id is stored in d.
            await self.store.write("INSERT INTO r (message_id, state) VALUES (?, 'delivered')", batch)
            self.received += len(batch)


async def run_floor(port: int, n: int, binds: int, window: int) -> float:
    """Seconds for ``n`` submits and their receipts, stored as above; the same bodies as the
    bare client's (bench/sms_smpp.py)."""
    loop = asyncio.get_running_loop()
    bodies = [p.sm_body(p.SubmitSm(sequence_number=0, source_addr_ton=3, source_addr="1789", dest_addr_ton=1,
                                   dest_addr_npi=1, destination_addr=f"3247{i:07d}", registered_delivery=1,
                                   short_message=b"BE-Alert test message")) for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="caphub-sms-floor-") as tmp:
        store = _Store(Path(tmp) / "floor.sqlite3", n)
        try:
            shares = [list(range(k, n, binds)) for k in range(binds)]
            t0 = time.perf_counter()
            protocols = []
            for ids in shares:
                proto = _Durable(store, ids, [bodies[i] for i in ids], window)
                await loop.create_connection(lambda proto=proto: proto, "127.0.0.1", port)
                protocols.append(proto)
            await asyncio.wait_for(asyncio.gather(*(proto.run() for proto in protocols)), 120)
            elapsed = time.perf_counter() - t0
            for proto in protocols:
                assert proto.transport is not None
                proto.transport.close()
            left = store.undelivered()
            if left:
                raise RuntimeError(f"durable floor: {left} of {n} not delivered")
        finally:
            store.close()
    return elapsed
