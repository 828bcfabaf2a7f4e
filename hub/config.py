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
    processes: int = 0  # worker processes for that work instead (0: the threads do it)
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
    window: int = 64  # submits awaiting their response per bind, as far as the SMSC allows
    source_addr: str = "1789"  # the sender shown on handsets: a short code, a number or letters
    rate: float = 500.0  # SMS parts per second for the channel, all its workers together; 0 = unlimited
    workers: int = 1  # SMS worker processes sharing ``rate``: each takes rate / workers
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
    rate: float = 2500.0  # recipients per second for the channel, all its workers together; 0 = unlimited
    workers: int = 1  # e-mail worker processes sharing ``rate``: each takes rate / workers


@dataclass(frozen=True)
class VoiceSettings:
    """The voice channel: its provider, the SIP trunk and user agents, the rate, retries and
    the spoken script (the price per started minute is ``[cost] voice_minute_eur``)."""

    provider: Literal["simulator", "sip"] = "simulator"
    caller_id: str = "0477 77 77 55"  # the number the called party sees; any usual form, sent in E.164
    display_name: str = ""  # shown beside the caller number where phones show names
    trunk: str = "127.0.0.1:5060"  # host[:port] of the SIP trunk the calls go to
    registrar: str = ""  # host[:port] to register at; "": no registration
    username: str = ""  # digest credentials at the trunk
    password: str = ""
    outbound_proxy: str = ""  # host[:port] every request goes through; "": none
    bind: str = "127.0.0.1"  # the local address of the user agents (SIP and RTP)
    rtp_ports: str = "20000-29999"  # RTP ports of the user agents, 20 per line
    baresip: str = "baresip"  # the SIP user agent's command
    lines: int = 10  # call lines: one user agent each, one call at a time
    max_concurrent: int = 10  # calls in progress at once (at most ``lines``)
    calls_per_minute: float = 600.0  # calls started per minute by this worker process; 0 = unlimited
    ring_timeout: float = 30.0  # seconds a call may ring before it counts as unanswered
    max_seconds: float = 90.0  # the longest script; longer texts are shortened to fit
    attempts: int = 3  # calls per delivery when busy or unanswered (the first and 2 retries)
    retry_interval: float = 300.0  # seconds between two calls to a busy or unanswered number
    confirm: bool = False  # ask the listener to press 1; a delivery is confirmed when they do
    sender_name: str = "BE-Alert"  # the sender announced when the <info> has no <senderName>


@dataclass(frozen=True)
class WorkerSettings:
    """The channel workers' retries of transient failures, and their crash recovery."""

    max_attempts: int = 5  # attempts per delivery; then a transient failure is final
    retry_base: float = 2.0  # seconds before the 2nd attempt...
    retry_factor: float = 2.0  # ...multiplied by this for each next one
    retry_max_delay: float = 300.0  # the longest wait between two attempts, in seconds
    retry_budget: float = 3600.0  # seconds after the first attempt when no retry starts any more; 0 = none
    sending_grace: float = 120.0  # seconds after which a claim no answer was stored for is a dead worker's


@dataclass(frozen=True)
class SimulationSettings:
    """The simulation environment: campaigns of Exercise and Test alerts, of entities added with
    ``--simulation``, or of every entity when ``enabled`` (``cap-hub serve --simulation``) run
    the same path on simulator providers that send nothing."""

    enabled: bool = False  # the whole hub is a simulation: no real provider is even opened
    sms_delivery_ratio: float = 0.97  # share of simulated SMS delivered; the rest fail (UNDELIV)
    email_delivery_ratio: float = 0.98  # share of simulated e-mails delivered
    email_permanent_share: float = 0.5  # of the failed e-mails, the share that fail for good (5xx)
    latency_min: float = 0.0  # seconds each simulated provider call takes, drawn in [min, max]
    latency_max: float = 0.02
    late_share: float = 0.1  # share of simulated SMS whose receipt comes late (submitted first)
    late_min: float = 2.0  # seconds before a late receipt, drawn in [min, max]
    late_max: float = 30.0
    seed: int = 0  # 0: draws differ each run; another value repeats them


