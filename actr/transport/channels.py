"""The data channels of one connection (DC-1): four labels, one per payload type.

``DataChannels`` adopts the channels either side opens (one per label from the peer,
unknown labels closed), opens a missing one on first send, fragments outbound
messages (DC-3) and waits while a channel holds more than the high-water mark
(DC-5). Small envelopes to a peer whose Hello lists ``batch`` sent on one channel in
one loop turn, after its first, share one message (X-BATCH-1, ``Batcher``). Inbound
frames from every channel go through one ``Reassembler`` (DC-4's bounds hold per
connection, F2) whose partial messages expire on a timer of their own, not only when
the next frame comes; batch frames are split and never reassembled.

The connection (``ChannelHost``, a ``Peer``) owns the lifecycle: it is told when a
channel opens (RPC_RELIABLE open makes it ready) and when RPC_RELIABLE is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from aiortc import RTCDataChannel, RTCPeerConnection

from actr.errors import ActrError, ConnectionNotReady, ResourceExhausted, Unavailable
from actr.framing import Fragmenter, FrameRejected, Reassembler, is_batch, split_batch
from actr.protocol.actr_pb2 import PayloadType
from actr.transport.batching import Batcher
from actr.transport.config import TransportConfig

__all__ = ["CHANNELS", "ChannelHost", "DataChannels"]

log = logging.getLogger(__name__)

# label -> (payload type, createDataChannel options), DC-1
CHANNELS: dict[str, tuple[int, dict[str, Any]]] = {
    "RPC_RELIABLE": (PayloadType.RPC_RELIABLE, {"ordered": True}),
    "RPC_SIGNAL": (PayloadType.RPC_SIGNAL, {"ordered": True}),
    "STREAM_RELIABLE": (PayloadType.STREAM_RELIABLE, {"ordered": True}),
    "STREAM_LATENCY_FIRST": (
        PayloadType.STREAM_LATENCY_FIRST,
        {"ordered": False, "maxRetransmits": 3},
    ),
}


class ChannelHost(Protocol):
    """The connection the channels belong to."""

    key: str
    pc: RTCPeerConnection
    ready: asyncio.Event
    closed: bool
    failure: ActrError | None
    features: frozenset[str]  # X-HELLO-1: what the peer's Hello listed

    def channel_opened(self) -> None:
        """A channel opened or was adopted: the connection may now be ready."""

    def channel_lost(self, err: ActrError) -> None:
        """RPC_RELIABLE closed: the connection is gone."""


H = TypeVar("H", bound=ChannelHost)


class DataChannels(Generic[H]):
    def __init__(
        self,
        host: H,
        config: TransportConfig,
        counters: Counter[str],
        on_message: Callable[[H, int, bytes], None],
    ) -> None:
        self._host = host
        self._config = config
        self._counters = counters
        self._on_message = on_message
        # One reassembler for every inbound channel: DC-4's bounds hold per connection.
        self.reassembler = Reassembler(
            max_message_size=config.max_message_size,
            max_partial=config.max_partial_messages,
            max_partial_bytes=config.max_partial_bytes,
            partial_ttl=config.partial_ttl,
        )
        self._expiry: asyncio.TimerHandle | None = None
        self._remote_labels: set[str] = set()
        # The channel this side sends on, per payload type.
        self.by_type: dict[int, RTCDataChannel] = {}
        self._fragmenters: dict[int, Fragmenter] = {}
        self._drained: dict[int, asyncio.Event] = {}
        self._batcher = Batcher(host.key, counters, self._fragmenters, config.max_message_size)

    # -- adopting ------------------------------------------------------------

    def open_all(self) -> None:
        for label, (_ptype, opts) in CHANNELS.items():
            self.adopt(self._host.pc.createDataChannel(label, **opts))

    def adopt_remote(self, channel: RTCDataChannel) -> None:
        # F2/F6: one channel per label from the peer; more would only multiply state.
        if channel.label in self._remote_labels:
            self._counters["duplicate_channel_label"] += 1
            log.warning("channel_duplicate_label peer=%s label=%r", self._host.key, channel.label)
            channel.close()
            return
        self._remote_labels.add(channel.label)
        self.adopt(channel)

    def adopt(self, channel: RTCDataChannel) -> None:
        spec = CHANNELS.get(channel.label)
        if spec is None:
            self._counters["unknown_channel_label"] += 1
            log.warning("channel_unknown_label peer=%s label=%r", self._host.key, channel.label)
            channel.close()
            return
        ptype = spec[0]
        # Frames are reassembled per channel: if both sides open the same label
        # lazily there are two channels of one type, and both are heard.
        channel.on("message", lambda data: self._on_frame(ptype, channel, data))
        channel.on("close", lambda: self._on_channel_close(ptype, channel))
        current = self.by_type.get(ptype)
        if current is not None and current.readyState in ("connecting", "open"):
            return  # we send on the one we had
        self.by_type[ptype] = channel
        self._fragmenters.setdefault(ptype, Fragmenter(self._config.max_message_size))
        drained = asyncio.Event()
        drained.set()
        self._drained[ptype] = drained
        channel.bufferedAmountLowThreshold = self._config.low_water
        channel.on("bufferedamountlow", drained.set)
        channel.on("open", self._host.channel_opened)
        self._host.channel_opened()

    def is_open(self, ptype: int) -> bool:
        channel = self.by_type.get(ptype)
        return channel is not None and channel.readyState == "open"

    def _on_channel_close(self, ptype: int, channel: RTCDataChannel) -> None:
        self.reassembler.forget_channel(channel)
        if self._host.closed or self.by_type.get(ptype) is not channel:
            return
        if ptype == PayloadType.RPC_RELIABLE:
            self._host.channel_lost(
                Unavailable(f"channel {PayloadType.Name(ptype)} to {self._host.key} closed")
            )
        else:
            del self.by_type[ptype]  # opened again on the next send

    async def _channel_for(self, ptype: int) -> RTCDataChannel:
        """The open channel of ``ptype``, opening it now if the peer has none yet."""
        host = self._host
        channel = self.by_type.get(ptype)
        if channel is None or channel.readyState in ("closing", "closed"):
            label = PayloadType.Name(ptype)
            if label not in CHANNELS or not host.ready.is_set():
                raise ConnectionNotReady(f"channel {label} to {host.key} not open")
            self.adopt(host.pc.createDataChannel(label, **CHANNELS[label][1]))
            channel = self.by_type[ptype]
        if channel.readyState != "open":
            opened = asyncio.Event()
            channel.on("open", opened.set)
            waiter = asyncio.ensure_future(opened.wait())
            try:
                await asyncio.wait({waiter}, timeout=self._config.connect_timeout)
            finally:
                waiter.cancel()
            if channel.readyState != "open":
                raise ConnectionNotReady(
                    f"channel {PayloadType.Name(ptype)} to {host.key} did not open"
                )
        return channel

    # -- data ----------------------------------------------------------------

    def _on_frame(self, ptype: int, channel: RTCDataChannel, data: bytes | str) -> None:
        if isinstance(data, str):
            self._counters["text_frame"] += 1
            return
        if is_batch(data):
            self._on_batch(ptype, data)
            return
        loop = asyncio.get_running_loop()
        try:
            message = self.reassembler.feed(data, loop.time(), channel)
        except FrameRejected as e:
            log.warning("frame_rejected peer=%s reason=%s", self._host.key, e)
            message = None
        self._count_rejects()
        if self._expiry is None and self.reassembler.partial_count:
            self._schedule_expiry()
        if message is not None:
            self._on_message(self._host, ptype, message)

    def _on_batch(self, ptype: int, data: bytes) -> None:
        # Understood from any peer, negotiated or not: it costs nothing to accept.
        try:
            envelopes = split_batch(data)
        except FrameRejected as e:
            self._counters["frame_" + e.reason] += 1
            log.warning("frame_rejected peer=%s reason=%s", self._host.key, e)
            return
        self._counters["batches_received"] += 1
        limit = self.reassembler.max_message_size
        for envelope in envelopes:
            if len(envelope) > limit:  # DC-4's bound, as for a message in a frame of its own
                self._counters["frame_message_too_large"] += 1
                continue
            self._on_message(self._host, ptype, envelope)

    def _count_rejects(self) -> None:
        rejects = self.reassembler.rejects
        if rejects:
            for reason, n in rejects.items():
                self._counters["frame_" + reason] += n
            rejects.clear()

    def _schedule_expiry(self) -> None:
        """Partials expire on time with no further traffic, not only when a frame comes."""
        when = self.reassembler.next_deadline()
        if when is None or self._host.closed:
            self._expiry = None
            return
        self._expiry = asyncio.get_running_loop().call_at(when + 0.01, self._expire_partials)

    def _expire_partials(self) -> None:
        self.reassembler.expire(asyncio.get_running_loop().time())
        self._count_rejects()
        self._schedule_expiry()

    async def send(self, ptype: int, data: bytes) -> None:
        host = self._host
        if host.closed:
            raise host.failure or Unavailable(f"connection to {host.key} closed")
        channel = self.by_type.get(ptype)
        if channel is None or channel.readyState != "open":
            channel = await self._channel_for(ptype)
        counters = self._counters
        high = self._config.high_water
        # X-BATCH-1: after the first of a turn on this channel, held to the end of
        # the turn with whatever else is sent on it; over the high-water mark, DC-5.
        batcher = self._batcher
        if (
            channel.bufferedAmount <= high
            and batcher.takes(ptype, len(data), host.features)
            and batcher.add(ptype, channel, data)
        ):
            counters["messages_sent"] += 1
            return
        # What is pending on this channel was sent first: it leaves first.
        batcher.flush(ptype)
        try:
            frames = self._fragmenters[ptype].fragment(data)
        except ValueError as e:
            raise ResourceExhausted(str(e)) from e
        counters["messages_sent"] += 1
        counters["frames_sent"] += len(frames)
        drained = self._drained[ptype]
        for frame in frames:
            # DC-5: wait while the channel holds more than the high-water mark.
            while channel.bufferedAmount > high:
                drained.clear()
                waiter = asyncio.ensure_future(drained.wait())
                await asyncio.wait({waiter}, timeout=1.0)
                waiter.cancel()
                if host.closed:
                    raise host.failure or Unavailable(f"connection to {host.key} closed")
            channel.send(frame)

    def close(self) -> None:
        """Sends what is batched, stops the expiry timer and lets go of partial messages."""
        self._batcher.close()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.reassembler = Reassembler(max_message_size=self.reassembler.max_message_size)
