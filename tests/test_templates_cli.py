"""`cap-hub template ...` against a real `cap-hub serve` process, `cap-hub admin ledger`, and
`--simulation` for serve and for an entity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.cli import main
from tests.api.test_templates import FIRE
from tests.test_serve import SENDER, Server, admin, identity

__all__ = ["identity"]


class SimServer(Server):
    """`cap-hub serve` with extra arguments."""

    def __init__(self, data: Path, log: Path, *extra: str) -> None:
        super().__init__(data, log)
        self.extra = extra

    def start(self, *extra: str) -> list[str]:
        return super().start(*self.extra, *extra)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    got = capsys.readouterr()
    return code, got.out, got.err


def test_templates_through_a_running_hub(tmp_path: Path, identity: tuple[bytes, bytes],
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    server = SimServer(tmp_path / "data", tmp_path / "server.log", "--simulation")
    try:
        started = server.start()
        assert any("SIMULATION: every campaign runs on simulator providers" in line for line in started)
        cert = tmp_path / "police.pem"
        cert.write_bytes(identity[1])
        out = admin(server.data, "entity", "add", "police", "--type", "2", "--sender", SENDER, "--cert", cert,
                    "--simulation", capsys=capsys)
        assert "in the simulation environment" in out
        admin(server.data, "account", "add", "police", "dispatch", "--role", "coordinator", capsys=capsys)
        token = admin(server.data, "token", "new", "dispatch", capsys=capsys).strip()
        monkeypatch.setenv("CAPHUB_CLIENT_TOKEN", token)
        monkeypatch.setenv("CAPHUB_CLIENT_URL", server.url)
        template = dict(FIRE, groups=[], scope="Public")
        path = tmp_path / "brand.json"
        path.write_text(json.dumps(template))
        code, out, err = run(["template", "add", "brand", str(path)], capsys)
        assert code == 0 and "template brand (id 1), placeholders: straat" in out, err
        code, out, _ = run(["template", "list"], capsys)
        assert out == "1\tbrand\tstraat\n"
        code, out, _ = run(["template", "show", "brand"], capsys)
        assert json.loads(out)["template"]["event"] == "Brand"
        code, out, err = run(["template", "send", "brand", "--set", "straat=Kerkstraat"], capsys)
        assert code == 0 and out.startswith("accepted: alert 1 (tpl-1-"), err
        code, out, err = run(["template", "send", "brand"], capsys)  # a placeholder missing
        assert code == 1 and "placeholder 'straat' has no value" in err
        code, out, err = run(["template", "send", "brand", "--set", "straat=x", "--set", "nr=3"], capsys)
        assert code == 1 and "placeholder 'nr' is not in this template" in err
        code, out, err = run(["template", "send", "brand", "--set", "straat"], capsys)
        assert code == 1 and "--set 'straat': write NAME=VALUE" in err
        # the hub runs in simulation: its feeds say so
        status, body = server.request("/feeds/alerts.atom")
        assert status == 200 and b"SIMULATION - " in body and b"[SIMULATION] Brand in de Kerkstraat" in body
        code, out, _ = run(["template", "remove", "brand"], capsys)
        assert code == 0
        code, out, err = run(["template", "show", "brand"], capsys)
        assert code == 1 and "404" in err and "no template 'brand'" in err
        code, out, err = run(["admin", "ledger", "police", "--activate", "--buy", "100", "--note", "PO-7",
                              "--data", str(server.data)], capsys)
        assert code == 0, err
        assert "activation" in out and "package" in out and "PO-7" in out
        assert "campaign 1" in out and "(simulation)" in out and "never stops" in out
        code, out, _ = run(["admin", "ledger", "police", "--json", "--data", str(server.data)], capsys)
        doc = json.loads(out)
        assert doc["prepaid"]["balanceEur"] == 100.0 and doc["usage"][0]["simulation"] is True
        code, out, err = run(["admin", "ledger", "police", "--activate", "--data", str(server.data)], capsys)
        assert code == 1 and "already activated" in err
        code, out, err = run(["admin", "ledger", "police", "--buy", "-5", "--data", str(server.data)], capsys)
        assert code == 1 and "more than 0" in err
        code, out, err = run(["admin", "ledger", "nobody", "--data", str(server.data)], capsys)
        assert code == 1 and "no entity 'nobody'" in err
        assert server.terminate() == 0
        assert token not in server.log.read_text()
    finally:
        server.close()


def test_client_commands_need_a_token(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPHUB_CLIENT_TOKEN", raising=False)
    code, _, err = run(["template", "list"], capsys)
    assert code == 1 and "CAPHUB_CLIENT_TOKEN" in err
