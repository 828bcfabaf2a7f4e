"""Administration: entities, certificates, accounts and tokens. Every action is audited.

Inputs are checked here (a territory must be a valid area, a certificate a real one) so that
the CLI and, later, the REST API refuse the same things with the same words.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives.serialization import Encoding

from hub.cap.profiles import PROFILES
from hub.cap.trust import common_name, load_pems
from hub.domain import Account, Certificate, Entity, EntityType, Grants, Kind, Role
from hub.errors import HubError, SignatureError
from hub.routing.geometry import TerritoryError, parse_territory
from hub.services.auth import new_token, token_hash
from hub.store.base import NewCertificate, Store

ADMIN = "admin"


class AdminError(HubError):
    """An administrative request that cannot be carried out; the message says why."""


def _now() -> datetime:
    return datetime.now(UTC)


async def add_entity(
    store: Store, name: str, type: EntityType, senders: Sequence[str], *,
    certificates: Sequence[tuple[str, bytes]] = (), signature_required: bool = True,
    territory: str | None = None, profile: str = "", simulation: bool = False,
) -> tuple[Entity, list[Certificate]]:
    """``certificates`` are (where, PEM) pairs; ``where`` names the file in messages."""
    if not senders:
        raise AdminError("an entity needs at least one --sender")
    # the same characters CAP's sender rule refuses (any whitespace, not only the space)
    bad = [s for s in senders if not s or any(c in ",<&" or c.isspace() for c in s)]
    if bad:
        raise AdminError(f"sender {bad[0]!r} may not be empty or contain spaces, commas, '<' or '&'")
    if profile and profile not in PROFILES:
        raise AdminError(f"unknown profile {profile!r} (known: {', '.join(sorted(PROFILES))})")
    if territory is not None:
        try:
            parse_territory(territory)
        except TerritoryError as exc:
            raise AdminError(f"territory: {exc}") from exc
    parsed: dict[str, NewCertificate] = {}
    for where, pem in certificates:
        for cert in _certificates(where, pem):
            parsed.setdefault(cert.fingerprint, cert)  # the same one given twice counts once
    entity = await store.add_entity(name, type, senders, signature_required=signature_required,
                                    profile=profile, territory=territory,
                                    certificates=list(parsed.values()), simulation=simulation)
    added = await store.certificates(entity.id)
    await store.audit(ADMIN, "entity.add", name, "ok",
                      json.dumps({"type": int(type), "senders": list(senders),
                                  "certificates": [c.fingerprint for c in added],
                                  "simulation": simulation}), at=_now())
    return entity, added


def _certificates(where: str, pem: bytes) -> list[NewCertificate]:
    """Every certificate in a PEM file (a chain file registers each of its certificates)."""
    try:
        certs = load_pems(pem, where)
    except SignatureError as exc:
        raise AdminError(str(exc)) from exc
    return [
        NewCertificate(cert.public_bytes(Encoding.PEM),
                       hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
                       common_name(cert) or "", cert.not_valid_after_utc)
        for cert in certs
    ]


async def add_certificate(store: Store, entity_name: str, where: str, pem: bytes) -> list[Certificate]:
    entity = await _entity(store, entity_name)
    added = []
    for cert in _certificates(where, pem):
        added.append(await store.add_certificate(entity.id, cert.pem, fingerprint=cert.fingerprint,
                                                 subject=cert.subject, not_after=cert.not_after))
    await store.audit(ADMIN, "certificate.add", entity_name, "ok",
                      json.dumps({"fingerprints": [c.fingerprint for c in added]}), at=_now())
    return added


async def set_simulation(store: Store, entity_name: str, simulation: bool) -> tuple[Entity, bool]:
    """Take an entity live (``simulation=False``: its next alerts reach people) or back into
    the simulation environment. What it sent before keeps the environment it was sent in:
    an exercise alert never turns public. Returns the entity and whether it changed."""
    entity = await _entity(store, entity_name)
    changed = entity.simulation != simulation
    if changed:
        await store.set_entity_simulation(entity.id, simulation)
    await store.audit(ADMIN, "entity.simulate" if simulation else "entity.live", entity_name,
                      "ok" if changed else "unchanged", json.dumps({"simulation": simulation}), at=_now())
    return dataclasses.replace(entity, simulation=simulation), changed


async def _entity(store: Store, name: str) -> Entity:
    entity = await store.entity_by_name(name)
    if entity is None:
        raise AdminError(f"no entity named {name!r}")
    return entity


def parse_grants(role: Role, specs: Sequence[str]) -> Grants:
    """``--grant`` values: ``kinds=alert,prevention``, ``groups=plp-a,plp-b``,
    ``members=yes|no``. Without any, a coordinator may do everything within its entity and
    the other roles may send alerts to all the entity's groups but not manage members."""
    groups: frozenset[str] | None = None
    kinds: frozenset[Kind] | None = None
    members = role is Role.COORDINATOR
    for spec in specs:
        key, sep, value = spec.partition("=")
        items = frozenset(v.strip() for v in value.split(",") if v.strip())
        if not sep:
            raise AdminError(f"--grant {spec!r}: expected kinds=..., groups=... or members=yes|no")
        if key == "groups":
            groups = items
        elif key == "kinds":
            try:
                kinds = frozenset(Kind(k) for k in items)
            except ValueError as exc:
                allowed = ", ".join(k.value for k in Kind)
                raise AdminError(f"--grant {spec!r}: kinds are {allowed}") from exc
        elif key == "members":
            if value not in ("yes", "no"):
                raise AdminError(f"--grant {spec!r}: members=yes or members=no")
            members = value == "yes"
        else:
            raise AdminError(f"--grant {spec!r}: unknown grant {key!r} (kinds, groups, members)")
    return Grants(groups=groups, kinds=kinds, manage_members=members)


async def add_account(store: Store, entity_name: str, name: str, role: Role,
                      grants: Sequence[str] = ()) -> Account:
    entity = await _entity(store, entity_name)
    account = await store.add_account(entity.id, name, role, parse_grants(role, grants))
    await store.audit(ADMIN, "account.add", f"{entity_name}/{account.id}", "ok",
                      json.dumps({"role": role.value, "grants": account.grants.to_json()}), at=_now())
    return account


async def new_account_token(store: Store, account_name: str) -> str:
    """A fresh token for the account; the store keeps only its hash, so this is the one
    time it can be shown."""
    account = await store.account_by_name(account_name)
    if account is None:
        raise AdminError(f"no account named {account_name!r}")
    token = new_token()
    token_id = await store.add_token(account.id, token_hash(token), created_at=_now())
    await store.audit(ADMIN, "token.new", f"account/{account.id}", "ok",
                      json.dumps({"token_id": token_id}), at=_now())
    return token


async def revoke_token(store: Store, token: str) -> None:
    if not await store.revoke_token(token_hash(token), revoked_at=_now()):
        raise AdminError("no such token, or it was already revoked")
    await store.audit(ADMIN, "token.revoke", "token", "ok", at=_now())
