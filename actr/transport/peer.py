"""One peer connection to one remote actor: its RTCPeerConnection and its state.

A ``Peer`` is set up (negotiation.py), becomes ready when its RPC_RELIABLE
channel opens, and fails once: on ICE/DTLS failure, on losing RPC_RELIABLE, or
when not ready within ``connect_timeout`` (F6: a half-open connection is given
up and its sockets reclaimed). It reports these through ``PeerHooks`` and knows
nothing of the connection table; its data goes through ``DataChannels``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection

from actr.errors import ActrError, ConnectionNotReady, Unavailable
from actr.identity import id_text
from actr.protocol.actr_pb2 import ActrId, PayloadType
from actr.transport.channels import DataChannels
from actr.transport.config import TransportConfig
from actr.transport.ice import selected_pair

__all__ = ["MessageHandler", "Peer", "PeerHandler", "PeerHooks"]

log = logging.getLogger(__name__)

MessageHandler = Callable[["Peer", int, bytes], None]
PeerHandler = Callable[["Peer"], None]


@dataclass(frozen=True, slots=True)
class PeerHooks:
    """Where a peer reports; one set shared by every peer of a transport."""

    on_message: MessageHandler
    on_ready: PeerHandler | None
    on_failed: Callable[[Peer, ActrError], None]


class Peer:
    """One peer connection to one remote actor."""

    def __init__(
        self,
        remote: ActrId,
        config: TransportConfig,
        rtc_config: RTCConfiguration,
        counters: Counter[str],
        hooks: PeerHooks,
    ) -> None:
        self.remote = remote
        self.key = id_text(remote)
        self._counters = counters
        self._hooks = hooks
        self.pc = RTCPeerConnection(rtc_config)
        self.data = DataChannels(self, config, counters, hooks.on_message)
        self.ready = asyncio.Event()
        self.settled = asyncio.Event()  # ready, or failed: what a connecting caller waits on
        self.closed = False
        # This side asked for the connection (connect): its offer or answer is awaited.
        self.asked = False
        self.failure: ActrError | None = None
        self.exchange_id = 0
        # X-HELLO-1: what the peer speaks; base (nothing) until its Hello arrives.
        self.features: frozenset[str] = frozenset()
        self.stream_window = 0
        self.hello = asyncio.Event()
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("datachannel", self.data.adopt_remote)
        # F6: a connection not up within the connect timeout is given up and reclaimed.
        self._setup_timer = asyncio.get_running_loop().call_later(
            config.connect_timeout, self._setup_expired
        )

    @property
    def channels(self) -> dict[int, RTCDataChannel]:
        """The channel this side sends on, per payload type."""
        return self.data.by_type

    def open_channels(self) -> None:
        """The offerer opens every DC-1 channel up front."""
        self.data.open_all()

    def _adopt_channel(self, channel: RTCDataChannel) -> None:
        self.data.adopt(channel)

    def send(self, ptype: int, data: bytes) -> Coroutine[Any, Any, None]:
        """Sends one message on the channel of ``ptype`` (await it)."""
        # The channels' coroutine itself: no second await on the call path.
        return self.data.send(ptype, data)

    def got_hello(self, features: frozenset[str], window: int) -> None:
        """Records the peer's Hello (X-HELLO-1); a later one replaces it."""
        self.features = features
        self.stream_window = window
        self.hello.set()

    def selected_pair(self) -> tuple[str, str] | None:
        """Types of the nominated ICE candidate pair (host, srflx, relay), if any."""
        return selected_pair(self.pc)

    # -- lifecycle -----------------------------------------------------------

    def _setup_expired(self) -> None:
        if not self.ready.is_set() and not self.closed:
            self._counters["setup_timed_out"] += 1
            self._hooks.on_failed(
                self, ConnectionNotReady(f"connection to {self.key} not set up in time")
            )

    def channel_opened(self) -> None:
        # RPC_RELIABLE is what a connection needs; the other channels may open later,
        # from either side (DC-1; actr's offerer opens only this one up front).
        if self.ready.is_set() or not self.data.is_open(PayloadType.RPC_RELIABLE):
            return
        log.info("peer_ready peer=%s", self.key)
        self._setup_timer.cancel()
        self.ready.set()
        self.settled.set()
        if self._hooks.on_ready is not None:
            self._hooks.on_ready(self)

    def channel_lost(self, err: ActrError) -> None:
        self._hooks.on_failed(self, err)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        log.debug("peer_state peer=%s state=%s", self.key, state)
        if state in ("failed", "closed"):
            self._hooks.on_failed(self, Unavailable(f"connection to {self.key} {state}"))

    def fail(self, err: ActrError) -> None:
        """Marks the connection failed with ``err``; ``close`` releases it."""
        self.closed = True
        self.failure = err
        self.settled.set()

    async def close(self) -> None:
        self.closed = True
        self._setup_timer.cancel()
        self.data.close()
        with contextlib.suppress(Exception):
            await self.pc.close()
