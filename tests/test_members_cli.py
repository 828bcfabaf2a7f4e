"""`cap-hub admin group add` and `cap-hub members import|export|erase` as a script runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.cli import main

TERRITORY = {"type": "Polygon", "coordinates": [
    [[4.34, 50.84], [4.37, 50.84], [4.37, 50.86], [4.34, 50.86], [4.34, 50.84]]]}
GOOD = ("Naam,GSM,E-mail,Taal\r\n"
        '"Peeters, An",0477 12 34 56,an@example.be,Nederlands\r\n'
        "Luc Dubois,+32 478/12.34.56,luc@example.be,F\r\n").encode("cp1252")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    assert main(["admin", "entity", "add", "PZ", "--type", "2", "--sender", "pz@example.be",
                 "--signature", "optional", "--data", str(d)]) == 0
    area = tmp_path / "area.json"
    area.write_text(json.dumps(TERRITORY))
    assert main(["admin", "group", "add", "PZ", "PLP Centrum", "--id", "plp-c", "--territory", str(area),
                 "--geocode", "NIS=21004", "postcode=1000", "--audience", "residents",
                 "--channels", "sms,email", "--data", str(d)]) == 0
    return d


def members_in(data: Path, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    assert main(["members", "export", "--group", "plp-c", "--data", str(data),
                 str(data / "out.csv")]) == 0
    return len((data / "out.csv").read_bytes().decode("utf-8-sig").strip().splitlines()) - 1


def test_import_dry_run_strict_and_export(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(GOOD)
    assert main(["members", "import", str(good), "--group", "plp-c", "--dry-run", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing was changed" in out and "create" in out
    assert members_in(data, capsys) == 0
    bad = tmp_path / "bad.csv"
    bad.write_bytes(GOOD + b"Jan,012,jan@,xx\r\n")
    assert main(["members", "import", str(bad), "--group", "plp-c", "--strict", "--data", str(data)]) == 1
    out = capsys.readouterr().out
    assert "row 4: refuse" in out and "--strict" in out
    assert members_in(data, capsys) == 0
    assert main(["members", "import", str(bad), "--group", "plp-c", "--data", str(data)]) == 0
    assert "2 created" in capsys.readouterr().out
    assert members_in(data, capsys) == 2
    assert main(["members", "import", str(good), "--group", "plp-c", "--data", str(data)]) == 0
    assert "0 created" in capsys.readouterr().out  # the same people again: nothing new
    assert members_in(data, capsys) == 2


@pytest.mark.parametrize(("content", "needle"), [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", ""),
    (b"naam;schoenmaat\nAn;42\n", "schoenmaat"),
    (b"x" * (10 * 1024 * 1024), ""),
])
def test_files_refused_as_a_whole_store_nothing(tmp_path: Path, data: Path, content: bytes, needle: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    assert main(["members", "import", str(path), "--group", "plp-c", "--data", str(data)]) == 1
    out = capsys.readouterr().out
    assert "nothing imported" in out and needle in out
    assert members_in(data, capsys) == 0


def test_group_add_refusals(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    args = ["admin", "group", "add", "PZ", "Other", "--data", str(data)]
    assert main([*args, "--id", "plp-c"]) == 1 and "plp-c" in capsys.readouterr().err
    assert main([*args, "--id", "has space"]) == 1
    assert main([*args, "--id", "ok", "--geocode", "NIS"]) == 1 and "NAME=VALUE" in capsys.readouterr().err
    assert main([*args, "--id", "ok", "--channels", "fax"]) == 1 and "fax" in capsys.readouterr().err
    point = tmp_path / "p.json"
    point.write_text('{"type": "Point", "coordinates": [4, 50]}')
    assert main([*args, "--id", "ok", "--territory", str(point)]) == 1
    assert "Point" in capsys.readouterr().err
    assert main(["admin", "group", "add", "Nobody", "G", "--id", "g", "--data", str(data)]) == 1
    assert main(["members", "import", str(point), "--group", "nope", "--data", str(data)]) == 1


def test_erase(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(GOOD)
    main(["members", "import", str(good), "--group", "plp-c", "--data", str(data)])
    assert main(["members", "erase", "1", "--data", str(data)]) == 0
    assert members_in(data, capsys) == 1
    assert main(["members", "erase", "1", "--data", str(data)]) == 1
