"""Shared fixtures of the stage tests: RSA key pairs, and a hub whose stages are driven by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.config import Settings, SignatureSettings
from hub.domain import EntityType, Role
from hub.services import admin
from hub.services.members import ADMIN
from hub.wiring import Hub
from tests.api.conftest import keypairs
from tests.services.test_router import MEMBERS, TERRITORY

__all__ = ["hub", "keypairs"]


@pytest.fixture
async def hub(tmp_path: Path, keypairs: dict[str, tuple[bytes, bytes]]) -> AsyncIterator[Hub]:
    hub = await Hub.start(Settings(data_dir=str(tmp_path), signature=SignatureSettings()), tmp_path,
                          roles=frozenset({"api"}))  # the router is driven by hand here
    entity, _ = await admin.add_entity(hub.store, "PZ", EntityType.GROUPS, ["pz@example.be"],
                                       certificates=[("t", keypairs["police"][1])])
    await admin.add_account(hub.store, "PZ", "dispatch", Role.COORDINATOR)
    await hub.members.add_group(ADMIN, entity, "plp-a", "PLP A", territory=TERRITORY)
    await hub.members.add_group(ADMIN, entity, "plp-b", "PLP B", territory=TERRITORY)
    await hub.members.import_csv(ADMIN, "plp-a", MEMBERS)
    await hub.members.import_csv(ADMIN, "plp-b", MEMBERS.splitlines()[0] + b"\n" + MEMBERS.splitlines()[1])
    yield hub
    await hub.stop()
