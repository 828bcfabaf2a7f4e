"""The OpenAPI 3.1 document of the REST API, served at ``GET /openapi.json``.

A test checks that every route the app serves is described here and nothing else is.
"""

from __future__ import annotations

from typing import Any

from hub import __version__

_CAP = {"application/cap+xml": {"schema": {"type": "string", "description": "a CAP 1.2 document"}}}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_OPTIONAL_BEARER: list[dict[str, list[str]]] = [{}, {"bearer": []}]
_NOT_WRITER = {"description": "a mandated person: only coordinators and co-coordinators write templates",
               "content": _PROBLEM}


def _cap_answer(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {**_CAP, "application/json": {"schema": {"$ref": "#/components/schemas/IngestAnswer"}}},
    }


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cap-hub",
            "version": __version__,
            "description": "A standards-based CAP 1.2 alert hub: post signed CAP, get a signed "
                           "CAP Ack or Error; read alerts back.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "paths": {
            "/cap": {"post": {
                "summary": "Post a CAP 1.2 message (Alert, Update, Cancel, Ack, Error)",
                "security": _BEARER,
                "requestBody": {"required": True, "content": {
                    "application/cap+xml": {"schema": {"type": "string"}},
                    "application/xml": {"schema": {"type": "string"}},
                    "text/xml": {"schema": {"type": "string"}},
                }},
                "responses": {
                    "201": _cap_answer("accepted: a signed CAP Ack; Location names the stored alert"),
                    "200": _cap_answer("the same message again: the original Ack"),
                    "400": _cap_answer("not valid CAP 1.2, or a bad signature: a signed CAP Error"),
                    "401": _cap_answer("no valid bearer token"),
                    "403": _cap_answer("not allowed: sender, kind, groups, territory or signer"),
                    "408": _cap_answer("the body arrived too slowly"),
                    "409": _cap_answer("the same sender, identifier and sent with other content"),
                    "413": _cap_answer("the body is over the size limit"),
                    "415": _cap_answer("the body is not CAP XML"),
                    "422": _cap_answer("valid CAP the hub will not act on (unknown or foreign "
                                       "references, expired on arrival)"),
                },
            }},
            "/alerts": {"get": {
                "summary": "List alerts, newest first",
                "security": _OPTIONAL_BEARER,
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {"name": "sender", "in": "query", "schema": {"type": "string"}},
                    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                    {"name": "before", "in": "query", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 500}},
                ],
                "responses": {
                    "200": {"description": "a page of alerts; without a token only Public Actual ones",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/AlertPage"}}}},
                    "400": {"description": "a bad parameter", "content": _PROBLEM},
                },
            }},
            "/alerts/{id}": {"get": {
                "summary": "One alert as CAP: hub-signed, or as received with ?as=received",
                "security": _OPTIONAL_BEARER,
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {"name": "as", "in": "query", "schema": {"enum": ["signed", "received"]}},
                ],
                "responses": {
                    "200": {"description": "the CAP document", "content": _CAP},
                    "304": {"description": "not modified (If-None-Match)"},
                    "400": {"description": "a bad parameter", "content": _PROBLEM},
                    "401": {"description": "not public: a token is needed", "content": _PROBLEM},
                    "404": {"description": "no such alert", "content": _PROBLEM},
                },
            }},
            **_group_paths(),
            **_template_paths(),
            **_feed_paths(),
            **_partner_paths(),
            "/campaigns": {"get": _op(
                "Campaigns of this account's entity; ?alert=IDENTIFIER for those of one alert",
                {"200": _json("CampaignList", "campaigns")},
                parameters=[{"name": "alert", "in": "query", "schema": {"type": "string"}}])},
            "/campaigns/{id}": {"get": _op("One campaign", {"200": _json("Campaign", "the campaign")},
                                           parameters=[_MID])},
            **_campaign_paths(),
            "/health": {"get": {
                "summary": "Whether the store and the broker answer",
                "responses": {"200": {"description": "all reachable"},
                              "503": {"description": "something is down"}},
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text exposition format"}},
            }},
            "/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }},
        },
    }


