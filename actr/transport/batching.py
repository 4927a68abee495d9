"""X-BATCH-1, sending side: small envelopes sent on one channel in one turn of the
event loop leave as one data-channel message.

aiortc spends ~80 µs of CPU per SCTP packet on each side and gives every message
packets of its own, so 64 requests of ~150 bytes cost 64 packets one by one and
~9 packed together. Only peers whose Hello lists ``batch`` get batch frames;
``DataChannels`` decides per send (``takes``, ``add``) and keeps order on the
channel by flushing what is pending here before anything it sends itself.

The first envelope of a turn on a channel is not held (``add`` says so and the
caller sends it as it always did): a lone request or answer waits for nothing.
Holding it too cost sequential calls ~0.4 ms of p50 between two processes here
(an extra loop turn on each side, and on the callee the answer's packet went out
after the ack commit scheduled in the same turn).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from aiortc import RTCDataChannel

from actr.framing import BATCH_ENTRY_SIZE, MAX_BATCH_ENTRIES, Fragmenter, pack_batch
from actr.hello import BATCH
from actr.protocol.actr_pb2 import PayloadType

__all__ = ["BATCHABLE", "MAX_BATCHED_ENVELOPE", "MAX_PENDING_BYTES", "Batcher"]

log = logging.getLogger(__name__)

# Reliable ordered channels only: stream channels carry large chunks, and a lost
# batch on STREAM_LATENCY_FIRST would lose every chunk in it.
BATCHABLE = frozenset({PayloadType.RPC_RELIABLE, PayloadType.RPC_SIGNAL})
# Larger envelopes gain little (the per-byte cost dominates) and go as they are.
MAX_BATCHED_ENVELOPE = 4 * 1024
# Envelope bytes (with their length prefixes) held per channel before a flush:
# past ~16 KiB aiortc's cost is per byte, and a bigger batch only adds latency.
MAX_PENDING_BYTES = 16 * 1024


@dataclass
class _Pending:
    channel: RTCDataChannel
    envelopes: list[bytes] = field(default_factory=list)
    size: int = 0  # entry bytes, length prefixes included


class Batcher:
    """The envelopes waiting for the end of this loop turn, per payload type."""

    def __init__(
        self,
        key: str,
        counters: Counter[str],
        fragmenters: dict[int, Fragmenter],
        max_message_size: int,
    ) -> None:
        self._key = key
        # A message over the configured limit is refused by the fragmenter, never batched.
        self._max_envelope = min(MAX_BATCHED_ENVELOPE, max_message_size)
        self._counters = counters
        # DataChannels' own: a lone envelope leaves as the DC-3 frame it always was.
        self._fragmenters = fragmenters
        self._pending: dict[int, _Pending] = {}
        # Channels that sent an envelope in this turn: the next ones wait for its end.
        self._busy: set[int] = set()
        self._flush_handle: asyncio.Handle | None = None

    def takes(self, ptype: int, size: int, features: frozenset[str]) -> bool:
        """Whether an envelope of ``size`` bytes to a peer with ``features`` is batched."""
        return size <= self._max_envelope and ptype in BATCHABLE and BATCH in features

    def add(self, ptype: int, channel: RTCDataChannel, data: bytes) -> bool:
        """Holds ``data`` for ``channel`` until the end of this loop turn; False for
        the first envelope of the turn on the channel, which the caller sends now."""
        if ptype not in self._busy:
            self._busy.add(ptype)
            self._schedule()
            return False
        pending = self._pending.get(ptype)
        entry = BATCH_ENTRY_SIZE + len(data)
        if pending is not None and (
            pending.channel is not channel
            or pending.size + entry > MAX_PENDING_BYTES
            or len(pending.envelopes) >= MAX_BATCH_ENTRIES
        ):
            self.flush(ptype)
            pending = None
        if pending is None:
            pending = self._pending[ptype] = _Pending(channel)
        pending.envelopes.append(data)
        pending.size += entry
        return True

    def _schedule(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush_all)

    def flush(self, ptype: int) -> None:
        """Sends what is pending for ``ptype`` now; a failure is counted, never raised
        (its envelopes' callers fail through the connection's loss or their deadlines)."""
        pending = self._pending.pop(ptype, None)
        if pending is None:
            return
        envelopes = pending.envelopes
        try:
            if len(envelopes) == 1:
                (frame,) = self._fragmenters[ptype].fragment(envelopes[0])
            else:
                frame = pack_batch(envelopes)
            pending.channel.send(frame)
        except Exception as e:  # runs from the loop: nothing may escape
            self._counters["batch_send_failed"] += 1
            log.warning(
                "batch_send_failed peer=%s envelopes=%d error=%r", self._key, len(envelopes), e
            )
            return
        counters = self._counters
        counters["frames_sent"] += 1
        if len(envelopes) > 1:
            counters["batches_sent"] += 1
            counters["envelopes_batched"] += len(envelopes)

    def flush_all(self) -> None:
        """The end of the turn: what is held leaves, and the next envelope goes at once."""
        self._flush_handle = None
        self._busy.clear()
        for ptype in list(self._pending):
            self.flush(ptype)

    def close(self) -> None:
        """Sends what is pending (best effort) and stops the scheduled flush."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.flush_all()
