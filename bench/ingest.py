"""Benchmark of ingest over HTTP: signed 10 KB CAP alerts posted to a real `cap-hub serve`.

    .venv/bin/python bench/ingest.py [--alerts N] [--concurrency C]     (N=2000, C=32)

A fresh data directory in a temporary folder gets an entity (with the certificate of a key
made for the run), a coordinator account and a token; then the real server is started as a
separate process (`cap-hub serve --data DIR --port PORT`), so that client and server share
neither a Python process nor a GIL. N distinct signed alerts of about 10 KB are built before
any timing. One aiohttp ClientSession with a connector limit of C posts them, C at a time.

Every figure is printed beside a baseline measured in the same run, because this machine is
shared and noisy: the same client, the same N, C and bodies, against a trivial aiohttp
server (also a separate process) whose POST handler reads the body and answers 202. The
ratio is what to compare between runs. Targets: p99 < 50 ms and >= 500 alerts/s.

A second reference, the crypto floor (bench/_crypto_floor.py, one copy per core on one
port): a server that only verifies each body's signature with bare signxml and answers an
Ack signed with bare signxml, which any hub that checks signatures and answers signed must
do at least. On this machine that floor is far below the trivial server: it says what the
machine allows a signing hub at that moment, and the ratio to it what cap-hub adds.
CPU time per request is printed for the server (user + system, all its threads and the worker
processes it started, from /proc, where it exists) and for the client (this process), as the
client shares the machine. `--api-only` runs `cap-hub api` (needs CAPHUB_AMQP_URL): ingest
without the routing, tracking and push stages that `serve` also runs in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._servers import Server, cap_hub_argv, finish, free_port  # noqa: E402
from hub.cap import devkeys  # noqa: E402
from hub.cap.sign import sign  # noqa: E402
from hub.domain import EntityType, Role  # noqa: E402
from hub.services import admin  # noqa: E402
from hub.wiring import open_store  # noqa: E402

TARGET_P99_MS = 50.0
TARGET_RATE = 500.0
SENDER = "bench@example.be"
ENTITY, ACCOUNT = "Bench", "bench-account"
FLOOR_PROCESSES = os.cpu_count() or 1  # the floor server's copies: one per core
WARMUP = 64  # requests per server before timing (connections opened, code paths warm)

# The baseline: a trivial aiohttp server whose POST handler reads the body and answers 202.
BASELINE_SERVER = """
import sys
from aiohttp import web

async def post(request):
    await request.read()
    return web.Response(status=202)

async def health(request):
    return web.Response(text="ok")

app = web.Application(client_max_size=8 * 1024 * 1024)
app.router.add_post("/cap", post)
app.router.add_get("/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


# --- set-up -----------------------------------------------------------------------------------


async def register(data_dir: Path, cert_pem: bytes) -> str:
    """Entity (with the certificate), account and token in a fresh store; returns the token."""
    store = open_store(data_dir)
    await store.open()
    try:
        await admin.add_entity(store, ENTITY, EntityType.GROUPS, [SENDER],
                               certificates=[("bench", cert_pem)], signature_required=True)
        await admin.add_account(store, ENTITY, ACCOUNT, Role.COORDINATOR)
        return await admin.new_account_token(store, ACCOUNT)
    finally:
        await store.close()


def build_alerts(count: int, key_pem: bytes, cert_pem: bytes, tag: str) -> list[bytes]:
    """``count`` distinct signed Actual alerts of about 10 KB (a padded <description>)."""
    sent = datetime.now(UTC).replace(microsecond=0).astimezone(timezone(timedelta(hours=1)))
    expires = (sent + timedelta(hours=2)).isoformat()
    filler = " Blijf op de hoogte via de lokale radio en de website van uw gemeente." * 106
    docs = []
    for n in range(count):
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
            f"<identifier>BENCH-{tag}-{n:06d}</identifier><sender>{SENDER}</sender>"
            f"<sent>{sent.isoformat()}</sent><status>Actual</status><msgType>Alert</msgType>"
            "<scope>Public</scope>"
            "<info><language>nl-BE</language><category>Safety</category><event>Brand</event>"
            "<urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>"
            f"<expires>{expires}</expires><headline>Zware rookontwikkeling ({n})</headline>"
            f"<description>Een grote brand veroorzaakt veel rook.{filler}</description>"
            "<instruction>Blijf binnen. Sluit ramen en deuren.</instruction>"
            "<area><areaDesc>Centrum</areaDesc><polygon>50.83,4.33 50.83,4.38 50.87,4.38 "
            "50.87,4.33 50.83,4.33</polygon></area></info></alert>"
        )
        docs.append(sign(doc.encode(), key_pem, cert_pem))
    return docs



