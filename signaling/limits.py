"""Rate limits (PROTOCOL.md SIG-9, SIG-1's 429). No I/O: time is passed in.

- ``TokenBucket``: ``rate`` tokens a second up to ``burst``; a rate of 0 never limits.
- ``FloodGuard``: one per socket. A frame over the message rate is refused
  (the server answers RESOURCE_EXHAUSTED); refused frames draw on a second,
  slower bucket, and when that runs dry the flood is sustained and the socket
  is closed. A short burst over the rate costs errors, not the connection.
- ``AttemptLimiter``: connection and registration attempts per client address,
  a bucket per address, the least recently used forgotten past a bound.
"""

from __future__ import annotations

import enum
from collections import OrderedDict

__all__ = ["AttemptLimiter", "FloodGuard", "TokenBucket", "Verdict"]

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
        if self.rate <= 0:
            return True
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


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


class AttemptLimiter:
    def __init__(self, rate: float, burst: int, max_tracked: int = MAX_TRACKED_ADDRESSES) -> None:
        self.rate = rate
        self.burst = burst
        self.max_tracked = max_tracked
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, address: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
            self._buckets[address] = bucket
            if len(self._buckets) > self.max_tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(address)
        return bucket.take(now)
