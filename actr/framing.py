"""Data-channel fragmentation (PROTOCOL.md DC-3) and bounded reassembly (DC-4).

Sans-IO: ``Fragmenter.fragment`` turns one encoded envelope into frames,
``Reassembler.feed`` takes frames (and the time) and hands back whole
messages. Nothing here knows about channels or asyncio; one instance of each
serves one direction of one channel.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

HEADER = struct.Struct(">IHH")  # msg_id, frag_index, total_frags
HEADER_SIZE = HEADER.size  # 8
MAX_FRAME = 65_535
MAX_FRAGMENT_PAYLOAD = MAX_FRAME - HEADER_SIZE  # 65,527
MAX_FRAGMENTS = 0xFFFF
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024


class FrameRejected(Exception):
    """A frame broke a bound; ``reason`` is the counter name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Fragmenter:
    """Splits messages into DC-3 frames; msg_id counts up per instance."""

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE) -> None:
        self._next_id = 0
        self.max_message_size = min(max_message_size, MAX_FRAGMENT_PAYLOAD * MAX_FRAGMENTS)

    def fragment(self, data: bytes) -> list[bytes]:
        size = len(data)
        if size > self.max_message_size:
            raise ValueError(f"message of {size} bytes over the limit of {self.max_message_size}")
        msg_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        total = max(1, -(-size // MAX_FRAGMENT_PAYLOAD))
        view = memoryview(data)
        return [
            HEADER.pack(msg_id, i, total)
            + bytes(view[i * MAX_FRAGMENT_PAYLOAD : (i + 1) * MAX_FRAGMENT_PAYLOAD])
            for i in range(total)
        ]


@dataclass
class _Partial:
    total: int
    started: float
    parts: list[bytes | None]
    received: int = 0
    size: int = 0


@dataclass
class Reassembler:
    """Reassembles frames by msg_id within DC-4 bounds.

    ``feed`` returns a whole message, or None while one is incomplete, and
    raises ``FrameRejected`` when a frame breaks a bound (that message is
    dropped and the reason counted in ``rejects``).
    """

    max_message_size: int = DEFAULT_MAX_MESSAGE
    max_partial: int = 16
    partial_ttl: float = 30.0
    rejects: Counter[str] = field(default_factory=Counter)
    _partials: dict[int, _Partial] = field(default_factory=dict)

    def feed(self, frame: bytes, now: float) -> bytes | None:
        if len(frame) < HEADER_SIZE:
            raise self._reject("short_frame", f"{len(frame)} bytes")
        if len(frame) > MAX_FRAME:
            raise self._reject("frame_too_large", f"{len(frame)} bytes")
        msg_id, index, total = HEADER.unpack_from(frame)
        if total == 0:
            raise self._reject("zero_total", f"msg {msg_id}", msg_id)
        if index >= total:
            raise self._reject("index_out_of_range", f"msg {msg_id} {index}/{total}", msg_id)
        payload = frame[HEADER_SIZE:]
        # A partial past its TTL is gone even if a late fragment of it arrives now.
        self._expire(now)
        if total == 1:
            if msg_id in self._partials:
                # A partial message under this msg_id was announced with another total.
                raise self._reject("conflicting_total", f"msg {msg_id}", msg_id)
            if len(payload) > self.max_message_size:
                raise self._reject("message_too_large", f"msg {msg_id}")
            return payload
        partial = self._partials.get(msg_id)
        if partial is None:
            if len(self._partials) >= self.max_partial:
                # The oldest partial gives way: a stuck sender cannot block new messages.
                oldest = min(self._partials, key=lambda k: self._partials[k].started)
                del self._partials[oldest]
                self.rejects["partial_evicted"] += 1
            partial = _Partial(total=total, started=now, parts=[None] * total)
            self._partials[msg_id] = partial
        elif partial.total != total:
            raise self._reject("conflicting_total", f"msg {msg_id}", msg_id)
        if partial.parts[index] is not None:
            raise self._reject("duplicate_fragment", f"msg {msg_id} index {index}", msg_id)
        partial.size += len(payload)
        if partial.size > self.max_message_size:
            raise self._reject("message_too_large", f"msg {msg_id}", msg_id)
        partial.parts[index] = payload
        partial.received += 1
        if partial.received < total:
            return None
        del self._partials[msg_id]
        return b"".join(p for p in partial.parts if p is not None)

    def expire(self, now: float) -> int:
        """Drops partial messages older than the TTL; returns how many."""
        return self._expire(now)

    @property
    def partial_count(self) -> int:
        return len(self._partials)

    def _expire(self, now: float) -> int:
        stale = [k for k, p in self._partials.items() if now - p.started > self.partial_ttl]
        for k in stale:
            del self._partials[k]
        if stale:
            self.rejects["partial_expired"] += len(stale)
        return len(stale)

    def _reject(self, reason: str, detail: str, drop_id: int | None = None) -> FrameRejected:
        if drop_id is not None:
            self._partials.pop(drop_id, None)
        self.rejects[reason] += 1
        return FrameRejected(reason, detail)
