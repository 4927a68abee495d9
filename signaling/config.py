"""Server configuration: a TOML file, defaults for everything, CLI overrides.

The file (every key optional)::

    host = "127.0.0.1"                  # address to bind
    port = 8081                         # 0 picks a free port
    credential_lifetime_secs = 3600     # AIS-2 credential lifetime
    heartbeat_interval_secs = 10        # advised ping interval (RegisterOk, Pong)
    signing_key_file = "signing.key"    # Ed25519 private key, raw 32 bytes or PEM;
                                        # created (mode 0600) if missing, refused if
                                        # group or others may read or write it; relative
                                        # paths are taken from the config file's folder
    signing_key_id = 1                  # key_id written in every credential
    reconnect_grace_secs = 30           # SIG-7: a closed socket's actor is announced
                                        # down only if it did not come back by then
    redis_url = "redis://127.0.0.1:6379/0"  # SIG-10: share state with other nodes
    redis_prefix = "actr"               # key and channel prefix in that Redis

    [realms]                            # realm id -> realm secret (AIS-1)
    1 = "dev-secret"
    7 = { env = "ACTR_REALM_7_SECRET" } # or from the environment,
    8 = { file = "realm8.secret" }      # or a file (relative to this one)

    [limits]                            # SIG-9; 0 turns a limit off
    messages_per_sec = 100              # per connection, token bucket ...
    message_burst = 400                 # ... of this depth
    flood_tolerance = 1000              # refused frames (refilling at messages_per_sec / 10)
                                        # before the socket is closed with 1008
    connects_per_ip_per_sec = 20        # /signaling/ws and /ais/register attempts per IP
    connect_burst = 100
    connects_per_prefix_per_sec = 100   # ... and per /24 (IPv4) or /64 (IPv6) (F11)
    connect_prefix_burst = 400
    max_connections_per_ip = 256        # open TCP connections per client address (F5)
    max_connections_per_prefix = 1024   # ... and per /24 (IPv4) or /64 (IPv6)
    header_timeout_secs = 10            # a connection's first request headers, in full (F5)
    max_outbox_bytes = 4194304          # queued for one socket; past it: close 1013 (F4)
    max_subscriptions = 256             # actr_up subscriptions per actor (F3)
    max_type_part_bytes = 128           # manufacturer, name, version of any type sent (F3)
    max_text_bytes = 1024               # service names, reasons, messages, spec names (F3)
    max_acl_rules = 64                  # rules in a registered Acl (F3)
    max_registration_bytes = 65536      # a /ais/register body, ServiceSpec included (F3)

    [turn]                              # AIS-4: coturn use-auth-secret credentials
    urls = ["turn:turn.example.com:3478"]   # sent to actors in RegisterOk.turn_urls (ours, 40)
    secret = "shared with coturn's static-auth-secret"
    ttl_secs = 3600

Without ``signing_key_file`` the key lives in memory only, so credentials do not
survive a restart. Without ``redis_url`` the server keeps all state in memory
(one process); with it, any number of processes sharing that Redis and the
same ``signing_key_file`` serve one deployment. Without ``[turn]`` registrations
carry no TURN credential. Without ``[realms]`` the server grants realm 1 with the
development secret ``dev-secret``, and then refuses to bind anything but a
loopback address: a well-known secret must not reach a network. The same holds
for any placeholder secret (``change-me``, ...) and any realm secret shorter than
16 bytes (F14). A ``signing_key_file`` readable or writable by group or others is
refused at start (chmod 600 it).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from actr.realm_secret import MIN_SECRET_BYTES, is_loopback_host, secret_weakness

__all__ = [
    "DEV_REALM_ID",
    "DEV_REALM_SECRET",
    "Config",
    "ConfigError",
    "Limits",
    "Turn",
    "check_exposure",
    "load_config",
    "parse_config",
]

DEV_REALM_ID = 1
DEV_REALM_SECRET = "dev-secret"
_U32_MAX = 2**32 - 1
_T = TypeVar("_T")
_KNOWN_KEYS = frozenset(
    {
        "host",
        "port",
        "credential_lifetime_secs",
        "heartbeat_interval_secs",
        "signing_key_file",
        "signing_key_id",
        "reconnect_grace_secs",
        "redis_url",
        "redis_prefix",
        "realms",
        "limits",
        "turn",
    }
)
_LIMIT_KEYS = frozenset(
    {
        "messages_per_sec",
        "message_burst",
        "flood_tolerance",
        "connects_per_ip_per_sec",
        "connect_burst",
        "connects_per_prefix_per_sec",
        "connect_prefix_burst",
        "max_connections_per_ip",
        "max_connections_per_prefix",
        "header_timeout_secs",
        "max_outbox_bytes",
        "max_subscriptions",
        "max_type_part_bytes",
        "max_text_bytes",
        "max_acl_rules",
        "max_registration_bytes",
    }
)
_TURN_KEYS = frozenset({"urls", "secret", "ttl_secs"})


class ConfigError(ValueError):
    """A configuration the server cannot start with; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Limits:
    """SIG-9 limits; a rate of 0 turns that limit off."""

    messages_per_sec: float = 100.0
    message_burst: int = 400
    flood_tolerance: int = 1000
    connects_per_ip_per_sec: float = 20.0
    connect_burst: int = 100
    # F11: attempts per /24 (IPv4) or /64 (IPv6), so neighbouring addresses share one bucket.
    connects_per_prefix_per_sec: float = 100.0
    connect_prefix_burst: int = 400
    # F5: open TCP connections, counted before any HTTP is read.
    max_connections_per_ip: int = 256
    max_connections_per_prefix: int = 1024
    header_timeout_secs: float = 10.0
    # F4: bytes queued for one socket; a reader that falls further behind is closed (1013).
    max_outbox_bytes: int = 4 * 1024 * 1024
    # F3: sizes of what a client may send, and what the server keeps of it.
    max_subscriptions: int = 256
    max_type_part_bytes: int = 128
    max_text_bytes: int = 1024
    max_acl_rules: int = 64
    max_registration_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class Turn:
    """AIS-4: the coturn ``static-auth-secret`` and how long a credential lasts."""

    urls: tuple[str, ...]
    secret: str
    ttl_secs: int = 3600


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8081
    realms: Mapping[int, str] = field(default_factory=lambda: {DEV_REALM_ID: DEV_REALM_SECRET})
    credential_lifetime_secs: int = 3600
    heartbeat_interval_secs: int = 10
    signing_key_file: Path | None = None
    signing_key_id: int = 1
    reconnect_grace_secs: float = 30.0
    redis_url: str | None = None
    redis_prefix: str = "actr"
    limits: Limits = field(default_factory=Limits)
    turn: Turn | None = None

    def with_overrides(self, *, host: str | None = None, port: int | None = None) -> Config:
        out = self
        if host is not None:
            out = replace(out, host=host)
        if port is not None:
            if not 0 <= port <= 65535:
                raise ConfigError(f"port must be between 0 and 65535, got {port}")
            out = replace(out, port=port)
        return out

    @property
    def uses_dev_secret(self) -> bool:
        return any(secret == DEV_REALM_SECRET for secret in self.realms.values())


