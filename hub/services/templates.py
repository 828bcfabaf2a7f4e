"""Templates: ready scenarios an entity keeps, sent in one call with a few values filled in.

A template is a CAP skeleton as JSON, with named placeholders in its texts::

    {"event": "Brand", "category": "Fire", "urgency": "Immediate", "severity": "Severe",
     "certainty": "Observed", "status": "Actual", "kind": "alert", "expires_in": 120,
     "languages": {"nl": {"headline": "Brand in {straat}", "instruction": "Sluit ramen en deuren."},
                   "fr": {"headline": "Incendie {straat}", "instruction": "Fermez portes et fenêtres."}},
     "channels": ["sms", "email"], "groups": ["plp-centrum"],
     "area": {"areaDesc": "{straat}", "polygons": ["50.83,4.33 50.83,4.38 50.87,4.38 50.83,4.33"],
              "circles": [], "geocodes": {"NIS": "21001"}}}

**Placeholders** are ``{name}`` (a letter or ``_``, then letters, digits or ``_``) in any
text field, the CAP enumerations included; ``{{`` and ``}}`` write a brace. A send must give
exactly the template's placeholders: one missing or one the template does not have is
refused before any CAP is built. Values are text; the hub escapes them for XML.

**Sending** builds one CAP 1.2 Alert: the entity's first sender, a fresh identifier
(``tpl-<id>-<random>``), ``sent`` now, one ``<info>`` per language, ``messageKind`` and
``channels`` parameters, ``<addresses>`` with Private scope when the template names groups.
The hub signs it (on behalf of the account) and hands it to ingest exactly as ``POST /cap``
does: same checks (schema, rules, rights, territory...), same signed Ack or CAP Error. A
result that is not valid CAP is refused there with its CAP Error, and nothing is sent.

The checks and the building are pure; ``Templates`` does the store and ingest I/O.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from xml.sax.saxutils import escape

from hub.domain import KIND_PARAMETER, Channel, Entity, Kind
from hub.errors import HubError
from hub.services.ingest import Caller, Ingest, Outcome
from hub.store.sql_templates import StoredTemplate

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PLACEHOLDER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
MAX_VALUE = 2_000  # characters per placeholder value
_STATUSES = ("Actual", "Exercise", "Test")
_SCOPES = ("Public", "Private")
_TEXTS = ("headline", "description", "instruction")
_KEYS = frozenset({"event", "category", "urgency", "severity", "certainty", "status", "scope", "kind",
                   "expires_in", "languages", "channels", "groups", "area"})
_AREA_KEYS = frozenset({"areaDesc", "polygons", "circles", "geocodes"})


class TemplateError(HubError):
    """A template or the values of a send that cannot be used; the message names where."""


# --- the skeleton, checked (pure) ---------------------------------------------------------


def placeholders_in(text: str, where: str) -> list[str]:
    """The placeholder names of one text, in order; a malformed one is a ``TemplateError``."""
    names: list[str] = []
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc} (write {{{{ and }}}} for a literal brace)") from exc
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if not PLACEHOLDER.fullmatch(name) or spec or conversion:
            raise TemplateError(f"{where}: placeholder {{{name}{'!' + conversion if conversion else ''}"
                                f"{':' + spec if spec else ''}}} is not a plain name such as {{street}}")
        names.append(name)
    return names


def _texts(body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, text) of every field that may hold placeholders."""
    for key in ("event", "category", "urgency", "severity", "certainty"):
        yield key, body[key]
    for lang, texts in body["languages"].items():
        for key in _TEXTS:
            if key in texts:
                yield f"languages.{lang}.{key}", texts[key]
    area = body["area"]
    yield "area.areaDesc", area["areaDesc"]
    for i, polygon in enumerate(area.get("polygons", [])):
        yield f"area.polygons[{i}]", polygon
    for i, circle in enumerate(area.get("circles", [])):
        yield f"area.circles[{i}]", circle
    for name, value in area.get("geocodes", {}).items():
        yield f"area.geocodes.{name}", value


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TemplateError(f"{where}: must be a list of strings")
    return value