def _partner_paths() -> dict[str, Any]:
    """The CAP document the feeds link, and partner push subscriptions (coordinators only)."""
    sub = _json("Subscription", "the subscription (never its secret)")
    refusals = {
        "401": {"description": "no valid bearer token", "content": _PROBLEM},
        "403": {"description": "not a coordinator", "content": _PROBLEM},
        "404": {"description": "no such subscription for this entity", "content": _PROBLEM},
    }
    return {
        "/alerts/{id}.cap": {"get": {
            "summary": "One alert as hub-signed CAP (application/cap+xml): the URL the feeds link; "
                       "cancelled, superseded and expired alerts stay readable (X-Alert-State)",
            "security": _OPTIONAL_BEARER,
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                {"name": "as", "in": "query", "schema": {"enum": ["signed", "received"]}},
            ],
            "responses": {
                "200": {"description": "the CAP document", "content": _CAP},
                "304": {"description": "not modified (If-None-Match)"},
                "400": {"description": "a bad parameter", "content": _PROBLEM},
                "401": {"description": "not public: a token is needed", "content": _PROBLEM},
                "404": {"description": "no such alert", "content": _PROBLEM},
            },
        }},
        "/subscriptions": {
            "get": {"summary": "This entity's partner push subscriptions, with delivery counts",
                    "security": _BEARER,
                    "responses": {"200": _json("SubscriptionList", "subscriptions"), **refusals}},
            "post": {"summary": "Register a partner: each change of a public alert its filters match is "
                                "POSTed to url as hub-signed CAP, X-Hub-Signature-256: sha256=<HMAC of "
                                "the body under secret>",
                     "security": _BEARER,
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "$ref": "#/components/schemas/SubscriptionInput"}}}},
                     "responses": {"201": sub, **refusals,
                                   "409": {"description": "the name is taken", "content": _PROBLEM},
                                   "422": {"description": "a bad field; the detail names it",
                                           "content": _PROBLEM}}},
        },
        "/subscriptions/{id}": {
            "get": {"summary": "One subscription", "security": _BEARER, "parameters": [_MID],
                    "responses": {"200": sub, **refusals}},
            "delete": {"summary": "Remove a subscription; what it was owed is recorded as failed",
                       "security": _BEARER, "parameters": [_MID],
                       "responses": {"204": {"description": "removed"}, **refusals}},
        },
    }


def _feed_paths() -> dict[str, Any]:
    """The free CAP feeds (no token): Atom or RSS 2.0 index feeds with ``cap:`` fields."""
    def param(name: str, description: str, **schema: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "description": description,
                "schema": {"type": "string", **schema}}

    parameters = [
        param("lang", "language tags, comma-separated; nl also takes nl-BE"),
        param("severity", "CAP severities, comma-separated"),
        param("urgency", "CAP urgencies, comma-separated"),
        param("event", "the CAP event, any case"),
        param("geocode", "valueName=value or value, comma-separated"),
        param("bbox", "minlon,minlat,maxlon,maxlat: alerts whose area meets the box"),
        param("point", "lat,lon: alerts whose area contains the point"),
        param("since", "alerts sent at or after (ISO 8601 with an offset)", format="date-time"),
        {"name": "page", "in": "query", "description": "a page beyond the first (rel=next)",
         "schema": {"type": "integer", "minimum": 1}},
    ]

    def feed(summary: str, media: str) -> dict[str, Any]:
        return {"get": {
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "the feed; ETag, Last-Modified, Cache-Control; gzip when asked",
                        "content": {media: {"schema": {"type": "string"}}}},
                "304": {"description": "not modified (If-None-Match or If-Modified-Since)"},
                "400": {"description": "a bad filter; the detail names the parameter", "content": _PROBLEM},
                "404": {"description": "no such page", "content": _PROBLEM},
            },
        }}

    return {
        "/feeds/alerts.atom": feed("Active public Actual alerts as an Atom feed, newest first",
                                   "application/atom+xml"),
        "/feeds/alerts.rss": feed("Active public Actual alerts as an RSS 2.0 feed, newest first",
                                  "application/rss+xml"),
        "/feeds/test.atom": feed("Active public Exercise and Test alerts as an Atom feed",
                                 "application/atom+xml"),
    }


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


_GID = {"name": "gid", "in": "path", "required": True, "schema": {"type": "string"}}
_MID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_REFUSALS = {
    "401": {"description": "no valid bearer token", "content": _PROBLEM},
    "403": {"description": "seen but not manageable by this account", "content": _PROBLEM},
    "404": {"description": "no such group or member for this account (another entity's answer "
                           "the same)", "content": _PROBLEM},
    "422": {"description": "the request is wrong; the detail says where", "content": _PROBLEM},
}


def _op(summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"summary": summary, "security": _BEARER, "responses": {**responses, **_REFUSALS}, **more}


