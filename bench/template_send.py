"""Benchmark: a prepared template sent in one call, until its first delivery leaves a worker.

    PYTHONPATH=. .venv/bin/python bench/template_send.py [--members 5000] [--runs 5]

``Hub.start`` on the embedded broker with the simulator providers (rates as the defaults:
SMS 500/s, e-mail 2,500/s), served over real HTTP on 127.0.0.1, one PLP group of N members
(SMS and e-mail each). Each run times one ``POST /templates/{id}:send`` from the moment the
request is sent until the first provider call of its campaign (the first SMS or e-mail handed
to a provider), then waits until the campaign is done. The baseline, in the same run: the
same alert built and signed by the client and sent with ``POST /cap``, timed the same way.

Target (issue 9): the first delivery starts within 1 s of the send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hub.api.app import create_app
from hub.cap import devkeys
from hub.cap.sign import sign
from hub.config import Settings, SignatureSettings
from hub.domain import CampaignState, Channel, EntityType, Role
from hub.services import admin
from hub.services.members import ADMIN
from hub.services.templates import build_cap, check_template
from hub.store.sql_templates import StoredTemplate
from hub.wiring import Hub
from tests.api.test_templates import FIRE
from tests.services.test_router import TERRITORY
from tests.test_serve import free_port

KEY = devkeys.new_identity("police")


def members_csv(n: int) -> bytes:
    rows = [b"naam;gsm;e-mail;taal"]
    rows += [f"M{i};04{70 + i // 1_000_000}{i % 1_000_000:06d};user{i:06d}@example.org;nl".encode()
             for i in range(n)]
    return b"\n".join(rows) + b"\n"


class FirstSend:
    """Wraps the workers' providers: the time of the first send after ``arm``."""

    def __init__(self, hub: Hub) -> None:
        self.at: float | None = None
        self.event = asyncio.Event()
        for channel in (Channel.SMS, Channel.EMAIL):  # the members have no voice channel here
            self._wrap(hub.providers[channel])

    def _wrap(self, provider: Any) -> None:
        original = provider.send

        async def send(*args: Any, **kw: Any) -> Any:
            if self.at is None:
                self.at = time.perf_counter()
                self.event.set()
            return await original(*args, **kw)

        provider.send = send

    def arm(self) -> None:
        self.at = None
        self.event.clear()


async def done(hub: Hub, alert_id: int) -> None:
    while True:
        campaign = await hub.store.campaign_for_alert(alert_id)
        if campaign is not None and campaign.state is CampaignState.DONE:
            return
        await asyncio.sleep(0.05)


async def main(members: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        hub = await Hub.start(Settings(data_dir=str(data), signature=SignatureSettings()), data)
        runner = web.AppRunner(create_app(hub))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                               certificates=[("bench", KEY[1])])
            await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
            token = await admin.new_account_token(hub.store, "dispatch")
            await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
            await hub.members.import_csv(ADMIN, "plp-a", members_csv(members))
            first = FirstSend(hub)
            url = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{url}/templates", json={"name": "brand", "template": FIRE},
                                     headers=headers) as resp:
                    assert resp.status == 201, await resp.text()
                    template_id = (await resp.json())["id"]
                body = check_template("brand", FIRE)
                made = datetime.now(UTC)
                stub = StoredTemplate(template_id, entity.id, "brand", json.dumps(body), made, made)
                timings: dict[str, list[float]] = {"template": [], "post": []}
                for run in range(runs):
                    for how in ("template", "post"):
                        first.arm()
                        if how == "post":  # the client builds and signs the same alert itself
                            doc = sign(build_cap(stub, body, {"straat": f"Markt {run}"},
                                                 sender="pz@example.be", now=datetime.now(UTC),
                                                 identifier=f"bench-{run}"), *KEY)
                        started = time.perf_counter()
                        if how == "template":
                            async with http.post(f"{url}/templates/{template_id}:send", headers=headers,
                                                 json={"values": {"straat": f"Kerkstraat {run}"}}) as resp:
                                answer = await resp.json()
                        else:
                            async with http.post(f"{url}/cap", data=doc, headers={
                                    **headers, "Content-Type": "application/cap+xml"}) as resp:
                                answer = await resp.json()
                        assert answer["status"] == "accepted", answer
                        await asyncio.wait_for(first.event.wait(), 30)
                        assert first.at is not None
                        timings[how].append(first.at - started)
                        await done(hub, answer["alert"]["id"])
            sms = hub.providers[Channel.SMS]
            print(f"template send → first delivery, {members:,} members (SMS + e-mail), {runs} runs, "
                  f"embedded broker, simulator providers ({sms.submits:,} SMS sent in all)")
            for how, label in (("template", "POST /templates/{id}:send"), ("post", "POST /cap (baseline)")):
                t = timings[how]
                print(f"  {label:<28} median {statistics.median(t) * 1000:7.1f} ms   "
                      f"max {max(t) * 1000:7.1f} ms")
            ratio = statistics.median(timings["template"]) / statistics.median(timings["post"])
            worst = max(timings["template"])
            print(f"  ratio template/baseline (median): {ratio:.2f}x;  target: first delivery within "
                  f"1 s: {'met' if worst < 1.0 else 'NOT met'} (worst {worst * 1000:.0f} ms)")
        finally:
            await runner.cleanup()
            await hub.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=5)
    a = parser.parse_args()
    asyncio.run(main(a.members, a.runs))
