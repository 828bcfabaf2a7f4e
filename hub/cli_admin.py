"""`cap-hub serve` and `cap-hub admin ...`: the commands that work on a data directory."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
from pathlib import Path
from typing import TextIO, TypeVar

from hub import cli_ledger, cli_members, cli_partners, logs
from hub.cli_common import add_data_option, data_dir, read_file, with_store
from hub.config import Settings
from hub.domain import Channel, EntityType, Role
from hub.errors import HubError
from hub.services import admin
from hub.wiring import ALL_ROLES

T = TypeVar("T")


def register(top: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = top.add_parser("serve", help="run the hub (HTTP API, store, broker) on this machine")
    add_data_option(s)
    s.add_argument("--host", help="address to listen on (default: the settings, 127.0.0.1)")
    s.add_argument("--port", type=int, help="port to listen on (default: the settings, 8080)")
    s.add_argument("--simulation", action="store_true",
                   help="the whole hub is a simulation environment: every campaign runs on simulator "
                        "providers and nothing is sent (simulation.enabled)")
    s.set_defaults(run=_serve)

    for role, text in (("api", "run only the HTTP API (ingest, reading back, groups)"),
                       ("router", "run only the router stage (needs RabbitMQ: amqp.url)"),
                       ("tracker", "run only the tracker stage: delivery outcomes (needs RabbitMQ: "
                                   "amqp.url)"),
                       ("push", "run only the push stage: partner subscriptions and WebSub pings (needs "
                                "RabbitMQ: amqp.url)")):
        r = top.add_parser(role, help=text)
        add_data_option(r)
        if role == "api":
            r.add_argument("--host", help="address to listen on (default: the settings)")
            r.add_argument("--port", type=int, help="port to listen on (default: the settings)")
        r.set_defaults(run=_serve, roles=frozenset({role}))

    w = top.add_parser("worker", help="run only one channel's worker (needs RabbitMQ: amqp.url)")
    w.add_argument("channel", choices=[c.value for c in Channel])
    add_data_option(w)
    w.set_defaults(run=_worker)

    a = top.add_parser("admin", help="entities, accounts, tokens, certificates, groups")
    cmds = a.add_subparsers(title="admin commands", metavar="WHAT")
    cli_members.register(top, cmds)
    cli_ledger.register(cmds)
    cli_partners.register(cmds)

    entity = cmds.add_parser("entity", help="entities (organisations that send)").add_subparsers(
        title="entity commands", metavar="ACTION")
    e = entity.add_parser("add", help="register an entity")
    e.add_argument("name")
    e.add_argument("--type", type=int, choices=(1, 2), required=True,
                   help="1: commune or governor (its groups and its area); 2: police zone or PLP "
                        "(its groups only)")
    e.add_argument("--sender", nargs="+", required=True, help="CAP <sender> values it uses")
    e.add_argument("--cert", nargs="+", type=Path, default=[], metavar="PEM",
                   help="certificates that sign for those senders")
    e.add_argument("--signature", choices=("required", "optional"), default="required",
                   help="whether its Actual messages must be signed (default: required)")
    e.add_argument("--territory", type=Path, metavar="FILE", help="GeoJSON area it may alert")
    e.add_argument("--profile", default="", help="extra CAP rules for its messages (be, ipaws)")
    e.add_argument("--simulation", action="store_true",
                   help="in the simulation environment: its campaigns run on simulator providers and "
                        "send nothing")
    add_data_option(e)
    e.set_defaults(run=_entity_add)
    for verb, simulation, text in (
            ("live", False, "take an entity out of the simulation environment: its next alerts reach "
                            "people (what it sent before stays a simulation)"),
            ("simulate", True, "put an entity (back) in the simulation environment: its next alerts "
                               "send nothing")):
        v = entity.add_parser(verb, help=text)
        v.add_argument("name")
        add_data_option(v)
        v.set_defaults(run=functools.partial(_entity_simulation, simulation=simulation))

    cert = cmds.add_parser("cert", help="signing certificates").add_subparsers(
        title="cert commands", metavar="ACTION")
    c = cert.add_parser("add", help="register a certificate for an entity")
    c.add_argument("entity")
    c.add_argument("pem", type=Path, metavar="PEM")
    add_data_option(c)
    c.set_defaults(run=_cert_add)

    account = cmds.add_parser("account", help="accounts of an entity").add_subparsers(
        title="account commands", metavar="ACTION")
    ac = account.add_parser("add", help="create an account")
    ac.add_argument("entity")
    ac.add_argument("name", help="unique in the hub")
    ac.add_argument("--role", choices=[r.value for r in Role], required=True)
    ac.add_argument("--grant", action="append", default=[], metavar="GRANT",
                    help="kinds=alert,prevention,news | groups=ID,ID | members=yes|no (repeatable); "
                         "a coordinator without grants may do everything within its entity")
    add_data_option(ac)
    ac.set_defaults(run=_account_add)

    token = cmds.add_parser("token", help="API tokens").add_subparsers(
        title="token commands", metavar="ACTION")
    t = token.add_parser("new", help="make a token for an account; prints only the token")
    t.add_argument("account")
    add_data_option(t)
    t.set_defaults(run=_token_new)
    r = token.add_parser("revoke", help="revoke a token")
    r.add_argument("token")
    add_data_option(r)
    r.set_defaults(run=_token_revoke)


def _serve(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from hub.serve import run  # aiohttp is only needed here

    roles: frozenset[str] = getattr(args, "roles", ALL_ROLES)
    if roles != ALL_ROLES and not settings.amqp.url:
        raise HubError("running one stage alone needs RabbitMQ (amqp.url, CAPHUB_AMQP_URL): the "
                       "embedded broker only connects stages inside one process (cap-hub serve)")
    if getattr(args, "simulation", False):
        settings = dataclasses.replace(
            settings, simulation=dataclasses.replace(settings.simulation, enabled=True))
    logs.setup(settings.log)
    host = getattr(args, "host", None) or settings.http.host
    port = getattr(args, "port", None)
    port = port if port is not None else settings.http.port
    asyncio.run(run(settings, data_dir(args, settings), host, port, roles))
    return 0


def _worker(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    args.roles = frozenset({f"worker:{args.channel}"})
    return _serve(args, settings, out)


def _entity_add(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    certs = [(str(p), read_file(p, "certificate")) for p in args.cert]
    territory = read_file(args.territory, "territory").decode("utf-8", "replace") if args.territory else None
    entity, added = with_store(args, settings, lambda store: admin.add_entity(
        store, args.name, EntityType(args.type), args.sender, certificates=certs,
        signature_required=args.signature == "required", territory=territory, profile=args.profile,
        simulation=args.simulation))
    print(f"entity {entity.name} (id {entity.id}, type {int(entity.type)}) with "
          f"{len(entity.senders)} sender(s) and {len(added)} certificate(s)"
          + (", in the simulation environment" if entity.simulation else ""), file=out)
    return 0


def _entity_simulation(args: argparse.Namespace, settings: Settings, out: TextIO, *, simulation: bool) -> int:
    entity, changed = with_store(args, settings,
                                 lambda store: admin.set_simulation(store, args.name, simulation))
    where = "in the simulation environment" if simulation else "live"
    print(f"entity {entity.name} (id {entity.id}) {'is now' if changed else 'was already'} {where}", file=out)
    return 0


def _cert_add(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    certs = with_store(args, settings, lambda store: admin.add_certificate(
        store, args.entity, str(args.pem), read_file(args.pem, "certificate")))
    for cert in certs:
        print(f"certificate {cert.fingerprint[:16]}… registered, valid until {cert.not_after:%Y-%m-%d}",
              file=out)
    return 0


def _account_add(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    account = with_store(args, settings, lambda store: admin.add_account(
        store, args.entity, args.name, Role(args.role), args.grant))
    print(f"account id {account.id} ({account.role.value})", file=out)
    return 0


def _token_new(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    token = with_store(args, settings, lambda store: admin.new_account_token(store, args.account))
    print(token, file=out)
    return 0


def _token_revoke(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with_store(args, settings, lambda store: admin.revoke_token(store, args.token))
    print("revoked", file=out)
    return 0
