"""docker/compose.yaml names real `cap-hub` commands and settings (no Docker engine runs here).

PyYAML is not a dependency, so the file is read by a small reader of the YAML subset it keeps
to (said at its top); anything outside that subset fails the test rather than being misread.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hub.cli import _parser
from hub.config import ENV_PREFIX, NOT_SETTINGS, load

COMPOSE = Path(__file__).resolve().parents[1] / "docker" / "compose.yaml"
_KEY = re.compile(r"^(?P<key>[A-Za-z0-9_.-]+):(?: (?P<value>.*))?$")


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith(("[", '"')):
        return json.loads(text)  # flow lists and quoted strings are kept JSON-compatible
    if text.startswith(("{", "'", "&", "*", "!", "|", ">")) or " #" in text:
        raise ValueError(f"outside the compose reader's subset: {text!r}")
    return text


def read_yaml(text: str) -> Any:
    """Block mappings and "- scalar" lists by indentation; JSON-style flow lists; scalars."""
    lines = [(len(raw) - len(raw.lstrip(" ")), raw.strip()) for raw in text.splitlines()
             if raw.strip() and not raw.lstrip().startswith("#")]
    if any("\t" in raw for raw in text.splitlines()):
        raise ValueError("tabs are not YAML indentation")

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- "):
            items: list[Any] = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                items.append(_scalar(lines[i][1][2:]))
                i += 1
            return items, i
        mapping: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent:
            match = _KEY.match(lines[i][1])
            if match is None:
                raise ValueError(f"outside the compose reader's subset: {lines[i][1]!r}")
            key, value = match["key"], match["value"]
            if key in mapping:
                raise ValueError(f"key {key!r} twice")
            i += 1
            if value:
                mapping[key] = _scalar(value)
            elif i < len(lines) and lines[i][0] > indent:
                mapping[key], i = block(i, lines[i][0])
            else:
                mapping[key] = None
        return mapping, i

    doc, end = block(0, lines[0][0])
    if end != len(lines):
        raise ValueError(f"bad indentation at {lines[end][1]!r}")
    return doc


def services() -> dict[str, dict[str, Any]]:
    doc = read_yaml(COMPOSE.read_text(encoding="utf-8"))
    found: dict[str, dict[str, Any]] = doc["services"]
    return found


def hub_services() -> list[str]:
    return [name for name, svc in services().items() if "build" in svc]


def test_the_reader_reads_the_subset_and_refuses_the_rest() -> None:
    assert read_yaml('a:\n  b: ["x", "y"]\n  c:\n    - one\n  d:\n# note\ne: "q"\n') == {
        "a": {"b": ["x", "y"], "c": ["one"], "d": None}, "e": "q"}
    with pytest.raises(ValueError):
        read_yaml("a: {b: 1}\n")
    with pytest.raises(ValueError):
        read_yaml("a: b # trailing comment\n")


def test_the_compose_file_has_rabbitmq_api_and_router_with_health_checks() -> None:
    found = services()
    assert {"rabbitmq", "api", "router"} <= set(found)
    assert "management" in found["rabbitmq"]["image"] and "healthcheck" in found["rabbitmq"]
    assert "/health" in " ".join(found["api"]["healthcheck"]["test"])
    for name in hub_services():
        assert any(v.endswith(":/data") for v in found[name]["volumes"]), name
        assert found[name]["environment"]["CAPHUB_AMQP_URL"].startswith("amqp://"), name
        assert found[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy", name


@pytest.mark.parametrize("name", hub_services())
def test_each_hub_service_runs_a_real_cap_hub_command(name: str) -> None:
    command = services()[name]["command"]
    assert isinstance(command, list) and command[0] == "cap-hub", command
    parser = _parser()
    parser.exit_on_error = False
    try:
        args = parser.parse_args(command[1:])
    except (argparse.ArgumentError, SystemExit) as exc:  # a wrong choice, or unknown options
        pytest.fail(f"{name}: {command} is not a cap-hub command ({exc})")
    assert hasattr(args, "run"), f"{name}: {command} names a command group, not a command"


@pytest.mark.parametrize("name", hub_services())
def test_each_hub_service_sets_only_real_settings(name: str) -> None:
    environment = services()[name].get("environment") or {}
    assert isinstance(environment, dict), "environment as a mapping, so it can be checked"
    ours = {k: str(v) for k, v in environment.items() if k.startswith(ENV_PREFIX)}
    assert not set(ours) & NOT_SETTINGS, "settings only, not test switches"
    settings = load(environ=ours)  # unknown keys and ill-typed values raise ConfigError
    if "CAPHUB_AMQP_URL" in ours:
        assert settings.amqp.url == ours["CAPHUB_AMQP_URL"]
