"""The ``[limits]`` table of the server's config (PROTOCOL.md SIG-9; issue 11). No I/O.

Every key is optional; 0 turns a limit off::

    [limits]
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
    max_registrations_per_realm = 100000  # registrations held per realm, lapsed ones
                                        # forgotten; past it /ais/register answers 429

A key of a float limit takes an integer or a float, any other an integer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from signaling.config_values import ConfigError, read, read_number, read_table

__all__ = ["LIMIT_KEYS", "Limits", "parse_limits"]


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
    # Registrations held per realm (across the deployment): each lives until it lapses,
    # so a realm member within the rate limits could otherwise fill memory with them.
    max_registrations_per_realm: int = 100_000


LIMIT_KEYS = frozenset(f.name for f in fields(Limits))
# Sizes the server's own answers need: a full ActrId type, a 1 MiB frame.
_LEAST = {
    "max_type_part_bytes": 16,
    "max_text_bytes": 64,
    "max_registration_bytes": 1024,
    "max_outbox_bytes": 1024 * 1024 + 4096,
}


def parse_limits(value: object, source: str) -> Limits:
    """The ``[limits]`` table ``value`` of the config read from ``source``."""
    t = read_table(value, "limits", LIMIT_KEYS, source)
    where = f"{source} [limits]"
    defaults = Limits()
    parsed: dict[str, Any] = {}
    for f in fields(Limits):
        default = getattr(defaults, f.name)
        if isinstance(default, float):
            parsed[f.name] = read_number(t, f.name, default, where)
        else:
            parsed[f.name] = read(t, f.name, int, default, where)
    out = Limits(**parsed)
    for name in sorted(LIMIT_KEYS):
        if getattr(out, name) < 0:
            raise ConfigError(f"{where}: {name} must not be negative")
    if out.messages_per_sec and out.message_burst < 1:
        raise ConfigError(f"{where}: message_burst must be at least 1")
    if out.connects_per_ip_per_sec and out.connect_burst < 1:
        raise ConfigError(f"{where}: connect_burst must be at least 1")
    if out.connects_per_prefix_per_sec and out.connect_prefix_burst < 1:
        raise ConfigError(f"{where}: connect_prefix_burst must be at least 1")
    for name, least in _LEAST.items():
        if getattr(out, name) and getattr(out, name) < least:
            raise ConfigError(f"{where}: {name} must be 0 (no limit) or at least {least}")
    return out