def crypto_floor(tmp: Path, key_pem: bytes, cert_pem: bytes) -> Server:
    """bench/_crypto_floor.py on a free port: bare signxml verify + a signed Ack, on every core."""
    cert, key = tmp / "floor-cert.pem", tmp / "floor-key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "_crypto_floor.py"), str(port), str(cert), str(key),
            str(FLOOR_PROCESSES)]
    return Server("crypto floor", argv, port, tmp / "floor.log")


# --- the client -------------------------------------------------------------------------------


@dataclass
class Result:
    seconds: float
    latencies: list[float]  # seconds, one per request
    statuses: Counter[int]
    sample: tuple[int, bytes] | None  # the first unexpected answer
    cpu: float | None  # server CPU seconds during the timed run
    client_cpu: float  # this process's CPU seconds during the timed run

    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, p: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
        return ordered[rank - 1] * 1000


async def post_all(server: Server, bodies: list[bytes], concurrency: int, token: str,
                   expect: int) -> tuple[float, list[float], Counter[int], tuple[int, bytes] | None]:
    headers = {"Content-Type": "application/cap+xml", "Authorization": f"Bearer {token}"}
    url = f"{server.base}/cap"
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    sample: tuple[int, bytes] | None = None
    todo = iter(bodies)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sample
        for body in todo:  # one shared iterator: each body is posted once
            start = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    answer = await resp.read()
                    status = resp.status
            except aiohttp.ClientError as exc:
                status, answer = -1, repr(exc).encode()
            latencies.append(time.perf_counter() - start)
            statuses[status] += 1
            if status != expect and sample is None:
                sample = (status, answer)

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return elapsed, latencies, statuses, sample


def run_client(server: Server, warmup: list[bytes], bodies: list[bytes], concurrency: int,
               token: str, expect: int) -> Result:
    asyncio.run(post_all(server, warmup, concurrency, token, expect))
    cpu0, mine0 = server.cpu_seconds(), time.process_time()
    seconds, latencies, statuses, sample = asyncio.run(
        post_all(server, bodies, concurrency, token, expect))
    cpu1, mine1 = server.cpu_seconds(), time.process_time()
    cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    return Result(seconds, latencies, statuses, sample, cpu, mine1 - mine0)


# --- the run ----------------------------------------------------------------------------------


def line(label: str, r: Result, expect: int) -> str:
    per = 1000 / len(r.latencies)
    cpu = f"  CPU ms/req: server {r.cpu * per:5.2f}" if r.cpu is not None else "  CPU ms/req:"
    cpu += f", client {r.client_cpu * per:4.2f}"
    bad = sum(n for s, n in r.statuses.items() if s != expect)
    return (f"  {label:<26}{r.rate():9,.0f} req/s  p50 {r.pct(50):7.1f} ms  p99 {r.pct(99):7.1f} ms"
            f"  non-{expect}: {bad}{cpu}")


