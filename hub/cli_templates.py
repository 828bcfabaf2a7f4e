"""`cap-hub template add|list|show|remove|send`: an entity's templates, through a running hub.

These are client commands: they talk to the hub's REST API (``[client] url``) with a bearer
token (``[client] token``, best given as ``CAPHUB_CLIENT_TOKEN``), as the account that token
belongs to, so that a send is checked, signed and audited exactly as any other.

    cap-hub template add brand brand.json          # the CAP skeleton with {placeholders}
    cap-hub template list
    cap-hub template show brand
    cap-hub template send brand --set straat=Kerkstraat --set uur=14:00
    cap-hub template remove brand
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import aiohttp

from hub.cli_common import read_file
from hub.config import Settings
from hub.errors import HubError
from hub.services.templates import values_from_pairs

TIMEOUT = 60.0


def register(top: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    t = top.add_parser("template", help="templates: ready scenarios sent in one call (through a running hub)")
    cmds = t.add_subparsers(title="template commands", metavar="ACTION")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = cmds.add_parser(name, help=text)
        p.add_argument("--url", help="the hub (default: the settings' client.url)")
        return p

    a = command("add", "store a template (a JSON CAP skeleton with {placeholders})")
    a.add_argument("name")
    a.add_argument("file", type=Path, metavar="FILE", help="the template as JSON")
    a.add_argument("--replace", action="store_true", help="replace the template of that name")
    a.set_defaults(run=_add)
    lst = command("list", "the templates of the token's entity")
    lst.set_defaults(run=_list)
    s = command("show", "one template, as JSON")
    s.add_argument("name", help="its name or id")
    s.set_defaults(run=_show)
    r = command("remove", "delete a template")
    r.add_argument("name", help="its name or id")
    r.set_defaults(run=_remove)
    x = command("send", "send a template: the hub builds, signs and ingests its alert")
    x.add_argument("name", help="its name or id")
    x.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="values",
                   help="a placeholder's value (repeatable)")
    x.add_argument("--json", action="store_true", help="print the hub's answer as JSON")
    x.set_defaults(run=_send)


def _request(args: argparse.Namespace, settings: Settings, method: str, path: str,
             body: Any = None) -> tuple[int, Any]:
    """One request to the hub: (status, parsed JSON or None)."""
    token = settings.client.token
    if not token:
        raise HubError("no token: set CAPHUB_CLIENT_TOKEN (or client.token) to a token of the account "
                       "(cap-hub admin token new ACCOUNT)")
    url = (args.url or settings.client.url).rstrip("/") + path
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def go() -> tuple[int, Any]:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.request(method, url, json=body, headers=headers) as resp:
                raw = await resp.read()
                try:
                    return resp.status, json.loads(raw) if raw else None
                except ValueError:
                    return resp.status, {"detail": raw.decode("utf-8", "replace")[:500]}

    try:
        return asyncio.run(go())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise HubError(f"cannot reach the hub at {url}: {exc or type(exc).__name__}") from exc


def _refused(status: int, body: Any) -> HubError:
    detail = body.get("detail") if isinstance(body, dict) else None
    return HubError(f"the hub answered {status}: {detail or body}")


def _path(name: str) -> str:
    return "/templates/" + quote(name, safe="")


def _add(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    try:
        template = json.loads(read_file(args.file, "template"))
    except ValueError as exc:
        raise HubError(f"{args.file}: not JSON: {exc}") from exc
    payload = {"name": args.name, "template": template}
    if args.replace:
        status, body = _request(args, settings, "PUT", _path(args.name), payload)
    else:
        status, body = _request(args, settings, "POST", "/templates", payload)
    if status not in (200, 201):
        raise _refused(status, body)
    placeholders = ", ".join(body["placeholders"]) or "none"
    print(f"template {body['name']} (id {body['id']}), placeholders: {placeholders}", file=out)
    return 0


def _list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    status, body = _request(args, settings, "GET", "/templates")
    if status != 200:
        raise _refused(status, body)
    for t in body["templates"]:
        print(f"{t['id']}\t{t['name']}\t{', '.join(t['placeholders'])}", file=out)
    return 0


def _show(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    status, body = _request(args, settings, "GET", _path(args.name))
    if status != 200:
        raise _refused(status, body)
    json.dump(body, out, indent=2, ensure_ascii=False)
    out.write("\n")
    return 0


def _remove(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    status, body = _request(args, settings, "DELETE", _path(args.name))
    if status != 204:
        raise _refused(status, body)
    print(f"template {args.name} removed", file=out)
    return 0


def _send(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    values = values_from_pairs(args.values)
    status, body = _request(args, settings, "POST", _path(args.name) + ":send", {"values": values})
    if args.json and isinstance(body, dict):
        json.dump(body, out, indent=2, ensure_ascii=False)
        out.write("\n")
    if status in (200, 201) and isinstance(body, dict) and body.get("alert"):
        alert = body["alert"]
        if not args.json:
            print(f"accepted: alert {alert['id']} ({alert['identifier']}), {alert['href']}", file=out)
        return 0
    if isinstance(body, dict) and "problems" in body:  # a CAP Error: every finding, path first
        if not args.json:
            print(f"refused ({status}, {body.get('reason')}):", file=out)
            for p in body["problems"]:
                print(f"  {p['path']}: {p['code']}: {p['message']}", file=out)
        return 1
    raise _refused(status, body)
