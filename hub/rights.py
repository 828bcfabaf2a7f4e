"""Who may send what: the rights checks of ingest, pure and tested directly.

An account sends for its entity: the ``<sender>`` must be registered to that entity, the kind
of message (alert, prevention, news) must be granted to the account, the groups a Private
message addresses must be within its grants, and every area must lie (at least partly) in
the entity's territory when it has one. Findings use the same form as CAP findings, so the
Error a refused sender gets reads like any other.
"""

from __future__ import annotations

from functools import lru_cache

from hub.cap.model import Alert, MsgType, Scope
from hub.cap.problems import Problem, error
from hub.domain import KIND_PARAMETER, Account, Entity, Kind, Role
from hub.routing.geometry import Territory, area_intersects, parse_territory


def may_manage_templates(account: Account) -> bool:
    """Templates are an entity's prepared scenarios: its coordinators and co-coordinators
    write them; any account may read them, and sending one is checked like any alert."""
    return account.role in (Role.COORDINATOR, Role.CO_COORDINATOR)


def message_kind(alert: Alert) -> Kind | Problem:
    """The kind a message declares with a ``messageKind`` parameter; an alert by default."""
    for i, info in enumerate(alert.infos, 1):
        for n, parameter in enumerate(info.parameters, 1):
            if parameter.value_name == KIND_PARAMETER:
                try:
                    return Kind(parameter.value.strip().lower())
                except ValueError:
                    allowed = ", ".join(k.value for k in Kind)
                    return error(f"/alert/info[{i}]/parameter[{n}]/value", "message-kind",
                                 f"{KIND_PARAMETER} {parameter.value!r} is not one of {allowed}")
    return Kind.ALERT


@lru_cache(maxsize=256)
def _territory(text: str) -> Territory:
    return parse_territory(text)


def check_sender(alert: Alert, entity: Entity) -> Problem | None:
    if alert.sender in entity.senders:
        return None
    return error("/alert/sender", "sender-not-registered",
                 f"sender {alert.sender!r} is not registered to this account's entity")


def check(alert: Alert, account: Account, entity: Entity) -> list[Problem]:
    """Everything but the sender (``check_sender``, which ingest runs before the signature)."""
    found: list[Problem] = []
    if alert.msg_type in (MsgType.ACK, MsgType.ERROR):
        return found  # answers to messages are not alerts: no kind, groups or areas to check
    kind = message_kind(alert)
    if isinstance(kind, Problem):
        found.append(kind)
    elif not account.grants.may_send(kind):
        found.append(error("/alert", "kind-not-granted",
                           f"this account may not send messages of kind {kind.value}"))
    if alert.scope is Scope.PRIVATE:
        for group in alert.address_list:
            if not account.grants.may_reach(group):
                found.append(error("/alert/addresses", "group-not-granted",
                                   f"this account may not address group {group!r}"))
    if entity.territory:
        found.extend(_outside(alert, _territory(entity.territory)))
    return found


def _outside(alert: Alert, territory: Territory) -> list[Problem]:
    found = []
    for i, info in enumerate(alert.infos, 1):
        for j, area in enumerate(info.areas, 1):
            meets = area_intersects(territory, area)
            path = f"/alert/info[{i}]/area[{j}]"
            if meets is False:
                found.append(error(path, "area-outside-territory",
                                   f"area {area.area_desc!r} lies outside the entity's territory"))
            elif meets is None:
                found.append(error(path, "area-undecidable",
                                   f"area {area.area_desc!r} has only geocodes the entity's territory "
                                   "does not list: add a polygon or circle"))
    return found
