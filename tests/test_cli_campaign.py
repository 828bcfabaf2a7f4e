"""`cap-hub campaign watch`: SSE read over real HTTP from a running hub, bars per channel."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from hub.cli import main
from hub.cli_campaign import SseParser, bar, render, watch
from hub.errors import HubError
from hub.wiring import Hub
from tests.api.conftest import MakeSender, client, hub, keypairs, make_sender
from tests.api.test_campaign_live import campaign_of, two_languages, with_members

__all__ = ["client", "hub", "keypairs", "make_sender"]  # the app's fixtures, for these tests too


def test_sse_parser_joins_data_lines_and_skips_comments() -> None:
    parser = SseParser()
    lines = [": keep-alive", "id: 1", "event: progress", "data: {\"a\":", "data: 1}", "", "data: x", ""]
    events = [e for line in lines for e in parser.feed(line + "\n")]
    assert events == [("progress", '{"a":\n1}'), ("message", "x")]


def test_render_draws_a_bar_per_channel() -> None:
    lines = render({"id": 4, "alert": "A-1", "state": "sending", "rate": 12.5, "etaSeconds": 8.0,
                    "cost_eur": 0.11, "simulation": True,
                    "counts": {"sms": {"delivered": 5, "queued": 5}, "email": {"failed": 2}}})
    assert lines[0] == "campaign 4 (A-1): sending [SIMULATION]  12.5/s  eta 8s  cost 0.110 EUR"
    assert lines[1].startswith("email  [" + "#" * 30 + "] 2/2")
    assert lines[2] == "sms    [" + "#" * 15 + "." * 15 + "] 5/10  delivered 5, queued 5"
    assert bar(0, 0) == "#" * 30 and bar(1, 3, 3) == "#.."


async def test_watch_follows_a_campaign_to_its_end(hub: Hub, client: TestClient,  # type: ignore[type-arg]
                                                   make_sender: MakeSender) -> None:
    police = await make_sender("police")
    await with_members(hub, police, 3)
    data, ref = two_languages(police)
    assert (await police.post(police.signed(data)))[0] == 201
    campaign = await campaign_of(client, police, ref)
    out = io.StringIO()
    final = await watch(str(client.make_url("/")), police.token, campaign["id"], out, tty=False)
    assert final["state"] == "done"
    assert out.getvalue().splitlines()[-1].startswith("sms    [" + "#" * 30 + "] 3/3  ")
    with pytest.raises(HubError, match="HTTP 404 no campaign 999"):
        await watch(str(client.make_url("/")), police.token, 999, io.StringIO(), tty=False)
    with pytest.raises(HubError, match="HTTP 401"):
        await watch(str(client.make_url("/")), "wrong", campaign["id"], io.StringIO(), tty=False)


def test_watch_without_a_token_or_a_hub(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPHUB_CLIENT_TOKEN", raising=False)
    assert main(["campaign", "watch", "1", "--url", "http://127.0.0.1:9"]) == 1
    assert "no token" in capsys.readouterr().err
    assert main(["campaign", "watch", "1", "--url", "http://127.0.0.1:9", "--token", "t"]) == 1
    assert "cannot reach the hub at http://127.0.0.1:9" in capsys.readouterr().err
