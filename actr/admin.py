"""Who may call the runtime's own routes (EXT-1: ``actr.v1.Runtime.Stats``), and how often.

Stats tells an actor's counters and the ids of its peers, so the runtime
answers it only to a caller that the actor's ACL admits (ACL-2) *and* that one
of the ``[admin] stats_from`` patterns names (none by default: no remote caller
reads it), at most ``stats_per_sec`` answers a second (a token bucket
``stats_burst`` deep). A refused call is answered PERMISSION_DENIED, one over
the rate RESOURCE_EXHAUSTED. A node without an actor (a client) never answers
it. Sans-IO: time is passed in.

A pattern is ``[realm/]manufacturer:name:version``; each part may be ``*``
(anything). Without ``realm/`` it names callers of the actor's own realm;
``*/`` any realm. E.g. ``acme:ops:*``, ``7/acme:ops:1.0``, ``*/acme:*:*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from actr.errors import ErrorCode
from actr.protocol.actr_pb2 import ActrId

_PART = re.compile(r"\*|[A-Za-z0-9_.\-]+")
ANY = "*"


@dataclass(frozen=True)
class CallerPattern:
    """One ``[realm/]manufacturer:name:version`` pattern of ``stats_from``."""

    text: str
    realm: int | None  # None: the owner's own realm
    any_realm: bool
    manufacturer: str
    name: str
    version: str

    @classmethod
    def parse(cls, text: str) -> CallerPattern:
        realm_text, slash, type_part = text.rpartition("/")
        realm: int | None = None
        any_realm = False
        if slash:
            if realm_text == ANY:
                any_realm = True
            elif realm_text.isdigit() and int(realm_text) < 2**32:
                realm = int(realm_text)
            else:
                raise ValueError(f"{text!r}: realm must be a number or *, not {realm_text!r}")
        parts = type_part.split(":")
        if len(parts) != 3 or not all(_PART.fullmatch(p) for p in parts):
            raise ValueError(
                f"{text!r}: expected [realm/]manufacturer:name:version, each part a name or *"
            )
        return cls(text, realm, any_realm, *parts)

    def matches(self, owner: ActrId, caller: ActrId) -> bool:
        if not self.any_realm:
            wanted = owner.realm.realm_id if self.realm is None else self.realm
            if caller.realm.realm_id != wanted:
                return False
        t = caller.type
        return all(
            want in (ANY, got)
            for want, got in (
                (self.manufacturer, t.manufacturer),
                (self.name, t.name),
                (self.version, t.version),
            )
        )


@dataclass
class AdminConfig:
    """``[admin]`` of the daemon config."""

    stats_from: tuple[CallerPattern, ...] = ()
    stats_per_sec: float = 1.0
    stats_burst: int = 5
    # The operators' HTTP endpoint (/metrics, /healthz, /readyz; actr/ops_http.py) as
    # "host:port"; empty: none (it tells counters and health to whoever reaches it).
    listen: str = ""
    # /healthz: how long the signaling server may be out of reach before the daemon
    # reports itself unhealthy (connected peers go on meanwhile; it reconnects alone).
    signaling_grace: float = 30.0


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) of ``[admin] listen``; ValueError if not."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: expected host:port, e.g. 127.0.0.1:9464")
    return host, int(port)


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` a second; ``take`` spends one if there is one."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def take(self, now: float) -> bool:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class AdminGate:
    """Decides whether a caller, already admitted by the actor's ACL, gets Stats."""

    def __init__(self, config: AdminConfig) -> None:
        self.config = config
        self._bucket = TokenBucket(config.stats_per_sec, config.stats_burst)

    def refusal(self, owner: ActrId, caller: ActrId, now: float) -> tuple[ErrorCode, str] | None:
        """None to answer; else the error to answer with."""
        if not any(p.matches(owner, caller) for p in self.config.stats_from):
            return ErrorCode.PERMISSION_DENIED, "runtime stats refused: [admin] stats_from"
        if not self._bucket.take(now):
            return ErrorCode.RESOURCE_EXHAUSTED, "runtime stats rate limited: [admin] stats_per_sec"
        return None
