"""Everything one server instance holds, reachable from a request as ``request.app[STATE]``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from signaling.config import Config
from signaling.credentials import CredentialAuthority
from signaling.dispatcher import Dispatcher
from signaling.hub import Hub
from signaling.registry import Registry
from signaling.stats import Stats

__all__ = ["STATE", "State"]


@dataclass(slots=True)
class State:
    config: Config
    authority: CredentialAuthority
    registry: Registry = field(default_factory=Registry)
    stats: Stats = field(default_factory=Stats)
    # Wall-clock seconds; credentials carry unix times, so this is time.time, not monotonic.
    clock: Callable[[], float] = time.time
    dispatcher: Dispatcher = field(init=False)
    hub: Hub = field(init=False)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(
            self.registry, self.authority, self.stats, self.config.heartbeat_interval_secs
        )
        self.hub = Hub(self.stats)


STATE = web.AppKey("signaling_state", State)
