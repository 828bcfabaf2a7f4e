"""POST /cap with the CPU-bound steps in worker processes (``ingest.processes``): the same
answers as with threads, nothing lost, and the workers stopped with the hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from hub.config import IngestSettings
from hub.wiring import Hub
from tests.api.conftest import MakeSender, settings_for
from tests.api.test_post_cap import answer_of, hub_verifies, stored_count


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    settings = replace(settings_for(tmp_path), ingest=IngestSettings(processes=1))
    hub = await Hub.start(settings, tmp_path)
    yield hub
    await hub.stop()
    assert hub.ingest._pool is None  # stopped with the hub


async def test_answers_are_those_of_the_threads(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    data, ref = police.alert()
    status, body, headers = await police.post(police.signed(data))
    assert status == 201, body
    assert answer_of(body)[0] == "Ack" and hub_verifies(hub, body)
    assert hub.ingest._pool is not None  # the work did go to a worker process
    # Invalid CAP: the rule's finding, in a signed Error.
    bad, _ = police.alert(extra="<restriction>only us</restriction>")
    status, body, _ = await police.post(police.signed(bad))
    assert status == 400 and answer_of(body)[0] == "Error" and "restriction-scope" in answer_of(body)[1]
    assert hub_verifies(hub, body)
    # A signature broken after signing: refused, with the verdict from the worker.
    changed = police.signed(police.alert()[0]).replace(b"<headline>Rook", b"<headline>Rock")
    status, body, _ = await police.post(changed)
    assert status == 400 and "signature-digest-mismatch" in answer_of(body)[1]
    # The same post again: the original Ack, nothing stored twice.
    status, again, _ = await police.post(police.signed(data))
    assert status == 200
    assert await stored_count(hub) == 1
    assert ref.split(",")[1] in again.decode()


async def test_concurrent_posts_through_workers_are_all_stored(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    docs = [police.signed(police.alert()[0]) for _ in range(60)]
    results = await asyncio.gather(*(police.post(d) for d in docs))
    assert [r[0] for r in results] == [201] * 60
    assert await stored_count(hub) == 60


async def test_a_dead_worker_is_replaced(hub: Hub, make_sender: MakeSender) -> None:
    police = await make_sender("police")
    assert (await police.post(police.signed(police.alert()[0])))[0] == 201
    pool = hub.ingest._pool
    assert pool is not None
    for process in list(pool._processes.values()):  # our own worker, by its PID
        process.kill()
        process.join(10)
    statuses = [(await police.post(police.signed(police.alert()[0])))[0] for _ in range(3)]
    assert statuses == [201, 201, 201]
    assert await stored_count(hub) == 4
