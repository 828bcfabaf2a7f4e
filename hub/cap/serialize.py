"""CAP 1.2 model → XML (what our schema accepts) and → JSON (for the REST API).

``parse(to_xml(alert)).alert == alert`` for every alert the model can hold. The JSON form uses
the specification's element names (``msgType``, ``info``, ``areaDesc``) so that it reads like
the CAP it came from; repeated elements become arrays, absent ones are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from lxml import etree

from hub.cap.model import (
    NAMESPACE,
    Alert,
    Area,
    Info,
    Resource,
    ValuePair,
    format_datetime,
)

_NS = f"{{{NAMESPACE}}}"
_NSMAP = {None: NAMESPACE}


def to_element(alert: Alert) -> etree._Element:
    """The alert as an lxml tree in the CAP 1.2 namespace (default prefix)."""
    root = etree.Element(_NS + "alert", nsmap=_NSMAP)  # type: ignore[arg-type]
    _add(root, "identifier", alert.identifier)
    _add(root, "sender", alert.sender)
    _add(root, "sent", format_datetime(alert.sent))
    _add(root, "status", alert.status.value)
    _add(root, "msgType", alert.msg_type.value)
    _add(root, "source", alert.source)
    _add(root, "scope", alert.scope.value)
    _add(root, "restriction", alert.restriction)
    _add(root, "addresses", alert.addresses)
    for code in alert.codes:
        _add(root, "code", code)
    _add(root, "note", alert.note)
    _add(root, "references", alert.references)
    _add(root, "incidents", alert.incidents)
    for info in alert.infos:
        _info(etree.SubElement(root, _NS + "info"), info)
    return root


def to_xml(alert: Alert, *, pretty: bool = True) -> bytes:
    """The alert as a UTF-8 CAP 1.2 document with an XML declaration."""
    root = to_element(alert)
    if pretty:
        etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _add(parent: etree._Element, name: str, text: str | None) -> None:
    if text is not None:
        etree.SubElement(parent, _NS + name).text = text


def _pairs(parent: etree._Element, name: str, pairs: Sequence[ValuePair]) -> None:
    for pair in pairs:
        el = etree.SubElement(parent, _NS + name)
        _add(el, "valueName", pair.value_name)
        _add(el, "value", pair.value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _info(el: etree._Element, info: Info) -> None:
    _add(el, "language", info.language)
    for category in info.categories:
        _add(el, "category", category.value)
    _add(el, "event", info.event)
    for response in info.response_types:
        _add(el, "responseType", response.value)
    _add(el, "urgency", info.urgency.value)
    _add(el, "severity", info.severity.value)
    _add(el, "certainty", info.certainty.value)
    _add(el, "audience", info.audience)
    _pairs(el, "eventCode", info.event_codes)
    _add(el, "effective", _time(info.effective))
    _add(el, "onset", _time(info.onset))
    _add(el, "expires", _time(info.expires))
    _add(el, "senderName", info.sender_name)
    _add(el, "headline", info.headline)
    _add(el, "description", info.description)
    _add(el, "instruction", info.instruction)
    _add(el, "web", info.web)
    _add(el, "contact", info.contact)
    _pairs(el, "parameter", info.parameters)
    for resource in info.resources:
        _resource(etree.SubElement(el, _NS + "resource"), resource)
    for area in info.areas:
        _area(etree.SubElement(el, _NS + "area"), area)


def _resource(el: etree._Element, resource: Resource) -> None:
    _add(el, "resourceDesc", resource.resource_desc)
    _add(el, "mimeType", resource.mime_type)
    _add(el, "size", None if resource.size is None else str(resource.size))
    _add(el, "uri", resource.uri)
    _add(el, "derefUri", resource.deref_uri)
    _add(el, "digest", resource.digest)


def _area(el: etree._Element, area: Area) -> None:
    _add(el, "areaDesc", area.area_desc)
    for polygon in area.polygons:
        _add(el, "polygon", polygon.text)
    for circle in area.circles:
        _add(el, "circle", circle.text)
    _pairs(el, "geocode", area.geocodes)
    _add(el, "altitude", _decimal(area.altitude))
    _add(el, "ceiling", _decimal(area.ceiling))


# --- JSON -------------------------------------------------------------------------------

Json = dict[str, Any]


def _drop_empty(d: Json) -> Json:
    return {k: v for k, v in d.items() if v is not None and v != []}


def _json_pairs(pairs: Sequence[ValuePair]) -> list[Json]:
    return [{"valueName": p.value_name, "value": p.value} for p in pairs]


def to_json(alert: Alert) -> Json:
    """The alert as JSON-ready data keyed by the specification's element names."""
    return _drop_empty({
        "identifier": alert.identifier,
        "sender": alert.sender,
        "sent": format_datetime(alert.sent),
        "status": alert.status.value,
        "msgType": alert.msg_type.value,
        "source": alert.source,
        "scope": alert.scope.value,
        "restriction": alert.restriction,
        "addresses": alert.addresses,
        "code": list(alert.codes),
        "note": alert.note,
        "references": alert.references,
        "incidents": alert.incidents,
        "info": [_json_info(i) for i in alert.infos],
    })


def _json_info(info: Info) -> Json:
    return _drop_empty({
        "language": info.lang,
        "category": [c.value for c in info.categories],
        "event": info.event,
        "responseType": [r.value for r in info.response_types],
        "urgency": info.urgency.value,
        "severity": info.severity.value,
        "certainty": info.certainty.value,
        "audience": info.audience,
        "eventCode": _json_pairs(info.event_codes),
        "effective": _time(info.effective),
        "onset": _time(info.onset),
        "expires": _time(info.expires),
        "senderName": info.sender_name,
        "headline": info.headline,
        "description": info.description,
        "instruction": info.instruction,
        "web": info.web,
        "contact": info.contact,
        "parameter": _json_pairs(info.parameters),
        "resource": [_json_resource(r) for r in info.resources],
        "area": [_json_area(a) for a in info.areas],
    })


def _json_resource(resource: Resource) -> Json:
    return _drop_empty({
        "resourceDesc": resource.resource_desc,
        "mimeType": resource.mime_type,
        "size": resource.size,
        "uri": resource.uri,
        "derefUri": resource.deref_uri,
        "digest": resource.digest,
    })


def _json_area(area: Area) -> Json:
    return _drop_empty({
        "areaDesc": area.area_desc,
        "polygon": [p.text for p in area.polygons],
        "circle": [c.text for c in area.circles],
        "geocode": _json_pairs(area.geocodes),
        # Decimal as a string keeps the exact value the sender wrote.
        "altitude": _decimal(area.altitude),
        "ceiling": _decimal(area.ceiling),
    })
