"""Settings: typed, frozen, loaded once at the edge.

``load(path, environ)`` reads a TOML file (``config/cap-hub.example.toml`` documents every
key) and then ``CAPHUB_<SECTION>_<KEY>`` environment overrides, e.g. ``CAPHUB_CAP_MAX_BYTES``
or ``CAPHUB_SIGNATURE_REQUIRED=false``; top-level keys are ``CAPHUB_<KEY>``
(``CAPHUB_DATA_DIR``). Every value is cast to its field's type, and a value that does not fit,
or a key nobody knows, is a ``ConfigError`` that names the key and where it came from: a typo
in a setting must not be silently ignored. This is the only module that reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hub.errors import ConfigError

ENV_PREFIX = "CAPHUB_"
# Variables with the prefix that are not settings: the path of the settings file itself and
# what the test suite reads.
NOT_SETTINGS = frozenset({"CAPHUB_CONFIG", "CAPHUB_CORPUS", "CAPHUB_REQUIRE_AMQP"})


@dataclass(frozen=True)
class CapSettings:
    """How incoming CAP is read."""

    max_bytes: int = 5 * 1024 * 1024
    profile: str = ""  # extra rules for every message: "" (none), "be" or "ipaws"


@dataclass(frozen=True)
class SignatureSettings:
    """How incoming signatures are judged."""

    required: bool = True
    expiry_at: Literal["now", "sent"] = "now"
    allow_sha1: bool = False
    allow_dsa: bool = False


@dataclass(frozen=True)
class HubSettings:
    """Who the hub is when it answers and signs."""

    sender: str = "cap-hub@hub.invalid"
    key_file: str = ""  # PEM private key that signs Acks, Errors and feeds
    cert_file: str = ""  # its X.509 certificate; both empty: DATA_DIR/keys/ (made on first start)


@dataclass(frozen=True)
class HttpSettings:
    """Where and how the server listens."""

    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: str = ""  # PEM certificate chain; with tls_key, the server speaks HTTPS
    tls_key: str = ""
    body_timeout: float = 30.0  # seconds a client may take to send a request body


@dataclass(frozen=True)
class IngestSettings:
    """How posted CAP is processed."""

    threads: int = 2  # threads for parsing, verifying and signing (CPU-bound work)
    expiry_interval: float = 30.0  # seconds between sweeps that mark expired alerts


@dataclass(frozen=True)
class AmqpSettings:
    """The broker. No URL: the embedded in-process broker (one machine, one process)."""

    url: str = ""  # amqp://user:password@host:5672/vhost: RabbitMQ through aio-pika
    prefix: str = ""  # prepended to queue and exchange names (several hubs on one RabbitMQ)


@dataclass(frozen=True)
class SmsSettings:
    """The SMS channel: its provider, the SMSC, the rate and the text."""

    provider: Literal["simulator", "smpp"] = "simulator"
    host: str = "127.0.0.1"  # the SMSC (SMPP 3.4, transceiver binds)
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    binds: int = 4  # connections to the SMSC (a real one takes ~100-150 submits/s per bind)
    source_addr: str = "1789"  # the sender shown on handsets: a short code, a number or letters
    rate: float = 500.0  # SMS parts per second for this worker; 0 = unlimited
    max_parts: int = 3  # the longest SMS, in parts; longer texts are cut
    policy: Literal["ucs2", "downgrade"] = "ucs2"  # text outside GSM-7: UCS-2, or rewritten to GSM-7
    prefix: str = "BE-Alert:"  # what every SMS starts with


@dataclass(frozen=True)
class EmailSettings:
    """The e-mail channel: its provider, the SMTP relay, the rate and the sender."""

    provider: Literal["simulator", "smtp"] = "simulator"
    host: str = "localhost"
    port: int = 25
    security: Literal["none", "starttls", "tls"] = "none"
    username: str = ""  # AUTH when set
    password: str = ""
    pool_size: int = 4  # SMTP connections
    batch_size: int = 500  # recipients per message (RCPT TO per transaction)
    sender: str = "no-reply@hub.invalid"  # From, Reply-To and MAIL FROM
    rate: float = 2500.0  # recipients per second for this worker; 0 = unlimited


@dataclass(frozen=True)
class LogSettings:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class Settings:
    data_dir: str = "data"
    cap: CapSettings = field(default_factory=CapSettings)
    signature: SignatureSettings = field(default_factory=SignatureSettings)
    hub: HubSettings = field(default_factory=HubSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    amqp: AmqpSettings = field(default_factory=AmqpSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    log: LogSettings = field(default_factory=LogSettings)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``path`` (or ``$CAPHUB_CONFIG``, or defaults) and the environment."""
    env = os.environ if environ is None else environ
    path = path or env.get("CAPHUB_CONFIG") or None
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc
    settings = _build(Settings, raw, str(path or "defaults"), "")
    return _apply_env(settings, env)


def _build(cls: type[Any], raw: Mapping[str, Any], source: str, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"{source}: unknown setting {prefix}{key} (known here: {known})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [{prefix}{key}] must be a table")
            values[key] = _build(typing.cast(type[Any], hint), value, source, f"{prefix}{key}.")
        else:
            values[key] = _cast(value, hint, f"{source}: {prefix}{key}")
    return cls(**values)


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise ValueError("not a boolean (true or false)")


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("not an integer")
    try:
        return int(value.replace("_", "")) if isinstance(value, str) else value
    except ValueError:
        raise ValueError("not an integer") from None


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("not a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError("not a number") from None


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


_CASTS: dict[Any, Any] = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def _cast(value: Any, hint: Any, where: str) -> Any:
    """``value`` as ``hint``; a TOML value or an environment string."""
    if typing.get_origin(hint) is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where} = {value!r}: must be one of {', '.join(map(repr, allowed))}")
        return value
    cast = _CASTS.get(hint)
    if cast is None:
        raise ConfigError(f"{where}: unsupported setting type {hint!r}")
    try:
        return cast(value)
    except ValueError as exc:
        raise ConfigError(f"{where} = {value!r}: {exc}") from None


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    hints = typing.get_type_hints(Settings)
    sections = {name for name, hint in hints.items() if dataclasses.is_dataclass(hint)}
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX):].lower()
        section, _, rest = key.partition("_")
        if section in sections and rest:
            sub_hints = typing.get_type_hints(hints[section])
            if rest not in sub_hints:
                raise ConfigError(f"environment: unknown setting {name}")
            nested.setdefault(section, {})[rest] = _cast(value, sub_hints[rest], f"environment: {name}")
        elif key in hints and key not in sections:
            top[key] = _cast(value, hints[key], f"environment: {name}")
        else:
            raise ConfigError(f"environment: unknown setting {name}")
    for section, values in nested.items():
        top[section] = dataclasses.replace(getattr(settings, section), **values)
    return dataclasses.replace(settings, **top) if top else settings