@dataclass(frozen=True)
class LedgerSettings:
    """What an entity pays, in euro excluding VAT (the ledger: GET /entities/{id}/ledger)."""

    activation_fee_eur: float = 200.0  # once, when the entity is activated
    subscription_eur: float = 788.88  # per started year from the activation
    low_balance_eur: float = 50.0  # the ledger warns when the prepaid balance is below this


@dataclass(frozen=True)
class ClientSettings:
    """Where client commands (``cap-hub template ...``) find a running hub, and as whom."""

    url: str = "http://127.0.0.1:8080"
    token: str = ""  # a bearer token (cap-hub admin token new); best set as CAPHUB_CLIENT_TOKEN


@dataclass(frozen=True)
class FeedsSettings:
    """The free CAP feeds (``/feeds/...``) and the WebSub hub they name."""

    max_age: int = 60  # seconds, Cache-Control: public, max-age=N
    base_url: str = ""  # public scheme://host[:port] of the hub for links; "": the request's own
    websub_hub: str = ""  # a WebSub hub URL: <link rel="hub">, pinged on every change; "": none


@dataclass(frozen=True)
class PushSettings:
    """Push to partners: how the hub POSTs signed CAP to subscribed callback URLs."""

    timeout: float = 10.0  # seconds one POST may take, connection included
    retry_for: float = 86400.0  # seconds after the change when a failing delivery is given up
    first_retry: float = 5.0  # seconds before the first retry; doubled each time
    max_retry: float = 1800.0  # the longest wait between two tries
    concurrency: int = 64  # POSTs in flight at once (per push process)
    public_exchange: str = "cap.public"  # on RabbitMQ: fan-out exchange of every public change; "": none
    # Callbacks may name loopback, private and link-local addresses (a closed network, tests);
    # off, such a URL is refused at registration and such an address at each POST.
    allow_private: bool = False


@dataclass(frozen=True)
class CostSettings:
    """What a delivery costs, in euro excluding VAT: SMS per part, voice per started minute;
    e-mail and CAP are free. A number whose E.164 form starts with a prefix of the tables
    (the longest wins) is priced by it instead: foreign numbers may cost more."""

    sms_eur: float = 0.055  # per SMS part (160/153 GSM-7 characters, 70/67 UCS-2)
    voice_minute_eur: float = 0.055  # per started minute of a call
    sms_prefix_eur: dict[str, float] = field(default_factory=dict)  # {"+33" = 0.08}
    voice_prefix_eur: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignSettings:
    """When a campaign ends, and how often its live progress is told."""

    # Seconds a sent delivery waits for its outcome (an SMS for its receipt) before the
    # campaign ends without it; a late outcome still counts, and updates the report.
    sms_wait: float = 86400.0
    voice_wait: float = 3600.0
    email_wait: float = 3600.0
    sweep_interval: float = 60.0  # seconds between the tracker's looks for campaigns timed out
    progress_interval: float = 0.5  # seconds between two live progress updates (SSE) at most


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
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    client: ClientSettings = field(default_factory=ClientSettings)
    cost: CostSettings = field(default_factory=CostSettings)
    campaigns: CampaignSettings = field(default_factory=CampaignSettings)
    feeds: FeedsSettings = field(default_factory=FeedsSettings)
    push: PushSettings = field(default_factory=PushSettings)
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


def _to_prices(value: Any) -> dict[str, float]:
    """A table of numbers by name: a TOML table, or ``"+33=0.08,+44=0.07"`` from the environment."""
    if isinstance(value, str):
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError("not a table (KEY=NUMBER,KEY=NUMBER)")
        value = {k.strip(): v.strip() for k, _, v in pairs}
    if not isinstance(value, Mapping):
        raise ValueError("not a table")
    out: dict[str, float] = {}
    for key, number in value.items():
        try:
            out[str(key)] = _to_float(number)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return out


def _cast(value: Any, hint: Any, where: str) -> Any:
    """``value`` as ``hint``; a TOML value or an environment string."""
    if typing.get_origin(hint) is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where} = {value!r}: must be one of {', '.join(map(repr, allowed))}")
        return value
    cast = _to_prices if hint == dict[str, float] else _CASTS.get(hint)
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