def _campaign_paths() -> dict[str, Any]:
    return {
        "/campaigns/{id}/events": {"get": _op(
            "Live progress as Server-Sent Events: 'progress' events with the campaign (as GET "
            "/campaigns/{id}) when it changes, a few per second at most, then one 'end' event",
            {"200": {"description": "an event stream", "content": {"text/event-stream": {"schema": {
                "type": "string"}}}}}, parameters=[_MID])},
        "/campaigns/{id}/report": {"get": _op(
            "The campaign's report: JSON, CSV (one row per delivery; personal data only for an "
            "account that manages every group's members) or a self-contained HTML page",
            {"200": {"description": "the report", "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}}},
             "400": {"description": "an unknown format", "content": _PROBLEM}},
            parameters=[_MID, {"name": "format", "in": "query",
                               "schema": {"type": "string", "enum": ["json", "csv", "html"]}}])},
        "/campaigns:preview": {"post": _op(
            "Plan a CAP message, or a template with its values, without sending it: deliveries per "
            "channel and language, SMS parts and encoding per language (with what forces UCS-2 and a "
            "GSM-7 rewrite), estimated cost",
            {"200": {"description": "the preview", "content": {"application/json": {"schema": {
                "type": "object"}}}},
             "400": {"description": "not valid CAP 1.2", "content": _PROBLEM},
             "413": {"description": "too large", "content": _PROBLEM},
             "415": {"description": "not CAP", "content": _PROBLEM}},
            requestBody={"required": True, "content": {**_CAP, "application/json": {"schema": {
                "type": "object", "required": ["template"], "description": "a template and its values",
                "properties": {"template": {"type": "string"}, "values": {"type": "object"}}}}}})},
    }


def _group_paths() -> dict[str, Any]:
    member_body = {"required": True, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/MemberInput"}}}}
    return {
        "/groups": {
            "get": _op("The groups this account may see", {"200": _json("GroupList", "groups")}),
            "post": _op("Create a group (an account with every group of its entity)",
                        {"201": _json("Group", "the group")},
                        requestBody={"required": True, "content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/GroupInput"}}}}),
        },
        "/groups/{gid}": {
            "get": _op("One group", {"200": _json("Group", "the group")}, parameters=[_GID]),
            "patch": _op("Change a group's name, audience, territory or languages",
                         {"200": _json("Group", "the group")}, parameters=[_GID],
                         requestBody={"required": True, "content": {"application/json": {"schema": {
                             "$ref": "#/components/schemas/GroupInput"}}}}),
            "delete": _op("Delete a group; members in no other group are deleted with their data "
                          "(audited)", {"204": {"description": "deleted"}}, parameters=[_GID]),
        },
        "/groups/{gid}/members": {
            "get": _op("Members of a group, with paging and search", {"200": _json("MemberPage", "a page")},
                       parameters=[_GID,
                                   {"name": "search", "in": "query", "schema": {"type": "string"}},
                                   {"name": "after", "in": "query", "schema": {"type": "integer"}},
                                   {"name": "limit", "in": "query", "schema": {"type": "integer"}}]),
            "post": _op("Add one member", {"201": _json("Member", "the member")}, parameters=[_GID],
                        requestBody=member_body),
        },
        "/groups/{gid}/members:import": {"post": _op(
            "Import a CSV member list (one transaction); ?dry_run=1 reports only, ?strict=1 imports "
            "nothing when any row is refused",
            {"200": _json("ImportReport", "what happened to each row")}, parameters=[
                _GID, {"name": "dry_run", "in": "query", "schema": {"type": "boolean"}},
                {"name": "strict", "in": "query", "schema": {"type": "boolean"}}],
            requestBody={"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}})},
        "/groups/{gid}/members:export": {"get": _op(
            "The group's members as CSV (audited)",
            {"200": {"description": "CSV, ';'-separated, UTF-8 with BOM",
                     "content": {"text/csv": {"schema": {"type": "string"}}}}}, parameters=[_GID])},
        "/groups/{gid}/members/{id}": {"delete": _op(
            "Take a member out of the group", {"204": {"description": "removed"}}, parameters=[_GID, _MID])},
        "/members/{id}": {
            "get": _op("One member", {"200": _json("Member", "the member")}, parameters=[_MID]),
            "put": _op("Replace a member's data", {"200": _json("Member", "the member")},
                       parameters=[_MID], requestBody=member_body),
            "delete": _op("Erase the member's personal data everywhere (audited)",
                          {"204": {"description": "erased"}}, parameters=[_MID]),
        },
    }


_TID = {"name": "id", "in": "path", "required": True, "description": "the template's id or name",
        "schema": {"type": "string"}}


def _template_paths() -> dict[str, Any]:
    """Templates (ready scenarios of the entity) and the entity's ledger."""
    body = {"required": True, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/TemplateInput"}}}}
    return {
        "/templates": {
            "get": _op("The templates of this account's entity", {"200": _json("TemplateList", "templates")}),
            "post": _op("Store a template: a CAP skeleton with {placeholders} (coordinators and "
                        "co-coordinators)",
                        {"201": _json("Template", "the template"), "403": _NOT_WRITER,
                         "409": {"description": "the entity has a template of that name",
                                 "content": _PROBLEM}}, requestBody=body),
        },
        "/templates/{id}": {
            "get": _op("One template", {"200": _json("Template", "the template")}, parameters=[_TID]),
            "put": _op("Replace a template", {"200": _json("Template", "the template"), "403": _NOT_WRITER},
                       parameters=[_TID], requestBody=body),
            "delete": _op("Delete a template", {"204": {"description": "deleted"}, "403": _NOT_WRITER},
                          parameters=[_TID]),
        },
        "/templates/{id}:send": {"post": {
            "summary": "Send a template: the hub fills in the values, builds and signs the CAP "
                       "on behalf of the account and ingests it as POST /cap does",
            "security": _BEARER, "parameters": [_TID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"values": {"type": "object"}}}}}},
            "responses": {
                "201": _cap_answer("accepted: the signed CAP Ack; Location names the stored alert"),
                "400": _cap_answer("the result is not valid CAP: the signed CAP Error, nothing sent"),
                "401": {"description": "no valid bearer token", "content": _PROBLEM},
                "403": _cap_answer("not allowed for this account (kind, groups, territory)"),
                "404": {"description": "no such template for this account's entity", "content": _PROBLEM},
                "422": {"description": "a placeholder missing or unknown, or CAP the hub will not "
                                       "act on", "content": _PROBLEM},
            },
        }},
        "/entities/{id}/ledger": {"get": _op(
            "The entity's ledger: activation, subscription, prepaid packages, usage per campaign, "
            "balance and warnings (euro excluding VAT)", {"200": _json("Ledger", "the ledger")},
            parameters=[_MID])},
    }


