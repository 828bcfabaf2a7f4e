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
    }