def check_template(name: str, body: Any) -> dict[str, Any]:
    """The body, checked and with its defaults; a ``TemplateError`` names the first fault."""
    if not NAME.fullmatch(name) or name.isdigit():
        raise TemplateError(f"name {name!r}: 1-64 letters, digits, '.', '_' or '-', starting with a "
                            "letter or digit, and not only digits")
    if not isinstance(body, dict):
        raise TemplateError("the template must be a JSON object")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise TemplateError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(_KEYS))})")
    out: dict[str, Any] = dict(body)
    for key in ("event", "category", "urgency", "severity", "certainty"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise TemplateError(f"{key}: required, a non-empty string")
    _check_choices(out)
    _check_languages(body.get("languages"))
    _check_area(body.get("area"))
    for where, text in _texts(out):
        placeholders_in(text, where)
    return out


def _check_choices(out: dict[str, Any]) -> None:
    """status, kind, expires_in, channels, groups and scope, with their defaults filled in."""
    out.setdefault("status", "Actual")
    if out["status"] not in _STATUSES:
        raise TemplateError(f"status: {out['status']!r} is not one of {', '.join(_STATUSES)}")
    out.setdefault("kind", Kind.ALERT.value)
    if out["kind"] not in {k.value for k in Kind}:
        raise TemplateError(f"kind: {out['kind']!r} is not one of {', '.join(k.value for k in Kind)}")
    expires_in = out.setdefault("expires_in", 120)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 1 <= expires_in <= 43_200:
        raise TemplateError("expires_in: minutes until the alert expires, 1 to 43200")
    channels = _strings(out.setdefault("channels", []), "channels")
    bad = [c for c in channels if c not in {ch.value for ch in Channel}]
    if bad:
        raise TemplateError(f"channels: {bad[0]!r} is not one of {', '.join(c.value for c in Channel)}")
    groups = _strings(out.setdefault("groups", []), "groups")
    if any(not g or any(ch.isspace() for ch in g) for g in groups):
        raise TemplateError("groups: group ids are non-empty and without spaces")
    out.setdefault("scope", "Private" if groups else "Public")
    if out["scope"] not in _SCOPES:
        raise TemplateError(f"scope: {out['scope']!r} is not one of {', '.join(_SCOPES)}")
    if out["scope"] == "Private" and not groups:
        raise TemplateError("scope: Private needs the groups it addresses (groups)")


def _check_languages(languages: Any) -> None:
    if not isinstance(languages, dict) or not languages:
        raise TemplateError("languages: required, e.g. {\"nl\": {\"headline\": \"...\"}}")
    for lang, texts in languages.items():
        if not LANGUAGE.fullmatch(lang):
            raise TemplateError(f"languages.{lang}: not a language tag such as nl or nl-BE")
        if not isinstance(texts, dict) or not texts.get("headline"):
            raise TemplateError(f"languages.{lang}: an object with at least a headline")
        extra = sorted(set(texts) - set(_TEXTS))
        if extra or not all(isinstance(v, str) for v in texts.values()):
            raise TemplateError(f"languages.{lang}: only {', '.join(_TEXTS)}, as strings")


def _check_area(area: Any) -> None:
    if not isinstance(area, dict) or not isinstance(area.get("areaDesc"), str) or not area["areaDesc"]:
        raise TemplateError("area: required, with an areaDesc")
    extra = sorted(set(area) - _AREA_KEYS)
    if extra:
        raise TemplateError(f"area.{extra[0]}: unknown field (known: {', '.join(sorted(_AREA_KEYS))})")
    _strings(area.get("polygons", []), "area.polygons")
    _strings(area.get("circles", []), "area.circles")
    geocodes = area.get("geocodes", {})
    if not isinstance(geocodes, dict) or not all(isinstance(v, str) for v in geocodes.values()):
        raise TemplateError("area.geocodes: an object of valueName: value strings")


def placeholders(body: Mapping[str, Any]) -> list[str]:
    """Every placeholder name of a checked body, each once, in order of appearance."""
    seen: dict[str, None] = {}
    for where, text in _texts(body):
        for name in placeholders_in(text, where):
            seen.setdefault(name)
    return list(seen)


def check_values(body: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, str]:
    """The values of a send, checked against the template's placeholders."""
    wanted = placeholders(body)
    missing = [n for n in wanted if n not in values]
    if missing:
        raise TemplateError(f"placeholder {missing[0]!r} has no value (this template needs: "
                            f"{', '.join(wanted) or 'none'})")
    unknown = sorted(set(values) - set(wanted))
    if unknown:
        raise TemplateError(f"placeholder {unknown[0]!r} is not in this template (it has: "
                            f"{', '.join(wanted) or 'none'})")
    out: dict[str, str] = {}
    for name in wanted:
        value = values[name]
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise TemplateError(f"placeholder {name!r}: the value must be text")
        out[name] = str(value)
        if len(out[name]) > MAX_VALUE:
            raise TemplateError(f"placeholder {name!r}: at most {MAX_VALUE} characters")
    return out


# --- the CAP message (pure) ---------------------------------------------------------------


def _cap_time(moment: datetime) -> str:
    # CAP 1.2 §3.3.2: no fractions, an explicit offset; UTC is written -00:00.
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def build_cap(template: StoredTemplate, body: Mapping[str, Any], values: Mapping[str, str], *,
              sender: str, now: datetime, identifier: str | None = None) -> bytes:
    """The CAP 1.2 Alert of a template with its values filled in (unsigned)."""
    def fill(text: str) -> str:
        return escape(text.format_map(values))

    ident = identifier or f"tpl-{template.id}-{uuid.uuid4().hex[:16]}"
    expires = _cap_time(now + timedelta(minutes=int(body["expires_in"])))
    area = body["area"]
    area_xml = f"<area><areaDesc>{fill(area['areaDesc'])}</areaDesc>"
    area_xml += "".join(f"<polygon>{fill(p)}</polygon>" for p in area.get("polygons", []))
    area_xml += "".join(f"<circle>{fill(c)}</circle>" for c in area.get("circles", []))
    area_xml += "".join(f"<geocode><valueName>{escape(n)}</valueName><value>{fill(v)}</value>"
                        "</geocode>" for n, v in area.get("geocodes", {}).items())
    area_xml += "</area>"
    parameters = (f"<parameter><valueName>{KIND_PARAMETER}</valueName><value>{body['kind']}</value>"
                  "</parameter>")
    if body["channels"]:
        parameters += (f"<parameter><valueName>channels</valueName>"
                       f"<value>{','.join(body['channels'])}</value></parameter>")
    infos = []
    for lang, texts in body["languages"].items():
        parts = [f"<language>{lang}</language>", f"<category>{fill(body['category'])}</category>",
                 f"<event>{fill(body['event'])}</event>", f"<urgency>{fill(body['urgency'])}</urgency>",
                 f"<severity>{fill(body['severity'])}</severity>",
                 f"<certainty>{fill(body['certainty'])}</certainty>", f"<expires>{expires}</expires>"]
        parts += [f"<{key}>{fill(texts[key])}</{key}>" for key in _TEXTS if key in texts]
        infos.append("<info>" + "".join(parts) + parameters + area_xml + "</info>")
    addresses = (f"<addresses>{escape(' '.join(body['groups']))}</addresses>"
                 if body["scope"] == "Private" else "")
    doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="{CAP_NS}">'
           f"<identifier>{ident}</identifier><sender>{escape(sender)}</sender><sent>{_cap_time(now)}</sent>"
           f"<status>{body['status']}</status><msgType>Alert</msgType><scope>{body['scope']}</scope>"
           f"{addresses}<code>template:{escape(template.name)}</code>{''.join(infos)}</alert>")
    return doc.encode("utf-8")


