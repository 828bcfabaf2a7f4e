"""`cap-hub admin ...` in-process through hub.cli.main, on a real store in tmp_path.

Each refusal is checked three ways: the exit status, one clear line on stderr, and that
nothing was written (no row in any table, no audit entry).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from hub.cap import devkeys
from hub.cli import main
from hub.services.auth import token_hash
from hub.store.base import AuditEntry
from hub.store.sqlite import SqliteStore
from hub.wiring import STORE_FILE

TABLES = ("entities", "senders", "certificates", "accounts", "tokens", "audit")
TERRITORY = {"type": "Polygon", "coordinates": [
    [[4.30, 50.80], [4.45, 50.80], [4.45, 50.90], [4.30, 50.90], [4.30, 50.80]]]}

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two certificates in PEM files (EC keys: quick to make)."""
    folder = tmp_path_factory.mktemp("certs")
    paths = {}
    for name in ("police", "commune"):
        _, cert_pem = devkeys.new_identity(name, key_type="ec")
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(cert_pem)
    return paths


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def cli_runner(data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
               *command: str) -> Run:
    """``go(*args)``: cap-hub COMMAND... ARGS --data DATA → (status, stdout, stderr)."""
    monkeypatch.delenv("CAPHUB_CONFIG", raising=False)

    def go(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main([*command, *map(str, args), "--data", str(data)])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return go


@pytest.fixture
def run(data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run("entity", "add", ...)``: cap-hub admin ... --data DATA → (status, stdout, stderr)."""
    return cli_runner(data, capsys, monkeypatch, "admin")


def counts(data: Path) -> dict[str, int]:
    with sqlite3.connect(data / STORE_FILE) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def audit(data: Path) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        store = SqliteStore(data / STORE_FILE)
        await store.open()
        try:
            return list(reversed(await store.audit_entries(limit=1000)))
        finally:
            await store.close()

    return asyncio.run(read())


def refused(result: tuple[int, str, str], *words: str, status: int = 1) -> None:
    """The command failed with ``status`` and one stderr line containing ``words``."""
    code, out, err = result
    assert code == status, (out, err)
    assert out == ""
    if status == 1:
        assert err.startswith("cap-hub: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
    for word in words:
        assert word in err, err


@pytest.fixture
def police(run: Run, certs: dict[str, Path], tmp_path: Path) -> None:
    """One valid entity with a certificate and a territory, and one account."""
    territory = tmp_path / "territory.json"
    territory.write_text(json.dumps(TERRITORY))
    code, out, err = run("entity", "add", "police", "--type", "1", "--sender", "police@example.be",
                         "zone@example.be", "--cert", certs["police"], "--territory", territory,
                         "--signature", "optional", "--profile", "be")
    assert (code, err) == (0, ""), err
    assert out == "entity police (id 1, type 1) with 2 sender(s) and 1 certificate(s)\n"
    code, out, err = run("account", "add", "police", "dispatch", "--role", "mandated",
                         "--grant", "kinds=alert,prevention", "--grant", "groups=plp-a")
    assert (code, err) == (0, ""), err
    assert out.startswith("account id ")


# --- what works -----------------------------------------------------------------------------


def test_entity_account_token_and_their_audit(run: Run, police: None, data: Path) -> None:
    code, out, err = run("token", "new", "dispatch")
    assert (code, err) == (0, "")
    token = out.strip()
    assert out == token + "\n" and token.startswith("caphub_") and " " not in token
    assert run("token", "revoke", token) == (0, "revoked\n", "")

    entries = audit(data)
    assert [(e.actor, e.action, e.outcome) for e in entries] == [
        ("admin", "entity.add", "ok"), ("admin", "account.add", "ok"),
        ("admin", "token.new", "ok"), ("admin", "token.revoke", "ok")]
    assert entries[0].target == "police"
    assert json.loads(entries[0].detail)["senders"] == ["police@example.be", "zone@example.be"]
    assert json.loads(entries[1].detail)["grants"]["kinds"] == ["alert", "prevention"]
    for entry in entries:  # neither the token nor its hash is ever audited
        text = " ".join((entry.target, entry.detail))
        assert token not in text and token_hash(token) not in text and "caphub_" not in text


def test_two_tokens_differ_and_revoking_one_keeps_the_other(run: Run, police: None, data: Path) -> None:
    first, second = run("token", "new", "dispatch")[1].strip(), run("token", "new", "dispatch")[1].strip()
    assert first != second
    assert run("token", "revoke", first)[0] == 0
    refused(run("token", "revoke", first), "no such token, or it was already revoked")
    assert run("token", "revoke", second)[0] == 0


def test_cert_add_registers_and_audits(run: Run, police: None, certs: dict[str, Path], data: Path) -> None:
    code, out, err = run("cert", "add", "police", certs["commune"])
    assert (code, err) == (0, "") and out.startswith("certificate ") and "valid until" in out
    assert counts(data)["certificates"] == 2
    assert audit(data)[-1].action == "certificate.add"


def test_entity_without_certificate_or_territory(run: Run, data: Path) -> None:
    assert run("entity", "add", "plp", "--type", "2", "--sender", "plp@example.be")[0] == 0
    assert counts(data)["entities"] == 1


# --- what is refused, and leaves nothing behind ------------------------------------------


def test_duplicate_entity_name(run: Run, police: None, data: Path) -> None:
    before = counts(data)
    refused(run("entity", "add", "police", "--type", "2", "--sender", "other@example.be"),
            "'police'", "exists")
    assert counts(data) == before


def test_sender_of_another_entity(run: Run, police: None, data: Path) -> None:
    before = counts(data)
    refused(run("entity", "add", "commune", "--type", "1", "--sender", "commune@example.be",
                "zone@example.be"), "'zone@example.be'", "another entity")
    assert counts(data) == before  # not even the entity row: one transaction


@pytest.mark.parametrize("sender", ["police @example.be", "a\tb", "a\nb", "a,b", "a<b", "a&b", ""])
def test_sender_with_forbidden_characters(run: Run, data: Path, sender: str) -> None:
    refused(run("entity", "add", "police", "--type", "1", "--sender", sender), "sender", repr(sender))
    assert counts(data) == dict.fromkeys(TABLES, 0)


def test_unreadable_certificate_file(run: Run, data: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    refused(run("entity", "add", "police", "--type", "1", "--sender", "p@example.be", "--cert", missing),
            "cannot read certificate", str(missing), "No such file")
    assert not (data / STORE_FILE).exists() or counts(data) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize("content", [
    b"hello, not a certificate\n",
    b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    b"\x00\x01\x02\xff",
])
def test_a_file_that_is_not_a_certificate(run: Run, data: Path, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(content)
    refused(run("entity", "add", "police", "--type", "1", "--sender", "p@example.be", "--cert", bad),
            str(bad), "no usable PEM certificate")
    assert counts(data) == dict.fromkeys(TABLES, 0)


def test_cert_add_of_a_file_that_is_not_a_certificate(run: Run, police: None, data: Path,
                                                      tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    before = counts(data)
    refused(run("cert", "add", "police", bad), "no usable PEM certificate")
    assert counts(data) == before


def test_an_entity_goes_into_simulation_and_live_again(run: Run, police: None, data: Path) -> None:
    assert run("entity", "simulate", "police") == (
        0, "entity police (id 1) is now in the simulation environment\n", "")
    assert run("entity", "simulate", "police") == (
        0, "entity police (id 1) was already in the simulation environment\n", "")
    assert run("entity", "live", "police") == (0, "entity police (id 1) is now live\n", "")
    assert [(e.action, e.target, e.outcome) for e in audit(data)][-3:] == [
        ("entity.simulate", "police", "ok"), ("entity.simulate", "police", "unchanged"),
        ("entity.live", "police", "ok")]


def test_live_for_an_unknown_entity(run: Run, police: None, data: Path) -> None:
    before = counts(data)
    refused(run("entity", "live", "nobody"), "no entity named 'nobody'")
    assert counts(data) == before


def test_cert_add_for_an_unknown_entity(run: Run, police: None, certs: dict[str, Path], data: Path) -> None:
    before = counts(data)
    refused(run("cert", "add", "nobody", certs["commune"]), "no entity named 'nobody'")
    assert counts(data) == before


def test_the_same_certificate_twice_in_one_command(run: Run, certs: dict[str, Path], data: Path) -> None:
    code, _, err = run("entity", "add", "police", "--type", "1", "--sender", "p@example.be",
                       "--cert", certs["police"], certs["police"])
    assert (code, err) == (0, ""), err
    assert counts(data)["certificates"] == 1


def test_certificate_of_another_entity_leaves_nothing(run: Run, police: None, certs: dict[str, Path],
                                                      data: Path) -> None:
    before = counts(data)
    refused(run("entity", "add", "commune", "--type", "1", "--sender", "c@example.be",
                "--cert", certs["police"]), "another entity")
    assert counts(data) == before


@pytest.mark.parametrize(("text", "words"), [
    ("{not json", ("territory: not JSON",)),
    ('{"type": "Point", "coordinates": [4.35, 50.85]}', ("territory:", "'Point' is not an area")),
    ('{"type": "Polygon", "coordinates": [[[4.3, 50.8], [4.4, 50.8], [4.4, 50.9], [4.3, 50.9]]]}',
     ("territory:", "ring is not closed")),
    ('{"type": "Polygon", "coordinates": [[[4.3, 50.8], [4.4, 50.8], [4.3, 50.8]]]}',
     ("territory:", "needs at least 4")),
    ('{"type": "Polygon", "coordinates": [[[4.3, NaN], [4.4, 50.8], [4.4, 50.9], [4.3, NaN]]]}',
     ("territory:", "not JSON")),
    ("\xff\xfe", ("territory:",)),
])
def test_bad_territory(run: Run, data: Path, tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    territory = tmp_path / "territory.json"
    territory.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    refused(run("entity", "add", "police", "--type", "1", "--sender", "p@example.be",
                "--territory", territory), *words)
    assert counts(data) == dict.fromkeys(TABLES, 0)


def test_unreadable_territory_file(run: Run, data: Path, tmp_path: Path) -> None:
    refused(run("entity", "add", "police", "--type", "1", "--sender", "p@example.be",
                "--territory", tmp_path / "missing.json"), "cannot read territory")


def test_unknown_profile(run: Run, data: Path) -> None:
    refused(run("entity", "add", "police", "--type", "1", "--sender", "p@example.be", "--profile", "xx"),
            "unknown profile 'xx'", "be", "ipaws")
    assert counts(data) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize("args", [
    ("entity", "add", "police", "--sender", "p@example.be"),  # no --type
    ("entity", "add", "police", "--type", "3", "--sender", "p@example.be"),
    ("entity", "add", "police", "--type", "1", "--sender", "p@example.be", "--signature", "maybe"),
    ("account", "add", "police", "dispatch", "--role", "king"),
    ("token", "new"),
])
def test_usage_errors_exit_2(run: Run, data: Path, args: tuple[str, ...]) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == "" and "usage:" in err
    assert not (data / STORE_FILE).exists()


def test_account_for_an_unknown_entity(run: Run, police: None, data: Path) -> None:
    before = counts(data)
    refused(run("account", "add", "nobody", "x", "--role", "mandated"), "no entity named 'nobody'")
    assert counts(data) == before


def test_duplicate_account_name(run: Run, police: None, data: Path) -> None:
    assert run("entity", "add", "commune", "--type", "1", "--sender", "c@example.be")[0] == 0
    before = counts(data)
    # account names are unique in the whole hub, not only within an entity
    refused(run("account", "add", "commune", "dispatch", "--role", "coordinator"), "account name is taken")
    assert counts(data) == before


@pytest.mark.parametrize(("grant", "words"), [
    ("colour=red", ("unknown grant 'colour'",)),
    ("kinds=alert,gossip", ("kinds are alert, prevention, news",)),
    ("members=maybe", ("members=yes or members=no",)),
    ("kinds", ("expected kinds=..., groups=... or members=yes|no",)),
])
def test_bad_grant(run: Run, police: None, data: Path, grant: str, words: tuple[str, ...]) -> None:
    before = counts(data)
    refused(run("account", "add", "police", "other", "--role", "mandated", "--grant", grant),
            repr(grant), *words)
    assert counts(data) == before


def test_token_for_an_unknown_account(run: Run, police: None, data: Path) -> None:
    before = counts(data)
    refused(run("token", "new", "nobody"), "no account named 'nobody'")
    assert counts(data) == before


def test_revoke_of_an_unknown_token(run: Run, police: None, data: Path) -> None:
    before = counts(data)
    refused(run("token", "revoke", "caphub_nothing"), "no such token")
    assert counts(data) == before