def _member_schemas() -> dict[str, Any]:
    member_fields = {
        "externalId": {"type": ["string", "null"]}, "name": {"type": "string"},
        "language": {"enum": ["nl", "fr", "de", "en"]},
        "emails": {"type": "array", "items": {"type": "string"}},
        "address": {"type": ["string", "null"]},
        "location": {"type": ["object", "null"], "properties": {"lat": {"type": "number"},
                                                                "lon": {"type": "number"}}},
        "channels": {"type": "array", "items": {"enum": ["sms", "voice", "email"]}},
    }
    group_fields = {
        "id": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"},
        "audience": {"type": "array", "items": {"type": "string"}},
        "territory": {"type": ["object", "null"], "description": "GeoJSON, lon/lat"},
        "languages": {"type": "array", "items": {"enum": ["nl", "fr", "de", "en"]}},
    }
    return {
        "Group": {"type": "object", "properties": {**group_fields, "channels": {"type": "object"},
                                                   "href": {"type": "string"}}},
        "GroupInput": {"type": "object", "properties": {
            **group_fields, "channels": {"type": "array", "items": {"enum": ["sms", "voice", "email"]}}}},
        "GroupList": {"type": "object", "properties": {
            "groups": {"type": "array", "items": {"$ref": "#/components/schemas/Group"}}}},
        "Member": {"type": "object", "properties": {
            "id": {"type": "integer"}, **member_fields,
            "phones": {"type": "array", "items": {"type": "object", "properties": {
                "number": {"type": "string", "description": "E.164"},
                "kind": {"enum": ["mobile", "fixed", "other"]}}}},
            "groups": {"type": "array", "items": {"type": "string"}}, "href": {"type": "string"}}},
        "MemberInput": {"type": "object", "required": ["name"], "properties": {
            **member_fields, "phones": {"type": "array", "items": {"type": "string"}}}},
        "MemberPage": {"type": "object", "properties": {
            "members": {"type": "array", "items": {"$ref": "#/components/schemas/Member"}},
            "next": {"type": ["string", "null"]}}},
        "ImportReport": {"type": "object", "properties": {
            "applied": {"type": "boolean"}, "counts": {"type": "object"},
            "fileErrors": {"type": "array", "items": {"type": "string"}},
            "fileWarnings": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "object"}}}},
    }


