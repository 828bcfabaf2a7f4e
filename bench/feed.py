"""Benchmark of the free CAP feed: full GETs and conditional GETs (304) of /feeds/alerts.atom.

    .venv/bin/python bench/feed.py [--alerts N] [--concurrency C] [--full F] [--conditional K]
                                   (N=1000, C=64, F=1500, K=6000)

A fresh data directory gets N active public Actual alerts (posted through ingest, in process,
before any timing); then the real server is started as a separate process (`cap-hub serve
--data DIR --port PORT`), so that client and server share neither a Python process nor a GIL.
The feed's first page (at most 900 KB; the rest is behind rel="next") is read once and written
to a file, and the baseline is a trivial aiohttp server (also a separate process) serving that
same file with ``web.FileResponse`` (which answers If-None-Match with 304 itself).

Measured against both, with the same client (one aiohttp session, C requests in flight):
* full GET: ``Accept-Encoding: identity``, the whole page read;
* conditional GET: ``If-None-Match`` with the server's own ETag, answered 304.
The ratio to the baseline is what to compare between runs (the machine is shared and noisy).
Target: >= 0.8x the baseline for both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._servers import Server, cap_hub_argv, finish, free_port  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.domain import EntityType, Role  # noqa: E402
from hub.services import admin  # noqa: E402
from hub.services.ingest import Caller  # noqa: E402
from hub.wiring import Hub  # noqa: E402

TARGET = 0.8
SENDER = "bench@example.be"
FEED = "/feeds/alerts.atom"
WARMUP = 128

BASELINE_SERVER = """
import sys
from aiohttp import web

PATH = sys.argv[2]

async def feed(request):
    return web.FileResponse(PATH, headers={"Content-Type": "application/atom+xml; charset=utf-8"})

async def health(request):
    return web.Response(text="ok")