def load_config(path: Path | None) -> Config:
    """Read ``path`` (or return the defaults when it is None)."""
    if path is None:
        return Config()
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    return parse_config(raw, base_dir=path.resolve().parent, source=str(path))


def parse_config(raw: Mapping[str, Any], *, base_dir: Path, source: str = "config") -> Config:
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; known keys: "
            f"{', '.join(sorted(_KNOWN_KEYS))}"
        )
    defaults = Config()
    host = _get(raw, "host", str, defaults.host, source)
    if not host:
        raise ConfigError(f"{source}: host must not be empty")
    port = _get(raw, "port", int, defaults.port, source)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{source}: port must be between 0 and 65535, got {port}")
    lifetime = _get(raw, "credential_lifetime_secs", int, defaults.credential_lifetime_secs, source)
    if lifetime < 1:
        raise ConfigError(f"{source}: credential_lifetime_secs must be at least 1, got {lifetime}")
    heartbeat = _get(raw, "heartbeat_interval_secs", int, defaults.heartbeat_interval_secs, source)
    if heartbeat < 1:
        raise ConfigError(f"{source}: heartbeat_interval_secs must be at least 1, got {heartbeat}")
    key_id = _get(raw, "signing_key_id", int, defaults.signing_key_id, source)
    if not 0 <= key_id <= _U32_MAX:
        raise ConfigError(f"{source}: signing_key_id must fit in 32 bits, got {key_id}")
    key_file: Path | None = None
    if "signing_key_file" in raw:
        text = _get(raw, "signing_key_file", str, "", source)
        if not text:
            raise ConfigError(f"{source}: signing_key_file must not be empty")
        key_file = Path(text).expanduser()
        if not key_file.is_absolute():
            key_file = base_dir / key_file
    realms = (
        _parse_realms(raw.get("realms"), source, base_dir) if "realms" in raw else defaults.realms
    )
    grace = _number(raw, "reconnect_grace_secs", defaults.reconnect_grace_secs, source)
    if not 0 <= grace <= 86400:
        raise ConfigError(f"{source}: reconnect_grace_secs must be between 0 and 86400")
    redis_url: str | None = None
    if "redis_url" in raw:
        redis_url = _get(raw, "redis_url", str, "", source)
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"{source}: redis_url must start with redis://, rediss:// or unix://, "
                f"got {redis_url!r}"
            )
    prefix = _get(raw, "redis_prefix", str, defaults.redis_prefix, source)
    if not prefix or any(c in prefix for c in " *?[]"):
        raise ConfigError(f"{source}: redis_prefix must be non-empty, without spaces or globs")
    limits = _parse_limits(raw["limits"], source) if "limits" in raw else defaults.limits
    turn = _parse_turn(raw["turn"], source) if "turn" in raw else None
    return Config(
        host=host,
        port=port,
        realms=realms,
        credential_lifetime_secs=lifetime,
        heartbeat_interval_secs=heartbeat,
        signing_key_file=key_file,
        signing_key_id=key_id,
        reconnect_grace_secs=grace,
        redis_url=redis_url,
        redis_prefix=prefix,
        limits=limits,
        turn=turn,
    )


