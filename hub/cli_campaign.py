"""``cap-hub campaign watch ID``: a campaign's live progress in the terminal.

It talks HTTP to a running hub (``[client] url``, with the bearer token of ``[client] token``
or ``--token``), reads ``GET /campaigns/{id}/events`` and draws one progress bar per channel,
redrawn in place on a terminal (one line per update otherwise), until the campaign ends.
Exit status: 0 when it ended, 1 when the hub refused (no such campaign, bad token).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator
from typing import Any, TextIO

import aiohttp

from hub.config import Settings
from hub.errors import HubError

BAR = 30
FINAL = ("delivered", "failed", "skipped", "cancelled")


def register(top: Any) -> None:
    """Add ``campaign`` to the ``cap-hub`` command's subcommands."""
    campaign = top.add_parser("campaign", help="follow campaigns on a running hub")
    cmds = campaign.add_subparsers(title="campaign commands", metavar="ACTION")
    w = cmds.add_parser("watch", help="live progress bars per channel until the campaign ends")
    w.add_argument("id", type=int, metavar="ID", help="the campaign's id (GET /campaigns?alert=IDENTIFIER)")
    w.add_argument("--url", help="the hub (default: [client] url)")
    w.add_argument("--token", help="bearer token (default: [client] token, CAPHUB_CLIENT_TOKEN)")
    w.set_defaults(run=_watch)


class SseParser:
    """Server-Sent Events from lines: ``feed`` a line at a time, complete events come out."""

    def __init__(self) -> None:
        self._event, self._data = "message", []  # type: tuple[str, list[str]]

    def feed(self, line: str) -> Iterator[tuple[str, str]]:
        line = line.rstrip("\r\n")
        if not line:
            if self._data:
                yield self._event, "\n".join(self._data)
            self._event, self._data = "message", []
            return
        if line.startswith(":"):
            return  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)


def bar(done: int, total: int, width: int = BAR) -> str:
    filled = width if total <= 0 else min(width, done * width // total)
    return "#" * filled + "." * (width - filled)


def render(campaign: dict[str, Any]) -> list[str]:
    """The lines that show a campaign: a head line, then a bar per channel."""
    eta = campaign.get("etaSeconds")
    head = (f"campaign {campaign.get('id')} ({campaign.get('alert')}): {campaign.get('state')}"
            f"{' [SIMULATION]' if campaign.get('simulation') else ''}  "
            f"{campaign.get('rate', 0)}/s  eta {'-' if eta is None else f'{eta:.0f}s'}  "
            f"cost {float(campaign.get('cost_eur') or 0):.3f} EUR")
    lines = [head]
    counts: dict[str, dict[str, int]] = campaign.get("counts") or {}
    for channel in sorted(counts):
        states = counts[channel]
        total = sum(states.values())
        final = sum(states.get(s, 0) for s in FINAL)
        detail = ", ".join(f"{s} {n}" for s, n in sorted(states.items()) if n)
        lines.append(f"{channel:<6} [{bar(final, total)}] {final}/{total}  {detail}")
    return lines


async def watch(url: str, token: str, campaign_id: int, out: TextIO, *, tty: bool) -> dict[str, Any]:
    """Follow the campaign until its ``end`` event; returns the final campaign object."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    drawn = 0
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            session.get(f"{url.rstrip('/')}/campaigns/{campaign_id}/events", headers=headers) as resp:
        if resp.status != 200:
            try:
                detail = (await resp.json(content_type=None)).get("detail", "")
            except (ValueError, aiohttp.ContentTypeError):
                detail = ""
            raise HubError(f"campaign {campaign_id}: HTTP {resp.status} {detail}".rstrip())
        parser = SseParser()
        async for raw in resp.content:
            for event, data in parser.feed(raw.decode("utf-8")):
                campaign: dict[str, Any] = json.loads(data)
                lines = render(campaign)
                if tty and drawn:
                    out.write(f"\x1b[{drawn}F\x1b[J")  # back to the first line drawn, clear below
                out.write("\n".join(lines) + "\n")
                out.flush()
                drawn = len(lines)
                if event == "end":
                    return campaign
    raise HubError(f"campaign {campaign_id}: the hub closed the stream before the campaign ended")


def _watch(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    token = args.token or settings.client.token
    if not token:
        raise HubError("no token: pass --token or set CAPHUB_CLIENT_TOKEN (cap-hub admin token new)")
    try:
        asyncio.run(watch(args.url or settings.client.url, token, args.id, out, tty=out.isatty()))
    except aiohttp.ClientError as exc:
        raise HubError(f"cannot reach the hub at {args.url or settings.client.url}: {exc}") from exc
    return 0