app = web.Application()
app.router.add_get("/feeds/alerts.atom", feed)
app.router.add_get("/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def alert(n: int, sent: datetime) -> bytes:
    expires = (sent + timedelta(hours=6)).isoformat()
    lat, lon = 50.5 + (n % 50) / 100, 4.0 + (n // 50) / 100
    ring = f"{lat},{lon} {lat},{lon + 0.05} {lat + 0.05},{lon + 0.05} {lat + 0.05},{lon} {lat},{lon}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
        f"<identifier>FEED-{n:05d}</identifier><sender>{SENDER}</sender>"
        f"<sent>{(sent - timedelta(seconds=n)).isoformat()}</sent><status>Actual</status>"
        "<msgType>Alert</msgType><scope>Public</scope><info><language>nl-BE</language>"
        "<category>Safety</category><event>Brand</event><urgency>Immediate</urgency>"
        "<severity>Severe</severity><certainty>Observed</certainty>"
        f"<expires>{expires}</expires><headline>Zware rookontwikkeling ({n})</headline>"
        "<description>Een grote brand veroorzaakt veel rook. Sluit ramen en deuren.</description>"
        f"<area><areaDesc>Zone {n}</areaDesc><polygon>{ring}</polygon>"
        f"<geocode><valueName>NIS</valueName><value>{21000 + n % 20}</value></geocode></area>"
        "</info></alert>").encode()


async def populate(data: Path, count: int) -> None:
    """``count`` active alerts through ingest (unsigned: the entity's signature is optional)."""
    hub = await Hub.start(Settings(data_dir=str(data)), data, roles=frozenset({"api"}))
    try:
        entity, _ = await admin.add_entity(hub.store, "Bench", EntityType.GROUPS, [SENDER],
                                           signature_required=False)
        account = await admin.add_account(hub.store, "Bench", "bench", Role.COORDINATOR)
        caller = Caller(account, entity)
        sent = datetime.now(UTC).replace(microsecond=0)
        for n in range(count):
            outcome = await hub.ingest.post(alert(n, sent), caller)
            if outcome.status != 201:
                raise RuntimeError(f"alert {n} refused: {[str(p) for p in outcome.problems]}")
    finally:
        await hub.stop()



@dataclass
class Result:
    seconds: float
    requests: int
    statuses: Counter[int]
    cpu: float | None

    def rate(self) -> float:
        return self.requests / self.seconds


async def hammer(url: str, headers: dict[str, str], count: int,
                 concurrency: int) -> tuple[float, Counter[int]]:
    statuses: Counter[int] = Counter()
    left = count

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            try:
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
            except aiohttp.ClientError:
                statuses[-1] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                     timeout=aiohttp.ClientTimeout(total=300)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - start, statuses


def measure(server: Server, headers: dict[str, str], count: int, concurrency: int) -> Result:
    url = server.base + FEED
    asyncio.run(hammer(url, headers, WARMUP, concurrency))
    cpu0 = server.cpu_seconds()
    seconds, statuses = asyncio.run(hammer(url, headers, count, concurrency))
    cpu1 = server.cpu_seconds()
    return Result(seconds, count, statuses, None if cpu0 is None or cpu1 is None else cpu1 - cpu0)


def first_page(server: Server) -> tuple[bytes, str]:
    request = urllib.request.Request(server.base + FEED, headers={"Accept-Encoding": "identity"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return resp.read(), resp.headers["ETag"]


def etag_of(server: Server) -> str:
    request = urllib.request.Request(server.base + FEED, headers={"Accept-Encoding": "identity"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        resp.read()
        return str(resp.headers["ETag"])


def line(label: str, r: Result) -> str:
    cpu = f"  server CPU {r.cpu * 1000 / r.requests:6.3f} ms/req" if r.cpu is not None else ""
    answers = ", ".join(f"{s}: {n}" for s, n in sorted(r.statuses.items()))
    return f"  {label:<32}{r.rate():9,.0f} req/s  ({r.requests:,} in {r.seconds:5.2f} s; {answers}){cpu}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=1000, metavar="N")
    ap.add_argument("--concurrency", type=int, default=64, metavar="C")
    ap.add_argument("--full", type=int, default=1500, metavar="F", help="full GETs timed per server")
    ap.add_argument("--conditional", type=int, default=6000, metavar="K", help="304 GETs timed per server")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (data, logs)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="caphub-bench-feed-"))
    data = tmp / "data"
    servers: list[Server] = []
    try:
        t0 = time.perf_counter()
        asyncio.run(populate(data, args.alerts))
        print(f"feed: {args.alerts:,} active public alerts (stored in {time.perf_counter() - t0:.1f} s), "
              f"concurrency {args.concurrency}, {os.cpu_count()} CPU(s); {WARMUP} warm-up requests per "
              "measurement, not counted")
        hub_argv = cap_hub_argv()
        hub_port, base_port = free_port(), free_port()
        hub = Server("cap-hub serve", [*hub_argv, "serve", "--data", str(data), "--port", str(hub_port)],
                     hub_port, tmp / "serve.log")
        servers.append(hub)
        hub.wait_healthy(timeout=60)
        body, hub_etag = first_page(hub)
        static = tmp / "alerts.atom"
        static.write_bytes(body)
        entries = body.count(b"<entry")
        baseline = Server("baseline", [sys.executable, "-c", BASELINE_SERVER, str(base_port), str(static)],
                          base_port, tmp / "baseline.log")
        servers.append(baseline)
        baseline.wait_healthy()
        base_etag = etag_of(baseline)
        print(f"  first page: {len(body):,} bytes, {entries} entries (rel=next for the rest)")

        plain = {"Accept-Encoding": "identity"}
        full_base = measure(baseline, plain, args.full, args.concurrency)
        full_hub = measure(hub, plain, args.full, args.concurrency)
        cond_base = measure(baseline, {**plain, "If-None-Match": base_etag}, args.conditional,
                            args.concurrency)
        cond_hub = measure(hub, {**plain, "If-None-Match": hub_etag}, args.conditional, args.concurrency)

        print(line("baseline static file, 200", full_base))
        print(line("cap-hub feed, 200", full_hub))
        full_ratio = full_hub.rate() / full_base.rate()
        print(line("baseline static file, 304", cond_base))
        print(line("cap-hub feed, 304", cond_hub))
        cond_ratio = cond_hub.rate() / cond_base.rate()
        print(f"  ratio to the baseline: full GET {full_ratio:.2f}x, conditional GET {cond_ratio:.2f}x "
              f"(target >= {TARGET}x: {'met' if min(full_ratio, cond_ratio) >= TARGET else 'MISSED'})")
        wrong = [(label, r) for label, r, want in (("full", full_hub, 200), ("conditional", cond_hub, 304),
                                                    ("baseline full", full_base, 200),
                                                    ("baseline conditional", cond_base, 304))
                 if set(r.statuses) != {want}]
        if wrong:
            for label, r in wrong:
                print(f"  INVALID RUN: {label} answers {dict(r.statuses)}")
            print("    " + hub.tail(30).replace("\n", "\n    "))
            return 1
        return 0
    finally:
        finish(tmp, args.keep, servers)


if __name__ == "__main__":
    sys.exit(main())