def _table(value: object, name: str, known: frozenset[str], source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) in [{name}]: {', '.join(unknown)}; known keys: "
            f"{', '.join(sorted(known))}"
        )
    return value


def _parse_limits(value: object, source: str) -> Limits:
    t = _table(value, "limits", _LIMIT_KEYS, source)
    d = Limits()
    where = f"{source} [limits]"
    out = Limits(
        messages_per_sec=_number(t, "messages_per_sec", d.messages_per_sec, where),
        message_burst=_get(t, "message_burst", int, d.message_burst, where),
        flood_tolerance=_get(t, "flood_tolerance", int, d.flood_tolerance, where),
        connects_per_ip_per_sec=_number(
            t, "connects_per_ip_per_sec", d.connects_per_ip_per_sec, where
        ),
        connect_burst=_get(t, "connect_burst", int, d.connect_burst, where),
        connects_per_prefix_per_sec=_number(
            t, "connects_per_prefix_per_sec", d.connects_per_prefix_per_sec, where
        ),
        connect_prefix_burst=_get(t, "connect_prefix_burst", int, d.connect_prefix_burst, where),
        max_connections_per_ip=_get(
            t, "max_connections_per_ip", int, d.max_connections_per_ip, where
        ),
        max_connections_per_prefix=_get(
            t, "max_connections_per_prefix", int, d.max_connections_per_prefix, where
        ),
        header_timeout_secs=_number(t, "header_timeout_secs", d.header_timeout_secs, where),
        max_outbox_bytes=_get(t, "max_outbox_bytes", int, d.max_outbox_bytes, where),
        max_subscriptions=_get(t, "max_subscriptions", int, d.max_subscriptions, where),
        max_type_part_bytes=_get(t, "max_type_part_bytes", int, d.max_type_part_bytes, where),
        max_text_bytes=_get(t, "max_text_bytes", int, d.max_text_bytes, where),
        max_acl_rules=_get(t, "max_acl_rules", int, d.max_acl_rules, where),
        max_registration_bytes=_get(
            t, "max_registration_bytes", int, d.max_registration_bytes, where
        ),
    )
    for name in _LIMIT_KEYS:
        if getattr(out, name) < 0:
            raise ConfigError(f"{where}: {name} must not be negative")
    if out.messages_per_sec and out.message_burst < 1:
        raise ConfigError(f"{where}: message_burst must be at least 1")
    if out.connects_per_ip_per_sec and out.connect_burst < 1:
        raise ConfigError(f"{where}: connect_burst must be at least 1")
    if out.connects_per_prefix_per_sec and out.connect_prefix_burst < 1:
        raise ConfigError(f"{where}: connect_prefix_burst must be at least 1")
    # Sizes the server's own answers need: a full ActrId type, a 1 MiB frame.
    for name, least in (
        ("max_type_part_bytes", 16),
        ("max_text_bytes", 64),
        ("max_registration_bytes", 1024),
        ("max_outbox_bytes", 1024 * 1024 + 4096),
    ):
        if getattr(out, name) and getattr(out, name) < least:
            raise ConfigError(f"{where}: {name} must be 0 (no limit) or at least {least}")
    return out


