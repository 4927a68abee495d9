"""Server configuration: a TOML file, defaults for everything, CLI overrides.

The file (every key optional)::

    host = "127.0.0.1"                  # address to bind
    port = 8081                         # 0 picks a free port
    credential_lifetime_secs = 3600     # AIS-2 credential lifetime
    heartbeat_interval_secs = 10        # advised ping interval (RegisterOk, Pong)
    signing_key_file = "signing.key"    # Ed25519 private key, raw 32 bytes or PEM;
                                        # created (mode 0600) if missing; relative
                                        # paths are taken from the config file's folder
    signing_key_id = 1                  # key_id written in every credential

    [realms]                            # realm id -> realm secret (AIS-1)
    1 = "dev-secret"
    7 = "another-secret"

Without ``signing_key_file`` the key lives in memory only, so credentials do not
survive a restart. Without ``[realms]`` the server grants realm 1 with the
development secret ``dev-secret``, and then refuses to bind anything but a
loopback address: a well-known secret must not reach a network.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "DEV_REALM_ID",
    "DEV_REALM_SECRET",
    "Config",
    "ConfigError",
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
        "realms",
    }
)


class ConfigError(ValueError):
    """A configuration the server cannot start with; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8081
    realms: Mapping[int, str] = field(default_factory=lambda: {DEV_REALM_ID: DEV_REALM_SECRET})
    credential_lifetime_secs: int = 3600
    heartbeat_interval_secs: int = 10
    signing_key_file: Path | None = None
    signing_key_id: int = 1

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
    realms = _parse_realms(raw.get("realms"), source) if "realms" in raw else defaults.realms
    return Config(
        host=host,
        port=port,
        realms=realms,
        credential_lifetime_secs=lifetime,
        heartbeat_interval_secs=heartbeat,
        signing_key_file=key_file,
        signing_key_id=key_id,
    )


def check_exposure(config: Config) -> None:
    """Refuse the development secret on an address other hosts can reach."""
    if config.uses_dev_secret and not _is_loopback(config.host):
        raise ConfigError(
            f"refusing to serve the development realm secret {DEV_REALM_SECRET!r} on "
            f"{config.host}: configure [realms] with your own secrets, or bind 127.0.0.1"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_realms(value: object, source: str) -> dict[int, str]:
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
        if not isinstance(secret, str) or not secret:
            raise ConfigError(
                f"{source}: the secret of realm {realm_id} must be a non-empty string"
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
