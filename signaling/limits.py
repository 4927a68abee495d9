"""Rate limits (PROTOCOL.md SIG-9, SIG-1's 429). No I/O: time is passed in.

- ``TokenBucket``: ``rate`` tokens a second up to ``burst``; a rate of 0 never limits.
- ``FloodGuard``: one per socket. A frame over the message rate is refused
  (the server answers RESOURCE_EXHAUSTED); refused frames draw on a second,
  slower bucket, and when that runs dry the flood is sustained and the socket
  is closed. A short burst over the rate costs errors, not the connection.
- ``AttemptLimiter``: connection and registration attempts per client address
  and per network prefix of it (F11: /24 for IPv4, /64 for IPv6, so a client
  cannot walk around the limit through its neighbouring addresses), a bucket
  per key, the least recently used forgotten past a bound.
- ``ConnectionGate``: open TCP connections per client address and per prefix
  (F5), counted when a connection is accepted, before any HTTP is read.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from collections import OrderedDict

__all__ = [
    "AttemptLimiter",
    "ConnectionGate",
    "FloodGuard",
    "TokenBucket",
    "Verdict",
    "client_keys",
    "retry_after_header",
]

# Addresses remembered by an AttemptLimiter; an idle bucket is full again anyway.
MAX_TRACKED_ADDRESSES = 65536
# Refused frames refill at this fraction of the message rate.
_REFUSAL_REFILL = 0.1


class TokenBucket:
    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        if not self.ready(now):
            return False
        if self.rate > 0:
            self._tokens -= 1.0
        return True

    def wait(self, now: float) -> float:
        """Seconds until ``take`` would succeed (0 when it would now)."""
        if self.ready(now):
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def ready(self, now: float) -> bool:
        """Whether ``take`` would succeed now (takes nothing)."""
        if self.rate <= 0:
            return True
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        return self._tokens >= 1.0


class Verdict(enum.Enum):
    ADMIT = "admit"
    REFUSE = "refuse"
    CLOSE = "close"


class FloodGuard:
    __slots__ = ("_messages", "_refusals", "refused")

    def __init__(self, rate: float, burst: int, tolerance: int, now: float) -> None:
        self._messages = TokenBucket(rate, burst, now)
        # tolerance 0: never close, only refuse.
        self._refusals = (
            TokenBucket(max(rate * _REFUSAL_REFILL, 1e-9), tolerance, now)
            if rate > 0 and tolerance > 0
            else None
        )
        self.refused = 0

    def check(self, now: float) -> Verdict:
        if self._messages.take(now):
            return Verdict.ADMIT
        self.refused += 1
        if self._refusals is not None and not self._refusals.take(now):
            return Verdict.CLOSE
        return Verdict.REFUSE


def client_keys(address: str) -> tuple[str, str]:
    """(the address, its network prefix): /24 for IPv4, /64 for IPv6; an IPv4-mapped
    IPv6 address counts as the IPv4 one. Anything that does not parse is its own prefix."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address, address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = 24 if isinstance(ip, ipaddress.IPv4Address) else 64
    net = ipaddress.ip_network(f"{ip}/{bits}", strict=False)
    return str(ip), str(net)


class _Buckets:
    """Token buckets by key, the least recently used forgotten past ``max_tracked``."""

    def __init__(self, rate: float, burst: int, max_tracked: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_tracked = max_tracked
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def get(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket


class AttemptLimiter:
    """An attempt passes when both its address's bucket and its prefix's have a token;
    ``refused_by`` tells which one said no last (``"ip"`` or ``"prefix"``)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        prefix_rate: float = 0.0,
        prefix_burst: int = 1,
        max_tracked: int = MAX_TRACKED_ADDRESSES,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._by_ip = _Buckets(rate, burst, max_tracked)
        self._by_prefix = _Buckets(prefix_rate, prefix_burst, max_tracked)
        self.refused_by = ""
        # After a refusal: seconds until the bucket that said no has a token again,
        # sent as Retry-After so clients come back when they may.
        self.retry_after = 0.0

    def __len__(self) -> int:
        return len(self._by_ip)

    def allow(self, address: str, now: float) -> bool:
        ip, prefix = client_keys(address)
        one = self._by_ip.get(ip, now) if self._by_ip.rate > 0 else None
        net = self._by_prefix.get(prefix, now) if self._by_prefix.rate > 0 else None
        if one is not None and not one.ready(now):
            self.refused_by, self.retry_after = "ip", one.wait(now)
            return False
        if net is not None and not net.ready(now):
            self.refused_by, self.retry_after = "prefix", net.wait(now)
            return False
        if one is not None:
            one.take(now)
        if net is not None:
            net.take(now)
        return True


class ConnectionGate:
    """F5: how many TCP connections each client address and each prefix holds open.

    ``admit`` counts a new connection in, or returns why not (``"per_ip"``,
    ``"per_prefix"``); every admitted connection is ``release``d once when it closes.
    A limit of 0 is no limit.
    """

    def __init__(self, per_ip: int, per_prefix: int) -> None:
        self.per_ip = per_ip
        self.per_prefix = per_prefix
        self._open: dict[str, int] = {}

    def count(self, key: str) -> int:
        return self._open.get(key, 0)

    def admit(self, address: str) -> str | None:
        ip, prefix = client_keys(address)
        if self.per_ip and self._open.get(ip, 0) >= self.per_ip:
            return "per_ip"
        if self.per_prefix and prefix != ip and self._open.get(prefix, 0) >= self.per_prefix:
            return "per_prefix"
        for key in {ip, prefix}:
            self._open[key] = self._open.get(key, 0) + 1
        return None

    def release(self, address: str) -> None:
        ip, prefix = client_keys(address)
        for key in {ip, prefix}:
            left = self._open.get(key, 0) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)


def retry_after_header(seconds: float) -> dict[str, str]:
    """The Retry-After header (whole seconds, at least 1) for a 429."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