def _parse_turn(value: object, source: str) -> Turn:
    t = _table(value, "turn", _TURN_KEYS, source)
    where = f"{source} [turn]"
    urls = t.get("urls", [])
    if not isinstance(urls, list) or not all(
        isinstance(u, str) and u.startswith(("turn:", "turns:")) for u in urls
    ):
        raise ConfigError(f"{where}: urls must be a list of turn: or turns: urls")
    secret = _get(t, "secret", str, "", where)
    if not secret:
        raise ConfigError(f"{where}: secret (coturn's static-auth-secret) is required")
    ttl = _get(t, "ttl_secs", int, 3600, where)
    if ttl < 60:
        raise ConfigError(f"{where}: ttl_secs must be at least 60, got {ttl}")
    return Turn(urls=tuple(urls), secret=secret, ttl_secs=ttl)


def _number(raw: Mapping[str, Any], key: str, default: float, source: str) -> float:
    if key not in raw:
        return default
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
    return float(value)


def check_exposure(config: Config) -> None:
    """Refuse weak realm secrets on an address other hosts can reach (F14): the
    development secret, any placeholder (``change-me``, ...) and any secret shorter
    than 16 bytes (actr/realm_secret.py)."""
    if is_loopback_host(config.host):
        return
    if config.uses_dev_secret:
        raise ConfigError(
            f"refusing to serve the development realm secret {DEV_REALM_SECRET!r} on "
            f"{config.host}: configure [realms] with your own secrets, or bind 127.0.0.1"
        )
    for realm_id, secret in sorted(config.realms.items()):
        why = secret_weakness(secret)
        if why is not None:
            raise ConfigError(
                f"refusing to serve realm {realm_id} on {config.host}: its secret {why}; "
                f"give it a random secret of at least {MIN_SECRET_BYTES} bytes "
                "(e.g. `openssl rand -base64 24`), or bind 127.0.0.1"
            )


def _realm_secret_from(ref: dict[str, Any], realm_id: int, base_dir: Path, source: str) -> str:
    """A realm secret kept out of the file: ``{ env = "VAR" }`` or ``{ file = "path" }``
    (relative to the config file; its text without surrounding whitespace)."""
    where = f"{source}: the secret of realm {realm_id}"
    if (
        len(ref) != 1
        or not set(ref) <= {"env", "file"}
        or not isinstance(next(iter(ref.values())), str)
    ):
        raise ConfigError(f'{where} must be a string, {{ env = "VAR" }} or {{ file = "path" }}')
    if "env" in ref:
        name = ref["env"]
        if not os.environ.get(name):
            raise ConfigError(f"{where}: environment variable {name} is not set or empty")
        return os.environ[name]
    path = Path(ref["file"]).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot read {path}: {e}") from None
    if not text:
        raise ConfigError(f"{where}: {path} is empty")
    return text


def _parse_realms(value: object, source: str, base_dir: Path) -> dict[int, str]:
    if not isinstance(value, dict):
        raise ConfigError(f'{source}: [realms] must be a table of realm id = "secret"')
    out: dict[int, str] = {}
    for key, secret in value.items():
        try:
            realm_id = int(key)
        except ValueError:
            raise ConfigError(f"{source}: realm id {key!r} is not an integer") from None
        if not 0 <= realm_id <= _U32_MAX:
            raise ConfigError(f"{source}: realm id {realm_id} does not fit in 32 bits")
        if isinstance(secret, dict):
            secret = _realm_secret_from(secret, realm_id, base_dir, source)
        if not isinstance(secret, str) or not secret:
            raise ConfigError(
                f"{source}: the secret of realm {realm_id} must be a non-empty string, "
                '{ env = "VAR" } or { file = "path" }'
            )
        out[realm_id] = secret
    if not out:
        raise ConfigError(f"{source}: [realms] is empty, so nobody could register")
    return out


def _get(raw: Mapping[str, Any], key: str, kind: type[_T], default: _T, source: str) -> _T:
    if key not in raw:
        return default
    value = raw[key]
    # bool is an int subclass; `port = true` is a mistake, not 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"{source}: {key} must be {'an integer' if kind is int else 'a string'}, got {value!r}"
        )
    return value
