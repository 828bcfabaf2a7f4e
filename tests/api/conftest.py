"""The hub end to end: a real Hub (SQLite in tmp_path, embedded broker) behind the aiohttp
test server, and senders with real keys, entities, accounts and tokens."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.api.app import create_app
from hub.cap import devkeys
from hub.cap.sign import sign
from hub.config import Settings, SignatureSettings
from hub.domain import Campaign, CampaignState, EntityType, Role
from hub.services import admin
from hub.wiring import Hub

_serial = itertools.count(1)


@pytest.fixture(scope="session")
def keypairs() -> dict[str, tuple[bytes, bytes]]:
    """Key pairs made once per session (RSA key generation is slow)."""
    return {name: devkeys.new_identity(name) for name in ("police", "commune", "stranger")}


@dataclass
class Sender:
    """One entity with one account and token, and the key that signs its messages."""

    name: str
    sender: str
    token: str
    key_pem: bytes
    cert_pem: bytes
    client: TestClient  # type: ignore[type-arg]

    def alert(self, identifier: str | None = None, *, msg_type: str = "Alert", references: str = "",
              status: str = "Actual", scope: str = "Public", extra: str = "", headline: str = "Rook",
              area: str = "", expires_in: timedelta = timedelta(hours=2),
              sent_ago: timedelta = timedelta(0)) -> tuple[bytes, str]:
        """A CAP message of this sender and the reference triplet that names it."""
        ident = identifier or f"{self.name}-{next(_serial)}"
        sent = (datetime.now(UTC) - sent_ago).replace(microsecond=0).astimezone(timezone(timedelta(hours=1)))
        expires = (sent + expires_in).isoformat()
        area = area or ("<area><areaDesc>Centrum</areaDesc><polygon>50.83,4.33 50.83,4.38 50.87,4.38 "
                        "50.87,4.33 50.83,4.33</polygon></area>")
        refs = f"<references>{references}</references>" if references else ""
        info = "" if msg_type == "Cancel" else (
            f"<info><language>nl-BE</language><category>Safety</category><event>Brand</event>"
            f"<urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>"
            f"<expires>{expires}</expires><headline>{headline}</headline>{area}</info>")
        doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
               f"<identifier>{ident}</identifier><sender>{self.sender}</sender><sent>{sent.isoformat()}</sent>"
               f"<status>{status}</status><msgType>{msg_type}</msgType><scope>{scope}</scope>{extra}{refs}"
               f"{info}</alert>")
        return doc.encode(), f"{self.sender},{ident},{sent.isoformat()}"

    def signed(self, data: bytes) -> bytes:
        return sign(data, self.key_pem, self.cert_pem)

    async def post(self, data: bytes, *, token: str | None = "", content_type: str = "application/cap+xml",
                   accept: str = "application/cap+xml") -> tuple[int, bytes, dict[str, str]]:
        headers = {"Content-Type": content_type, "Accept": accept}
        use = self.token if token == "" else token
        if use:
            headers["Authorization"] = f"Bearer {use}"
        async with self.client.post("/cap", data=data, headers=headers) as resp:
            return resp.status, await resp.read(), dict(resp.headers)


async def campaign_done(hub: Hub, alert_id: int, *, tries: int = 500, pause: float = 0.02) -> Campaign:
    """The campaign of ``alert_id`` once it is done (the pipeline runs in the background)."""
    for _ in range(tries):
        campaign = await hub.store.campaign_for_alert(alert_id)
        if campaign is not None and campaign.state is CampaignState.DONE:
            return campaign
        await asyncio.sleep(pause)
    raise AssertionError(f"the campaign of alert {alert_id} never finished")


async def sse_events(client: TestClient, path: str, token: str) -> list[tuple[str, dict[str, Any]]]:  # type: ignore[type-arg]
    """Every (event, data) of a server-sent event stream, read until the server ends it."""
    out: list[tuple[str, dict[str, Any]]] = []
    async with client.get(path, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        event = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                out.append((event, json.loads(line[6:])))
    return out


def settings_for(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path), signature=SignatureSettings(expiry_at="now"))


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    hub = await Hub.start(settings_for(tmp_path), tmp_path)
    yield hub
    await hub.stop()


@pytest.fixture
async def client(hub: Hub, aiohttp_client: Callable[..., Awaitable[TestClient]]) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(hub))


MakeSender = Callable[..., Awaitable[Sender]]


@pytest.fixture
def make_sender(hub: Hub, client: TestClient, keypairs: dict[str, tuple[bytes, bytes]]) -> MakeSender:  # type: ignore[type-arg]
    async def make(name: str = "police", *, type: EntityType = EntityType.GROUPS,
                   territory: str | None = None, signature: bool = True, role: Role = Role.COORDINATOR,
                   grants: tuple[str, ...] = (), key: str | None = None) -> Sender:
        key_pem, cert_pem = keypairs[key or name]
        sender = f"{name}@example.be"
        await admin.add_entity(hub.store, name, type, [sender], certificates=[("test", cert_pem)],
                               signature_required=signature, territory=territory)
        await admin.add_account(hub.store, name, f"{name}-account", role, grants)
        token = await admin.new_account_token(hub.store, f"{name}-account")
        return Sender(name, sender, token, key_pem, cert_pem, client)

    return make
