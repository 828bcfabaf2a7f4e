"""Benchmark of the SMTP provider: recipients/s to an aiosmtpd sink, beside bare aiosmtplib.

    PYTHONPATH=. .venv/bin/python bench/email_smtp.py [--recipients 50000] [--batch 500]
                                                      [--connections 2] [--rounds 2]

One aiosmtpd sink runs in a child process (so it does not share the GIL with the client),
accepts everything and counts the recipients of each message it took. Both runs send the same
rendered alert (multipart/alternative + the CAP from tests/fixtures/alert_full.xml) with the
same batch size and the same number of connections, rate limit off:

* ours: ``SmtpProvider.send`` with all recipients in one call (batches spread over the pool),
  every outcome checked.
* bare: ``--connections`` aiosmtplib clients, each a plain loop of ``sendmail(batch)``; the
  ceiling a client can reach on this sink and machine.

The runs alternate for ``--rounds`` rounds; the best round of each is reported.
Targets (issue 6): >= 5,000 recipients/s and >= 0.8x the bare client.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import socket
import time
from datetime import datetime, timedelta, timezone
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import aiosmtplib

from hub.cap.model import Alert, Area, Category, Certainty, Info, MsgType, Scope, Severity, Status, Urgency
from hub.outputs.email_render import render_email
from hub.outputs.email_smtp import SmtpProvider, SmtpSettings

SENDER = "no-reply@be-alert.be"
CAP = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "alert_full.xml"


def _sink(port: int, counter: Synchronized[int], ready: Any) -> None:
    """The child process: an aiosmtpd server that accepts everything and counts recipients."""
    from aiosmtpd.smtp import SMTP, Envelope, Session

    logging.getLogger("mail.log").setLevel(logging.ERROR)

    class Count:
        async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
            with counter.get_lock():
                counter.value += len(envelope.rcpt_tos)
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Count(), hostname="sink"), "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def message() -> bytes:
    cest = timezone(timedelta(hours=2))
    info = Info(
        categories=(Category.MET,), event="Overstroming", urgency=Urgency.IMMEDIATE,
        severity=Severity.SEVERE, certainty=Certainty.OBSERVED, language="nl-BE",
        headline="Overstroming in Gent", description="De Leie is buiten haar oevers getreden.",
        instruction="Blijf binnen en ga naar een hogere verdieping. Vermijd de kelder.",
        web="https://crisiscentrum.be/nl", areas=(Area("Gent"),),
        expires=datetime(2024, 5, 1, 18, 0, tzinfo=cest),
    )
    alert = Alert("BE-2024-0001", "crisiscenter@be-alert.be", datetime(2024, 5, 1, 12, 0, tzinfo=cest),
                  Status.ACTUAL, MsgType.ALERT, Scope.PUBLIC, infos=(info,))
    return render_email(alert, 0, sender=SENDER, reply_to=SENDER, signed_cap=CAP.read_bytes(),
                        message_id_domain="hub.be-alert.be").as_bytes()


async def run_ours(port: int, msg: bytes, rcpts: list[str], batch: int, connections: int) -> float:
    settings = SmtpSettings(host="127.0.0.1", port=port, pool_size=connections, batch_size=batch,
                            local_hostname="bench")
    async with SmtpProvider(settings) as smtp:
        t0 = time.perf_counter()
        outcomes = await smtp.send(msg, SENDER, rcpts)
        elapsed = time.perf_counter() - t0
    bad = sum(not o.ok for o in outcomes)
    if bad or len(outcomes) != len(rcpts):
        raise SystemExit(f"ours: {bad} of {len(outcomes)} not delivered")
    return elapsed


async def run_bare(port: int, msg: bytes, rcpts: list[str], batch: int, connections: int) -> float:
    batches = [rcpts[i:i + batch] for i in range(0, len(rcpts), batch)]
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="bench", start_tls=False)
               for _ in range(connections)]
    for c in clients:
        await c.connect()

    async def loop(client: aiosmtplib.SMTP, mine: list[list[str]]) -> None:
        for b in mine:
            errors, _ = await client.sendmail(SENDER, b, msg)
            assert not errors

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(c, batches[k::connections]) for k, c in enumerate(clients)))
    elapsed = time.perf_counter() - t0
    for c in clients:
        await c.quit()
    return elapsed


async def bench(args: argparse.Namespace, port: int, counter: Synchronized[int]) -> None:
    msg = message()
    rcpts = [f"user{i:06d}@example.org" for i in range(args.recipients)]
    n = len(rcpts)
    print(f"{n} recipients, {len(msg)} bytes per message, batch {args.batch}, "
          f"{args.connections} connection(s), sink in a child process")
    best = {"ours": float("inf"), "bare": float("inf")}
    for r in range(args.rounds):
        for name, run in (("bare", run_bare), ("ours", run_ours)):
            before = counter.value
            t = await run(port, msg, rcpts, args.batch, args.connections)
            got = counter.value - before
            if got != n:
                raise SystemExit(f"{name}: the sink counted {got} recipients, expected {n}")
            best[name] = min(best[name], t)
            print(f"round {r + 1} {name}: {n / t:,.0f} recipients/s ({t:.2f} s)")
    ours, bare = n / best["ours"], n / best["bare"]
    print(f"best ours: {ours:,.0f} recipients/s   bare aiosmtplib: {bare:,.0f} recipients/s   "
          f"ratio {ours / bare:.2f}x")
    print(f"targets: >= 5,000/s {'met' if ours >= 5000 else 'MISSED'}; "
          f">= 0.8x bare {'met' if ours >= 0.8 * bare else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipients", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    ctx = mp.get_context("spawn")
    counter: Synchronized[int] = ctx.Value("q", 0)
    ready = ctx.Event()
    port = free_port()
    sink = ctx.Process(target=_sink, args=(port, counter, ready), daemon=True)
    sink.start()
    try:
        if not ready.wait(10):
            raise SystemExit("the sink did not start")
        asyncio.run(bench(args, port, counter))
    finally:
        sink.terminate()
        sink.join(5)


if __name__ == "__main__":
    main()