def template_json(template: StoredTemplate) -> dict[str, Any]:
    body = json.loads(template.body)
    return {"id": template.id, "name": template.name, "template": body,
            "placeholders": placeholders(body), "createdAt": template.created_at.isoformat(),
            "updatedAt": template.updated_at.isoformat(), "href": f"/templates/{template.id}"}


# --- the service --------------------------------------------------------------------------


class TemplateStore(Protocol):
    async def add_template(self, entity_id: int, name: str, body: str, *,
                           at: datetime) -> StoredTemplate: ...

    async def template(self, entity_id: int, key: int | str) -> StoredTemplate | None: ...

    async def templates(self, entity_id: int) -> list[StoredTemplate]: ...

    async def update_template(self, template_id: int, name: str, body: str, *,
                              at: datetime) -> StoredTemplate | None: ...

    async def delete_template(self, template_id: int) -> bool: ...


class NoTemplate(HubError):
    """No such template for this entity (another entity's answers the same)."""


class Templates:
    """Templates of the caller's entity. ``sign`` signs CAP bytes as the hub (off the loop)."""

    def __init__(self, store: TemplateStore, ingest: Ingest, sign: Callable[[bytes], Awaitable[bytes]],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._ingest = ingest
        self._sign = sign
        self._clock = clock

    async def find(self, entity: Entity, key: str) -> StoredTemplate:
        """By id (digits) or by name; another entity's template is ``NoTemplate``."""
        if key.isdigit() and (not key.isascii() or len(key) > 18):  # int() and SQLite's INTEGER refuse it
            raise NoTemplate(f"no template {key!r}")
        found = await self._store.template(entity.id, int(key) if key.isdigit() else key)
        if found is None:
            raise NoTemplate(f"no template {key!r}")
        return found

    async def add(self, entity: Entity, name: str, body: Any) -> StoredTemplate:
        checked = check_template(name, body)
        return await self._store.add_template(entity.id, name, json.dumps(checked, ensure_ascii=False),
                                              at=self._clock())

    async def replace(self, entity: Entity, key: str, name: str, body: Any) -> StoredTemplate:
        current = await self.find(entity, key)
        checked = check_template(name, body)
        updated = await self._store.update_template(current.id, name, json.dumps(checked, ensure_ascii=False),
                                                    at=self._clock())
        if updated is None:
            raise NoTemplate(f"no template {key!r}")
        return updated

    async def remove(self, entity: Entity, key: str) -> None:
        current = await self.find(entity, key)
        await self._store.delete_template(current.id)

    async def build(self, entity: Entity, key: str, values: Mapping[str, Any],
                    identifier: str | None = None) -> bytes:
        """The template's alert with these values, unsigned (what a send signs; a preview
        can plan it)."""
        template = await self.find(entity, key)
        body = json.loads(template.body)
        filled = check_values(body, values)
        return build_cap(template, body, filled, sender=entity.senders[0], now=self._clock(),
                         identifier=identifier)

    async def send(self, caller: Caller, key: str, values: Mapping[str, Any],
                   identifier: str | None = None) -> Outcome:
        """Build, sign and ingest the template's alert; the Outcome is ingest's own."""
        data = await self.build(caller.entity, key, values, identifier)
        signed = await self._sign(data)
        return await self._ingest.post(signed, caller, on_behalf=True)


def values_from_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``key=value`` pairs (the CLI's ``--set``) as a dict; a pair without ``=`` is refused."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TemplateError(f"--set {pair!r}: write NAME=VALUE")
        out[key] = value
    return out
