"""Daemon configuration from TOML (``actr run actr.toml``).

    [actor]
    class = "echo:Echo"          # module:Class of an Actor subclass
    pythonpath = ["."]           # searched for the module, relative to this file
    data_dir = "data/echo"       # mailbox and state, relative to this file
    stop_grace = 10.0            # SIGTERM: time a running handler gets to finish
    max_concurrent_handlers = 1  # >1: handlers overlap (mailbox order is then not kept)

    [signaling]
    url = "http://127.0.0.1:8081"
    # urls = ["http://a:8081", "http://b:8081"]   # several servers: fail over between them
    realm = 1
    realm_secret = "dev-secret"  # or realm_secret_env = "NAME_OF_ENV_VAR", or
                                 # realm_secret_file = "path" (relative to this file;
                                 # its content, without the trailing newline).
                                 # A placeholder (change-me, dev-secret, ...) or a secret
                                 # under 16 bytes is refused unless every url is loopback.

    [webrtc]
    host_addresses = ["127.0.0.1"]   # omit to let ICE use every interface
    ice_servers = []                 # [{urls = "stun:...", username = "", credential = ""}]
    connect_timeout = 15.0
    turn_urls = ["turn:turn.example.com:3478"]  # use the TURN credential from registration
    force_relay = false              # true: relayed candidates only (all traffic via TURN)
    consent_interval = 5.0           # ICE consent check period; a dead peer is
    consent_failures = 6             # noticed after about interval x failures

    [limits]
    max_message_size = 16777216
    max_pending_calls = 10000
    max_partial_messages = 16    # DC-4, per peer connection: messages being reassembled,
    max_partial_bytes = 0        #   the bytes they hold (0: max_message_size),
    partial_ttl = 30.0           #   and how long one may take (dropped on time, F2)
    max_half_open = 32           # connections being set up, all peers (F6); also each
                                 # is given up after [webrtc] connect_timeout

    [telemetry]
    exporter = "none"            # none | console | otlp (ENV-7 spans)
    endpoint = ""                # OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces

    [mailbox]
    dedup_window = 600.0         # answers kept for duplicates of answered requests (ENV-6)
    max_messages = 100000        # the bound (MBX-5): past it requests are refused
    max_bytes = 1073741824       #   with RESOURCE_EXHAUSTED
    backpressure_at = 0.8        # share of the bound where the backpressure hook fires
    max_attempts = 3             # handling failed this often (process died): dead letter
    durability = "process"       # commits survive: "process" (a crash) | "power" (+ power loss)

    [admin]                      # the runtime's own route actr.v1.Runtime.Stats (EXT-1)
    stats_from = []              # callers that may read it, besides the actor's ACL:
                                 # "[realm/]manufacturer:name:version", parts may be "*"
                                 # (e.g. "acme:ops:*"; no realm: the actor's own, "*/": any);
                                 # empty (the default): no remote caller
    stats_per_sec = 1.0          # answers a second, all callers together (token bucket
    stats_burst = 5              #   this deep); past it: RESOURCE_EXHAUSTED
    listen = ""                  # "127.0.0.1:9464": /metrics, /healthz, /readyz; "": off
    signaling_grace = 30.0       # /healthz is 503 once signaling is down this long

    [logging]                    # the command line's --log-level/--log-format win
    level = "WARNING"            # DEBUG | INFO | WARNING | ERROR
    format = "text"              # text | json (one object per line, for log shippers)

Unknown keys are an error, so a typo does not silently fall back to a default.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actr.admin import AdminConfig, CallerPattern, parse_listen
from actr.framing import DEFAULT_MAX_MESSAGE
from actr.mailbox import MailboxLimits
from actr.transport.config import TransportConfig


class ConfigError(ValueError):
    """A config file that cannot be used; the message says what and where."""


@dataclass
class SignalingConfig:
    url: str = "http://127.0.0.1:8081"
    # Servers of one deployment (SIG-10) to fail over between; empty: just ``url``.
    urls: list[str] = field(default_factory=list)
    realm: int = 1
    realm_secret: str = ""

    def all_urls(self) -> list[str]:
        return self.urls or [self.url]


@dataclass
class NodeConfig:
    signaling: SignalingConfig = field(default_factory=SignalingConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    actor_class: str = ""
    actr_type: str = ""
    pythonpath: list[Path] = field(default_factory=list)
    data_dir: Path | None = None
    max_pending_calls: int = 10_000
    mailbox: MailboxLimits = field(default_factory=MailboxLimits)
    admin: AdminConfig = field(default_factory=AdminConfig)
    # On SIGTERM, how long a running handler may take to finish before it is cancelled
    # and its request goes back to the queue.
    stop_grace: float = 10.0
    # Handlers running at once; 1 keeps mailbox order (one at a time, FIFO per priority).
    max_concurrent_handlers: int = 1
    trace_exporter: str = "none"  # none | console | otlp
    trace_endpoint: str = ""  # OTLP/HTTP endpoint; empty: the exporter's default
    log_level: str = ""  # empty: the command line's (actr/logs.py)
    log_format: str = "text"  # text | json


_SECTIONS: dict[str, set[str]] = {
    "actor": {"class", "pythonpath", "data_dir", "type", "stop_grace", "max_concurrent_handlers"},
    "signaling": {"url", "urls", "realm", "realm_secret", "realm_secret_env", "realm_secret_file"},
    "webrtc": {
        "host_addresses",
        "ice_servers",
        "connect_timeout",
        "consent_interval",
        "consent_failures",
        "turn_urls",
        "force_relay",
    },
    "limits": {
        "max_message_size",
        "max_pending_calls",
        "max_partial_messages",
        "max_partial_bytes",
        "partial_ttl",
        "max_half_open",
    },
    "telemetry": {"exporter", "endpoint"},
    "mailbox": set(MailboxLimits.__dataclass_fields__),  # dedup_window ... durability
    "admin": {"stats_from", "stats_per_sec", "stats_burst", "listen", "signaling_grace"},
    "logging": {"level", "format"},
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


def _typed(section: str, table: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = table[key]
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"[{section}] {key}: expected {kind}, got a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"[{section}] {key}: expected {kind}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"[{section}] {key}: must be a finite number, got {value}")
    return value


def read_secret_file(path: Path, what: str) -> str:
    """A secret kept in a file (a systemd credential, a mounted secret): its text
    without surrounding whitespace (the trailing newline an editor adds)."""
    try:
        secret = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what}: cannot read {path}: {e}") from e
    if not secret:
        raise ConfigError(f"{what}: {path} is empty")
    return secret


def load(path: str | Path) -> NodeConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} unreadable: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from e
    return from_dict(raw, base=path.parent)


def from_dict(raw: dict[str, Any], base: Path) -> NodeConfig:
    for section, table in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(f"unknown section [{section}]")
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        unknown = set(table) - _SECTIONS[section]
        if unknown:
            raise ConfigError(f"[{section}] unknown keys: {', '.join(sorted(unknown))}")
    cfg = NodeConfig()
    actor = raw.get("actor", {})
    if "class" in actor:
        cfg.actor_class = _typed("actor", actor, "class", str)
    if "type" in actor:
        cfg.actr_type = _typed("actor", actor, "type", str)
    if "pythonpath" in actor:
        paths = _typed("actor", actor, "pythonpath", list)
        if not all(isinstance(p, str) for p in paths):
            raise ConfigError("[actor] pythonpath: expected a list of strings")
        cfg.pythonpath = [(base / p).resolve() for p in paths]
    if "data_dir" in actor:
        cfg.data_dir = (base / _typed("actor", actor, "data_dir", str)).resolve()
    if "stop_grace" in actor:
        grace = float(_typed("actor", actor, "stop_grace", (int, float)))
        if not 0 <= grace <= 3600:
            raise ConfigError("[actor] stop_grace must be between 0 and 3600 seconds")
        cfg.stop_grace = grace
    if "max_concurrent_handlers" in actor:
        n = _typed("actor", actor, "max_concurrent_handlers", int)
        if not 1 <= n <= 10_000:
            raise ConfigError("[actor] max_concurrent_handlers must be between 1 and 10000")
        cfg.max_concurrent_handlers = n

    sig = raw.get("signaling", {})
    if "url" in sig:
        cfg.signaling.url = _typed("signaling", sig, "url", str)
    if "urls" in sig:
        urls = _typed("signaling", sig, "urls", list)
        if not urls or not all(isinstance(u, str) for u in urls):
            raise ConfigError("[signaling] urls: expected a non-empty list of strings")
        cfg.signaling.urls = urls
    for u in cfg.signaling.all_urls():
        if not u.startswith(("http://", "https://", "ws://", "wss://")):
            raise ConfigError(f"[signaling] url {u!r} must start with http(s):// or ws(s)://")
    if "realm" in sig:
        realm = _typed("signaling", sig, "realm", int)
        if not 0 <= realm < 2**32:
            raise ConfigError("[signaling] realm: out of range")
        cfg.signaling.realm = realm
    if "realm_secret" in sig:
        cfg.signaling.realm_secret = _typed("signaling", sig, "realm_secret", str)
    if "realm_secret_env" in sig:
        name = _typed("signaling", sig, "realm_secret_env", str)
        if name not in os.environ:
            raise ConfigError(f"[signaling] realm_secret_env: environment variable {name} not set")
        cfg.signaling.realm_secret = os.environ[name]
    if "realm_secret_file" in sig:
        secret_file = base / _typed("signaling", sig, "realm_secret_file", str)
        cfg.signaling.realm_secret = read_secret_file(secret_file, "[signaling] realm_secret_file")
    given = [k for k in ("realm_secret", "realm_secret_env", "realm_secret_file") if k in sig]
    if len(given) > 1:
        raise ConfigError(f"[signaling] give one of {', '.join(given)}, not several")

    rtc = raw.get("webrtc", {})
    if "host_addresses" in rtc:
        addrs = _typed("webrtc", rtc, "host_addresses", list)
        if not all(isinstance(a, str) for a in addrs):
            raise ConfigError("[webrtc] host_addresses: expected a list of strings")
        cfg.transport.host_addresses = addrs
    if "ice_servers" in rtc:
        servers = _typed("webrtc", rtc, "ice_servers", list)
        for s in servers:
            if not isinstance(s, dict) or "urls" not in s:
                raise ConfigError("[webrtc] ice_servers: each entry needs urls")
            if set(s) - {"urls", "username", "credential"}:
                raise ConfigError("[webrtc] ice_servers: keys are urls, username, credential")
            urls = s["urls"]
            if not (
                isinstance(urls, str)
                or (isinstance(urls, list) and urls and all(isinstance(u, str) for u in urls))
            ):
                raise ConfigError("[webrtc] ice_servers: urls must be a string or list of strings")
            if not all(isinstance(s.get(k, ""), str) for k in ("username", "credential")):
                raise ConfigError("[webrtc] ice_servers: username and credential are strings")
        cfg.transport.ice_servers = servers
    if "connect_timeout" in rtc:
        t = float(_typed("webrtc", rtc, "connect_timeout", (int, float)))
        if t <= 0:
            raise ConfigError("[webrtc] connect_timeout must be > 0")
        cfg.transport.connect_timeout = t
    if "turn_urls" in rtc:
        turn = _typed("webrtc", rtc, "turn_urls", list)
        if not all(isinstance(u, str) and u.startswith(("turn:", "turns:")) for u in turn):
            raise ConfigError("[webrtc] turn_urls: expected turn: or turns: urls")
        cfg.transport.turn_urls = turn
    if "force_relay" in rtc:
        cfg.transport.force_relay = _typed("webrtc", rtc, "force_relay", bool)
    if "consent_interval" in rtc:
        t = float(_typed("webrtc", rtc, "consent_interval", (int, float)))
        if not 0.1 <= t <= 60:
            raise ConfigError("[webrtc] consent_interval must be between 0.1 and 60 seconds")
        cfg.transport.consent_interval = t
    if "consent_failures" in rtc:
        n = _typed("webrtc", rtc, "consent_failures", int)
        if not 1 <= n <= 100:
            raise ConfigError("[webrtc] consent_failures must be between 1 and 100")
        cfg.transport.consent_failures = n

    limits = raw.get("limits", {})
    if "max_message_size" in limits:
        size = _typed("limits", limits, "max_message_size", int)
        if not 1024 <= size <= 1 << 30:
            raise ConfigError("[limits] max_message_size must be between 1 KiB and 1 GiB")
        cfg.transport.max_message_size = size
    else:
        cfg.transport.max_message_size = DEFAULT_MAX_MESSAGE
    for key, low, high in (
        ("max_partial_messages", 1, 4096),
        ("max_partial_bytes", 0, 1 << 31),
        ("max_half_open", 1, 100_000),
    ):
        if key in limits:
            n = _typed("limits", limits, key, int)
            if not low <= n <= high:
                raise ConfigError(f"[limits] {key} must be between {low} and {high}")
            setattr(cfg.transport, key, n)
    if "partial_ttl" in limits:
        t = float(_typed("limits", limits, "partial_ttl", (int, float)))
        if not 0.1 <= t <= 3600:
            raise ConfigError("[limits] partial_ttl must be between 0.1 and 3600 seconds")
        cfg.transport.partial_ttl = t
    if "max_pending_calls" in limits:
        n = _typed("limits", limits, "max_pending_calls", int)
        if n < 1:
            raise ConfigError("[limits] max_pending_calls must be >= 1")
        cfg.max_pending_calls = n

    tel = raw.get("telemetry", {})
    if "exporter" in tel:
        exporter = _typed("telemetry", tel, "exporter", str)
        if exporter not in ("none", "console", "otlp"):
            raise ConfigError("[telemetry] exporter must be one of none, console, otlp")
        cfg.trace_exporter = exporter
    if "endpoint" in tel:
        cfg.trace_endpoint = _typed("telemetry", tel, "endpoint", str)

    mbx = raw.get("mailbox", {})
    limits = cfg.mailbox
    if "dedup_window" in mbx:
        w = float(_typed("mailbox", mbx, "dedup_window", (int, float)))
        if w < 0:
            raise ConfigError("[mailbox] dedup_window must be >= 0")
        limits.dedup_window = w
    if "max_messages" in mbx:
        limits.max_messages = _typed("mailbox", mbx, "max_messages", int)
        if limits.max_messages < 1:
            raise ConfigError("[mailbox] max_messages must be >= 1")
    if "max_bytes" in mbx:
        limits.max_bytes = _typed("mailbox", mbx, "max_bytes", int)
        if limits.max_bytes < 1024:
            raise ConfigError("[mailbox] max_bytes must be >= 1024")
    if "backpressure_at" in mbx:
        limits.backpressure_at = float(_typed("mailbox", mbx, "backpressure_at", (int, float)))
        if not 0 < limits.backpressure_at <= 1:
            raise ConfigError("[mailbox] backpressure_at must be in (0, 1]")
    if "max_attempts" in mbx:
        limits.max_attempts = _typed("mailbox", mbx, "max_attempts", int)
        if limits.max_attempts < 1:
            raise ConfigError("[mailbox] max_attempts must be >= 1")
    if "durability" in mbx:
        limits.durability = _typed("mailbox", mbx, "durability", str)
        if limits.durability not in ("process", "power"):
            raise ConfigError('[mailbox] durability must be "process" or "power"')

    admin = raw.get("admin", {})
    if "stats_from" in admin:
        patterns = _typed("admin", admin, "stats_from", list)
        if not all(isinstance(p, str) for p in patterns):
            raise ConfigError("[admin] stats_from: expected a list of strings")
        try:
            cfg.admin.stats_from = tuple(CallerPattern.parse(p) for p in patterns)
        except ValueError as e:
            raise ConfigError(f"[admin] stats_from: {e}") from e
    if "stats_per_sec" in admin:
        rate = float(_typed("admin", admin, "stats_per_sec", (int, float)))
        if not 0 < rate <= 1000:
            raise ConfigError("[admin] stats_per_sec must be > 0 and <= 1000")
        cfg.admin.stats_per_sec = rate
    if "stats_burst" in admin:
        burst = _typed("admin", admin, "stats_burst", int)
        if not 1 <= burst <= 10_000:
            raise ConfigError("[admin] stats_burst must be between 1 and 10000")
        cfg.admin.stats_burst = burst
    if "listen" in admin:
        cfg.admin.listen = _typed("admin", admin, "listen", str)
        try:
            if cfg.admin.listen:  # "": off
                parse_listen(cfg.admin.listen)
        except ValueError as e:
            raise ConfigError(f"[admin] listen: {e}") from e
    if "signaling_grace" in admin:
        grace = float(_typed("admin", admin, "signaling_grace", (int, float)))
        if not 0 <= grace <= 86400:
            raise ConfigError("[admin] signaling_grace must be between 0 and 86400 seconds")
        cfg.admin.signaling_grace = grace

    logging_ = raw.get("logging", {})
    if "level" in logging_:
        cfg.log_level = _typed("logging", logging_, "level", str).upper()
        if cfg.log_level not in LOG_LEVELS:
            raise ConfigError(f"[logging] level must be one of {', '.join(LOG_LEVELS)}")
    if "format" in logging_:
        cfg.log_format = _typed("logging", logging_, "format", str)
        if cfg.log_format not in LOG_FORMATS:
            raise ConfigError(f"[logging] format must be one of {', '.join(LOG_FORMATS)}")
    return cfg