def report_unexpected(label: str, r: Result, expect: int) -> None:
    bad = {s: n for s, n in r.statuses.items() if s != expect}
    if not bad:
        return
    print(f"  {label}: {sum(bad.values())} answer(s) not {expect}: "
          + ", ".join(f"{s}: {n}" for s, n in sorted(bad.items())))
    if r.sample is not None:
        status, body = r.sample
        print(f"    first ({status}): {body[:600].decode(errors='replace')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=2000, metavar="N", help="alerts to post (default 2000)")
    ap.add_argument("--concurrency", type=int, default=32, metavar="C",
                    help="requests in flight (default 32)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (data, logs)")
    ap.add_argument("--api-only", action="store_true",
                    help="run `cap-hub api` (ingest alone) instead of `cap-hub serve` (every stage)")
    args = ap.parse_args()
    n, c = args.alerts, args.concurrency
    if n < 1 or c < 1:
        ap.error("--alerts and --concurrency must be at least 1")

    tmp = Path(tempfile.mkdtemp(prefix="caphub-bench-ingest-"))
    data = tmp / "data"
    servers: list[Server] = []
    try:
        key_pem, cert_pem = devkeys.new_identity("bench ingest")
        token = asyncio.run(register(data, cert_pem))
        t0 = time.perf_counter()
        warmup = build_alerts(WARMUP, key_pem, cert_pem, "W")
        bodies = build_alerts(n, key_pem, cert_pem, "M")
        size = sum(len(b) for b in bodies) / n
        print(f"ingest over HTTP: {n:,} distinct signed alerts of {size / 1024:.1f} KB "
              f"(built in {time.perf_counter() - t0:.1f} s), concurrency {c}, "
              f"{os.cpu_count()} CPU(s); {WARMUP} warm-up requests per server, not counted")

        hub_argv = cap_hub_argv()
        base_port, hub_port = free_port(), free_port()
        baseline = Server("baseline server", [sys.executable, "-c", BASELINE_SERVER, str(base_port)],
                          base_port, tmp / "baseline.log")
        servers.append(baseline)
        command = "api" if args.api_only else "serve"
        hub = Server(f"cap-hub {command}", [*hub_argv, command, "--data", str(data), "--port", str(hub_port)],
                     hub_port, tmp / "serve.log")
        servers.append(hub)
        baseline.wait_healthy()
        hub.wait_healthy()

        base = run_client(baseline, warmup, bodies, c, token, 202)
        ours = run_client(hub, warmup, bodies, c, token, 201)
        hub.stop()  # leaves the machine to the floor
        floor_server = crypto_floor(tmp, key_pem, cert_pem)
        servers.append(floor_server)
        floor_server.wait_healthy()
        floor = run_client(floor_server, warmup, bodies, c, token, 201)

        print(line("baseline (read, 202)", base, 202))
        print(line(f"crypto floor ({FLOOR_PROCESSES} proc.)", floor, 201))
        print(line(f"cap-hub {command}: POST /cap", ours, 201))
        print(f"  ratio                     {ours.rate() / base.rate():9.3f}x throughput, "
              f"p50 {ours.pct(50) / base.pct(50):.1f}x, p99 {ours.pct(99) / base.pct(99):.1f}x the baseline")
        print(f"  ratio to the floor        {ours.rate() / floor.rate():9.3f}x throughput, "
              f"p50 {ours.pct(50) / floor.pct(50):.1f}x, p99 {ours.pct(99) / floor.pct(99):.1f}x the floor")
        ok_rate = "met" if ours.rate() >= TARGET_RATE else "MISSED"
        ok_p99 = "met" if ours.pct(99) < TARGET_P99_MS else "MISSED"
        print(f"  targets                   >= {TARGET_RATE:,.0f} alerts/s: {ok_rate} ({ours.rate():,.0f}); "
              f"p99 < {TARGET_P99_MS:g} ms: {ok_p99} ({ours.pct(99):.1f} ms)")
        report_unexpected("baseline", base, 202)
        report_unexpected("crypto floor", floor, 201)
        report_unexpected("cap-hub", ours, 201)
        if ours.statuses[201] != n:
            print("  INVALID RUN: not every alert was accepted, so the cap-hub figures do not measure "
                  f"ingest. Last lines of {hub.log.name}:")
            print("    " + hub.tail(30).replace("\n", "\n    "))
            return 1
        return 0
    finally:
        finish(tmp, args.keep, servers)


if __name__ == "__main__":
    sys.exit(main())
