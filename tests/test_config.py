"""Settings load once, typed, from TOML and CAPHUB_* overrides; mistakes name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hub.config import Settings, load
from hub.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "cap-hub.example.toml"


def test_example_file_documents_exactly_the_defaults() -> None:
    assert load(EXAMPLE, environ={}) == Settings()
    assert load(None, environ={"CAPHUB_AMQP_URL": "amqp://h/"}).amqp.url == "amqp://h/"
    raw = tomllib.loads(EXAMPLE.read_text())
    assert set(raw) == {"data_dir", "cap", "signature", "hub", "http", "ingest", "amqp", "sms", "email",
                         "voice", "worker", "simulation", "ledger", "client", "feeds", "push", "cost",
                         "campaigns", "log"}


def test_environment_overrides_are_cast(tmp_path: Path) -> None:
    s = load(None, environ={"CAPHUB_CAP_MAX_BYTES": "1_000", "CAPHUB_SIGNATURE_REQUIRED": "false",
                            "CAPHUB_DATA_DIR": str(tmp_path), "CAPHUB_CORPUS": "/ignored"})
    assert s.cap.max_bytes == 1000 and s.signature.required is False
    assert s.data_path == tmp_path


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[signature]\nexpiry_at = "sent"\n')
    assert load(environ={"CAPHUB_CONFIG": str(path)}).signature.expiry_at == "sent"


@pytest.mark.parametrize(
    ("toml", "env", "needle"),
    [
        ("[cap]\nmax_bytes = 'big'\n", {}, "cap.max_bytes = 'big': not an integer"),
        ("[cap]\nmaxbytes = 1\n", {}, "unknown setting cap.maxbytes"),
        ("cap = 3\n", {}, "[cap] must be a table"),
        ("[signature]\nexpiry_at = 'never'\n", {}, "must be one of 'now', 'sent'"),
        ("", {"CAPHUB_SIGNATURE_REQUIRED": "maybe"}, "CAPHUB_SIGNATURE_REQUIRED = 'maybe': not a boolean"),
        ("", {"CAPHUB_CAP_MAXBYTES": "1"}, "unknown setting CAPHUB_CAP_MAXBYTES"),
        ("not toml [", {}, "is not valid TOML"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, toml: str, env: dict[str, str], needle: str) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as exc:
        load(path, environ=env)
    assert needle in str(exc.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load(tmp_path / "nope.toml", environ={})
