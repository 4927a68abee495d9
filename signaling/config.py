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

    [limits]                            # SIG-9, issue 11: every key is in
    messages_per_sec = 100              # signaling/config_limits.py

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
from typing import Any

from actr.realm_secret import MIN_SECRET_BYTES, is_loopback_host, secret_weakness
from signaling.config_limits import Limits, parse_limits
from signaling.config_values import ConfigError, read, read_number, read_table

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
_TURN_KEYS = frozenset({"urls", "secret", "ttl_secs"})


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
    host = read(raw, "host", str, defaults.host, source)
    if not host:
        raise ConfigError(f"{source}: host must not be empty")
    port = read(raw, "port", int, defaults.port, source)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{source}: port must be between 0 and 65535, got {port}")
    lifetime = read(raw, "credential_lifetime_secs", int, defaults.credential_lifetime_secs, source)
    if lifetime < 1:
        raise ConfigError(f"{source}: credential_lifetime_secs must be at least 1, got {lifetime}")
    heartbeat = read(raw, "heartbeat_interval_secs", int, defaults.heartbeat_interval_secs, source)
    if heartbeat < 1:
        raise ConfigError(f"{source}: heartbeat_interval_secs must be at least 1, got {heartbeat}")
    key_id = read(raw, "signing_key_id", int, defaults.signing_key_id, source)
    if not 0 <= key_id <= _U32_MAX:
        raise ConfigError(f"{source}: signing_key_id must fit in 32 bits, got {key_id}")
    key_file: Path | None = None
    if "signing_key_file" in raw:
        text = read(raw, "signing_key_file", str, "", source)
        if not text:
            raise ConfigError(f"{source}: signing_key_file must not be empty")
        key_file = Path(text).expanduser()
        if not key_file.is_absolute():
            key_file = base_dir / key_file
    realms = (
        _parse_realms(raw.get("realms"), source, base_dir) if "realms" in raw else defaults.realms
    )
    grace = read_number(raw, "reconnect_grace_secs", defaults.reconnect_grace_secs, source)
    if not 0 <= grace <= 86400:
        raise ConfigError(f"{source}: reconnect_grace_secs must be between 0 and 86400")
    redis_url: str | None = None
    if "redis_url" in raw:
        redis_url = read(raw, "redis_url", str, "", source)
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"{source}: redis_url must start with redis://, rediss:// or unix://, "
                f"got {redis_url!r}"
            )
    prefix = read(raw, "redis_prefix", str, defaults.redis_prefix, source)
    if not prefix or any(c in prefix for c in " *?[]"):
        raise ConfigError(f"{source}: redis_prefix must be non-empty, without spaces or globs")
    limits = parse_limits(raw["limits"], source) if "limits" in raw else defaults.limits
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


def _parse_turn(value: object, source: str) -> Turn:
    t = read_table(value, "turn", _TURN_KEYS, source)
    where = f"{source} [turn]"
    urls = t.get("urls", [])
    if not isinstance(urls, list) or not all(
        isinstance(u, str) and u.startswith(("turn:", "turns:")) for u in urls
    ):
        raise ConfigError(f"{where}: urls must be a list of turn: or turns: urls")
    secret = read(t, "secret", str, "", where)
    if not secret:
        raise ConfigError(f"{where}: secret (coturn's static-auth-secret) is required")
    ttl = read(t, "ttl_secs", int, 3600, where)
    if ttl < 60:
        raise ConfigError(f"{where}: ttl_secs must be at least 60, got {ttl}")
    return Turn(urls=tuple(urls), secret=secret, ttl_secs=ttl)


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