def _schemas() -> dict[str, Any]:
    alert = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "sender": {"type": "string"},
            "identifier": {"type": "string"}, "sent": {"type": "string"},
            "status": {"type": "string"}, "msgType": {"type": "string"},
            "scope": {"type": "string"},
            "state": {"enum": ["active", "updated", "cancelled", "expired", "answer"]},
            "references": {"type": ["string", "null"]},
            "expires": {"type": ["string", "null"], "format": "date-time"},
            "receivedAt": {"type": "string", "format": "date-time"},
            "supersededBy": {"type": ["integer", "null"]},
            "simulation": {"type": "boolean"},
            "href": {"type": "string"},
        },
    }
    finding = {
        "type": "object",
        "properties": {
            "path": {"type": "string"}, "line": {"type": ["integer", "null"]},
            "code": {"type": "string"}, "level": {"enum": ["error", "warning"]},
            "message": {"type": "string"},
        },
    }
    return {
        "Alert": alert,
        "Finding": finding,
        "SubscriptionInput": {"type": "object", "required": ["name", "url", "secret"], "properties": {
            "name": {"type": "string"}, "url": {"type": "string", "format": "uri"},
            "secret": {"type": "string", "minLength": 16},
            "filters": {"type": "object", "description": "the feeds' filters: lang, severity, urgency, "
                        "event, geocode, bbox or point", "additionalProperties": {"type": "string"}},
        }},
        "Subscription": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "url": {"type": "string"},
            "filters": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"},
            "deliveries": {"type": "object"}, "lastFailure": {"type": ["object", "null"]},
        }},
        "SubscriptionList": {"type": "object", "properties": {
            "subscriptions": {"type": "array", "items": {"$ref": "#/components/schemas/Subscription"}}}},
        "AlertPage": {"type": "object", "properties": {
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
            "next": {"type": ["string", "null"]},
        }},
        "IngestAnswer": {"type": "object", "properties": {
            "status": {"enum": ["accepted", "refused"]},
            "reason": {"type": "string"},
            "alert": {"oneOf": [{"$ref": "#/components/schemas/Alert"}, {"type": "null"}]},
            "answer": {"type": "object", "description": "the Ack or Error as CAP JSON"},
            "problems": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
        }},
        "Problem": {"type": "object", "properties": {
            "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
        }},
        **_member_schemas(),
        "Campaign": {"type": "object", "properties": {
            "id": {"type": "integer"}, "alert": {"type": "string"}, "alertId": {"type": "integer"},
            "state": {"enum": ["planning", "sending", "nothing", "done", "cancelled"]},
            "kind": {"type": "string"}, "simulation": {"type": "boolean"},
            "plan": {"type": "object"},
            "counts": {"type": "object", "description": "per channel, deliveries per state"},
            "languages": {"type": "object", "description": "per channel and language, deliveries per state"},
            "total": {"type": "integer"}, "final": {"type": "integer"}, "owed": {"type": "integer"},
            "rate": {"type": "number", "description": "deliveries made final per second, last 10 s"},
            "etaSeconds": {"type": ["number", "null"], "description": "time to completion at that rate"},
            "sentAt": {"type": ["string", "null"]}, "endedAt": {"type": ["string", "null"]},
            "ended": {"type": "boolean"},
            "cost_eur": {"type": "number"}, "href": {"type": "string"}}},
        "Template": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "template": {"type": "object"},
            "placeholders": {"type": "array", "items": {"type": "string"}}, "href": {"type": "string"}}},
        "TemplateInput": {"type": "object", "required": ["name", "template"], "properties": {
            "name": {"type": "string"}, "template": {"type": "object", "description": "the CAP "
                     "skeleton: event, category, urgency, severity, certainty, status, scope, kind, "
                     "expires_in, languages, channels, groups, area"}}},
        "TemplateList": {"type": "object", "properties": {
            "templates": {"type": "array", "items": {"$ref": "#/components/schemas/Template"}}}},
        "Ledger": {"type": "object", "properties": {
            "entity": {"type": "object"}, "activation": {"type": "object"},
            "subscription": {"type": "object"}, "prepaid": {"type": "object"},
            "usage": {"type": "array", "items": {"type": "object"}}, "policy": {"type": "string"},
            "warnings": {"type": "array", "items": {"type": "string"}}}},
        "CampaignList": {"type": "object", "properties": {
            "campaigns": {"type": "array", "items": {"$ref": "#/components/schemas/Campaign"}}}},
    }
