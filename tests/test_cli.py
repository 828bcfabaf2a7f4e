"""The CLI as a user runs it: exit status and the lines it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import main
from tests.cap.samples import FULL, full_with


@pytest.fixture
def cap_dir(tmp_path: Path) -> Path:
    (tmp_path / "good.xml").write_bytes(FULL)
    (tmp_path / "bad.cap").write_bytes(full_with("<identifier>BE-NCCN", "<identifier>BE NCCN"))
    (tmp_path / "notes.txt").write_text("not CAP, not looked at")
    return tmp_path


def test_validate_good_file(cap_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cap", "validate", str(cap_dir / "good.xml")]) == 0
    assert capsys.readouterr().out == f"{cap_dir / 'good.xml'}: OK\n"


def test_validate_folder_reports_file_line_path_code(
    cap_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cap", "validate", str(cap_dir)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{cap_dir / 'bad.cap'}:3: /alert/identifier: identifier-chars: ")
    assert lines[-1] == f"{cap_dir / 'good.xml'}: OK"
    assert not any("notes.txt" in line for line in lines)


def test_validate_json_and_missing_file(cap_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cap", "validate", "--json", str(cap_dir / "good.xml"), str(cap_dir / "nope.xml")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [r["ok"] for r in report] == [True, False]
    assert report[1]["problems"][0]["message"].startswith("cannot read file")


def test_validate_with_a_profile(cap_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["cap", "validate", "--profile", "ipaws", str(cap_dir / "good.xml")])
    assert "ipaws" in capsys.readouterr().out.lower()


def test_keys_sign_verify_and_tamper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    assert main(["keys", "new", str(keys)]) == 0
    assert (keys / "key.pem").stat().st_mode & 0o777 == 0o600
    assert main(["keys", "new", str(keys)]) == 1  # never overwrite a key by accident
    source = tmp_path / "a.xml"
    source.write_bytes(FULL)
    signed = tmp_path / "a.signed.xml"
    assert main(["cap", "sign", "--key", str(keys / "key.pem"), "--cert", str(keys / "cert.pem"),
                 str(source), str(signed)]) == 0
    assert main(["cap", "validate", str(signed)]) == 0
    capsys.readouterr()
    assert main(["cap", "verify", "--cert", str(keys / "cert.pem"), str(signed)]) == 0
    assert "valid" in capsys.readouterr().out.lower()
    tampered = tmp_path / "t.xml"
    tampered.write_bytes(signed.read_bytes().replace(b"Zware rook", b"Zware rool"))
    assert main(["cap", "verify", "--cert", str(keys / "cert.pem"), str(tampered)]) == 1
    assert "digest" in capsys.readouterr().out.lower()


def test_sign_refuses_what_is_not_xml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    main(["keys", "new", str(keys)])
    junk = tmp_path / "junk.xml"
    junk.write_text("hello")
    assert main(["cap", "sign", "--key", str(keys / "key.pem"), "--cert", str(keys / "cert.pem"),
                 str(junk)]) == 1
    assert "xml-malformed" in capsys.readouterr().err


def test_python_dash_m_hub_help() -> None:
    done = subprocess.run([sys.executable, "-m", "hub", "--help"], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0 and "cap" in done.stdout and "keys" in done.stdout
