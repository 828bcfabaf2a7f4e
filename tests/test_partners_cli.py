"""`cap-hub admin subscription add|list|remove` in-process through hub.cli.main on a real store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from hub.wiring import STORE_FILE
from tests.test_admin import Run, cli_runner, data

__all__ = ["data"]  # a fixture used by name

SECRET = "a-long-shared-secret-0123"


@pytest.fixture
def run(data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run("add", ...)``: cap-hub admin subscription ... --data DATA → (status, stdout, stderr)."""
    return cli_runner(data, capsys, monkeypatch, "admin", "subscription")


def rows(data: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(data / STORE_FILE) as db:
        return [tuple(r) for r in db.execute("SELECT name, url, filters FROM subscriptions ORDER BY id")]


def test_add_list_remove(run: Run, data: Path) -> None:
    code, out, err = run("add", "VRT NWS", "--url", "https://vrt.example.be/cap", "--secret", SECRET,
                         "--lang", "nl", "--severity", "Severe,Extreme", "--bbox", "2.5,49.5,6.4,51.5")
    assert code == 0, err
    assert out.startswith("subscription VRT NWS (id 1) -> https://vrt.example.be/cap where ")
    code, out, err = run("add", "aggregator", "--url", "http://127.0.0.1:9000/h", "--secret", SECRET)
    assert code == 1 and "127.0.0.1 is a loopback address" in err and "allow_private" in err
    code, out, err = run("add", "aggregator", "--url", "http://aggregator.example.org:9000/h",
                         "--secret", SECRET)
    assert code == 0, err
    assert "(every public alert)" in out
    assert [r[0] for r in rows(data)] == ["VRT NWS", "aggregator"]
    code, out, _ = run("list")
    assert code == 0 and "VRT NWS" in out and "delivered 0, pending 0, failed 0" in out
    assert SECRET not in out
    code, out, _ = run("list", "--json")
    listed = json.loads(out)["subscriptions"]
    assert [s["name"] for s in listed] == ["VRT NWS", "aggregator"]
    assert "severity=" in listed[0]["filters"] and "Extreme" in listed[0]["filters"]
    assert all("secret" not in s for s in listed)
    assert run("remove", "VRT NWS")[0] == 0
    assert run("remove", "2")[0] == 0
    assert rows(data) == []
    code, out, _ = run("list")
    assert out.strip() == "no subscriptions"


@pytest.mark.parametrize(("args", "needle"), [
    (("--url", "ftp://x.example.be/", "--secret", SECRET), "url: "),
    (("--url", "https://x.example.be/", "--secret", "short"), "secret: at least 16"),
    (("--url", "https://x.example.be/", "--secret", SECRET, "--severity", "Awful"), "severity: 'Awful'"),
    (("--url", "https://x.example.be/", "--secret", SECRET, "--point", "91,4"), "point: "),
])
def test_each_bad_input_is_refused_naming_it(run: Run, data: Path, args: tuple[str, ...],
                                             needle: str) -> None:
    code, out, err = run("add", "partner", *args)
    assert code == 1
    assert needle in err and "subscription not added" in err
    assert SECRET not in err
    assert out == ""
    assert not (data / STORE_FILE).exists() or rows(data) == []


def test_a_taken_name_and_an_unknown_subscription(run: Run) -> None:
    assert run("add", "p", "--url", "https://x.example.be/", "--secret", SECRET)[0] == 0
    code, _, err = run("add", "p", "--url", "https://y.example.be/", "--secret", SECRET)
    assert code == 1 and "named 'p' exists" in err
    code, _, err = run("remove", "nobody")
    assert code == 1 and "no subscription 'nobody'" in err


def test_a_missing_url_is_a_usage_error(run: Run) -> None:
    code, _, err = run("add", "p", "--secret", SECRET)
    assert code == 2 and "--url" in err
