"""Everything one server instance holds, reachable from a request as ``request.app[STATE]``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from signaling.admission import Admission
from signaling.cluster import Cluster
from signaling.config import Config
from signaling.credentials import CredentialAuthority
from signaling.dispatcher import Dispatcher
from signaling.hub import Hub
from signaling.limits import AttemptLimiter, ConnectionGate
from signaling.registry import Registry
from signaling.serials import SerialBook, SerialsLock, serial_file_for
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
    # SIG-9: connection and registration attempts per client address and prefix (F11).
    attempts: AttemptLimiter = field(init=False)
    # F5: open TCP connections per client address and prefix.
    gate: ConnectionGate = field(init=False)
    # ID-2 / F1: serials of a server without Redis, and the lock on their file.
    serials: SerialBook = field(init=False)
    serials_lock: SerialsLock | None = field(init=False, default=None)
    # F5: connections counted and timed before their HTTP is read.
    admission: Admission = field(init=False)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(
            self.registry,
            self.authority,
            self.stats,
            self.config.heartbeat_interval_secs,
            grace_secs=self.config.reconnect_grace_secs,
            node=self.node,
            limits=self.config.limits,
        )
        limits = self.config.limits
        self.hub = Hub(self.stats)
        self.attempts = AttemptLimiter(
            limits.connects_per_ip_per_sec,
            limits.connect_burst,
            limits.connects_per_prefix_per_sec,
            limits.connect_prefix_burst,
        )
        self.gate = ConnectionGate(limits.max_connections_per_ip, limits.max_connections_per_prefix)
        self.admission = Admission(self.gate, self.stats, limits.header_timeout_secs)
        # With Redis the cluster hands out serials; no file is written then.
        key_file = self.config.signing_key_file if self.config.redis_url is None else None
        serial_file = serial_file_for(key_file)
        if serial_file is not None:
            self.serials_lock = SerialsLock.acquire(serial_file)
        try:
            self.serials = SerialBook(serial_file, self.clock())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Let go of what outlives requests: the serial file's lock."""
        if self.serials_lock is not None:
            self.serials_lock.release()


STATE = web.AppKey("signaling_state", State)
