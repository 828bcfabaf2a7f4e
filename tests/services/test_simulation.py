"""The simulation environment end to end through ``Hub.start``, beside real peers: an SMSC
(the node-smpp simulator) and an SMTP server (aiosmtpd). A normal campaign reaches them; a
simulation campaign (an Exercise alert, an alert of a simulation entity, any alert of a hub
in simulation) runs the same stages on simulators and the peers count nothing of it."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from hub.config import AmqpSettings, EmailSettings, SimulationSettings
from hub.domain import Channel, EntityType, Role
from hub.outputs.simulator import SimulatorSmsProvider
from hub.services import admin
from hub.services.ingest import Caller
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.api.conftest import campaign_done
from tests.broker.conftest import Rabbit, rabbit
from tests.outputs.test_email_smtp import Sink, free_port
from tests.peers.smsc_peer import Smsc
from tests.services.test_router import MEMBERS, TERRITORY, cap, post
from tests.services.test_worker_peers import KEYS, deliveries, hubs, sink, smpp, smsc, start

__all__ = ["hubs", "rabbit", "sink", "smsc"]

# Late receipts come quickly here, so that the test waits for them.
SIMULATION = SimulationSettings(late_share=0.5, late_min=0.05, late_max=0.3, latency_max=0.01, seed=7)


def smtp(peer: Sink) -> EmailSettings:
    return EmailSettings(provider="smtp", host="127.0.0.1", port=peer.port, pool_size=1)


async def finished(hub: Hub, alert_id: int) -> int:
    return (await campaign_done(hub, alert_id)).id


async def add_simulation_entity(hub: Hub, keypairs: KEYS) -> None:
    entity, _ = await admin.add_entity(hub.store, "Oefen", EntityType.GROUPS, ["oefen@example.be"],
                                       certificates=[("t", keypairs["commune"][1])], simulation=True)
    assert entity.simulation
    await admin.add_account(hub.store, "Oefen", "oefenaar", Role.COORDINATOR)
    await hub.members.add_group(ADMIN, entity, "plp-oefen", "PLP Oefen", territory=TERRITORY)
    await hub.members.import_csv(ADMIN, "plp-oefen", MEMBERS)


async def post_as(hub: Hub, account: str, entity: str, data: bytes) -> int:
    acc, ent = await hub.store.account_by_name(account), await hub.store.entity_by_name(entity)
    assert acc is not None and ent is not None
    outcome = await hub.ingest.post(data, Caller(acc, ent))
    assert outcome.status == 201 and outcome.stored is not None, outcome.problems
    return outcome.stored.id


async def test_nothing_of_a_simulation_reaches_a_real_provider(
        tmp_path: Path, keypairs: KEYS, smsc: Smsc, sink: Sink, hubs: list[Hub]) -> None:
    hub = await start(tmp_path, keypairs, sms=smpp(smsc), email=smtp(sink), simulation=SIMULATION)
    hubs.append(hub)
    await add_simulation_entity(hub, keypairs)
    # an Exercise of a normal entity, and an Actual alert of a simulation entity
    exercise = await post(hub, keypairs, cap("EX-1", status="Exercise"))
    oefen = cap("OE-1").replace(b"pz@example.be", b"oefen@example.be")
    from hub.cap.sign import sign
    entity_sim = await post_as(hub, "oefenaar", "Oefen", sign(oefen, *keypairs["commune"]))
    simulated = [await finished(hub, exercise), await finished(hub, entity_sim)]
    assert smsc.submits() == [] and sink.rcpt_seen == 0 and sink.received == []
    for campaign_id in simulated:
        campaign = await hub.store.campaign(campaign_id)
        assert campaign is not None and campaign.simulation
        sms = await deliveries(hub, campaign_id, "sms")
        assert len(sms) == 2 and {s for s, *_ in sms.values()} <= {"delivered", "failed"}
    simulator = hub.simulators[Channel.SMS]
    assert isinstance(simulator, SimulatorSmsProvider) and simulator.submits == 4
    late = await hub.store._read("SELECT COUNT(*) FROM delivery_messages WHERE state IS NOT NULL", ())
    assert late[0][0] >= 1  # some outcomes came as late receipts, and were counted
    # a normal campaign on the same hub reaches the peers
    actual = await finished(hub, await post(hub, keypairs, cap("AC-1")))
    campaign = await hub.store.campaign(actual)
    assert campaign is not None and not campaign.simulation
    assert sorted(s["destination"] for s in smsc.submits()) == ["32477123456", "32478123456"]
    assert sink.rcpt_seen == 2 and [r[1] for r in sink.received] == [["an@example.be"]]


async def test_a_hub_in_simulation_opens_no_real_provider(tmp_path: Path, keypairs: KEYS,
                                                          hubs: list[Hub]) -> None:
    """SMPP and SMTP are configured at ports where nothing listens: a hub in simulation never
    connects to them, and every campaign, even an Actual one, is a simulation."""
    from tests.services.test_worker_peers import SmsSettings

    dead = free_port()
    hub = await start(tmp_path, keypairs, sms=SmsSettings(provider="smpp", host="127.0.0.1", port=dead),
                      email=EmailSettings(provider="smtp", host="127.0.0.1", port=dead),
                      simulation=dataclasses.replace(SIMULATION, enabled=True))
    hubs.append(hub)
    assert all(isinstance(p, SimulatorSmsProvider) for c, p in hub.providers.items() if c is Channel.SMS)
    campaign_id = await finished(hub, await post(hub, keypairs, cap("AC-2")))
    campaign = await hub.store.campaign(campaign_id)
    assert campaign is not None and campaign.simulation
    assert sum(1 for _ in (await deliveries(hub, campaign_id, "email"))) == 2


async def test_an_exercise_on_rabbitmq_goes_through_the_simulation_queues(
        tmp_path: Path, keypairs: KEYS, rabbit: Rabbit, smsc: Smsc, hubs: list[Hub]) -> None:
    """Every stage on RabbitMQ, SMS configured on the real SMSC: the Exercise's batches go to
    ``simulate.sms`` and the simulators; the SMSC sees nothing."""
    prefix = f"s{uuid.uuid4().hex[:8]}."
    hub = await start(tmp_path, keypairs, sms=smpp(smsc), simulation=SIMULATION,
                      amqp=AmqpSettings(url=rabbit.url, prefix=prefix))
    hubs.append(hub)
    campaign_id = await finished(hub, await post(hub, keypairs, cap("EX-9", status="Exercise")))
    assert len(await deliveries(hub, campaign_id, "sms")) == 2 and smsc.submits() == []
    assert hub.simulation_workers[Channel.SMS].queue == "simulate.sms"
    assert hub.simulators[Channel.SMS].submits == 2
