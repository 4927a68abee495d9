"""Everything one server instance holds, reachable from a request as ``request.app[STATE]``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from signaling.cluster import Cluster
from signaling.config import Config
from signaling.credentials import CredentialAuthority
from signaling.dispatcher import Dispatcher
from signaling.hub import Hub
from signaling.limits import AttemptLimiter
from signaling.registry import Registry
from signaling.stats import Stats

__all__ = ["STATE", "State"]


@dataclass(slots=True)
class State:
    config: Config
    authority: CredentialAuthority
    # This process's name in a deployment of several (SIG-10); "local" alone.
    node: str = "local"
    registry: Registry = field(default_factory=Registry)
    stats: Stats = field(default_factory=Stats)
    # Wall-clock seconds; credentials carry unix times, so this is time.time, not monotonic.
    clock: Callable[[], float] = time.time
    # Monotonic seconds for rate limits: a clock step must not refill or drain buckets.
    monotonic: Callable[[], float] = time.monotonic
    cluster: Cluster | None = None
    dispatcher: Dispatcher = field(init=False)
    hub: Hub = field(init=False)
    # SIG-9: connection and registration attempts per client address.
    attempts: AttemptLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(
            self.registry,
            self.authority,
            self.stats,
            self.config.heartbeat_interval_secs,
            grace_secs=self.config.reconnect_grace_secs,
            node=self.node,
        )
        self.hub = Hub(self.stats)
        limits = self.config.limits
        self.attempts = AttemptLimiter(limits.connects_per_ip_per_sec, limits.connect_burst)


STATE = web.AppKey("signaling_state", State)
