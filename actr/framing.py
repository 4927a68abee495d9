"""Data-channel fragmentation (PROTOCOL.md DC-3), bounded reassembly (DC-4) and
batch frames (our X-BATCH-1).

Sans-IO: ``Fragmenter.fragment`` turns one encoded envelope into frames,
``Reassembler.feed`` takes frames (and the time) and hands back whole
messages, ``pack_batch``/``split_batch`` put several whole envelopes in one
frame and take them out. Nothing here knows about sockets or asyncio; a
Fragmenter serves one direction of one channel, a Reassembler every inbound
channel of a connection.
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
# X-BATCH-1: a header of zeros. total_frags = 0 is invalid under DC-3, so a batch
# can never be taken for a fragment (a DC-3 receiver rejects it as zero_total).
BATCH_HEADER = HEADER.pack(0, 0, 0)
BATCH_ENTRY = struct.Struct(">I")  # each envelope's length
BATCH_ENTRY_SIZE = BATCH_ENTRY.size  # 4
# Bounds the work one frame can cause; a 16 KiB batch of real envelopes has ~100.
MAX_BATCH_ENTRIES = 512


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


def is_batch(frame: bytes) -> bool:
    """Whether ``frame`` is a batch frame (X-BATCH-1) rather than a DC-3 fragment."""
    return frame[:HEADER_SIZE] == BATCH_HEADER


def pack_batch(envelopes: list[bytes]) -> bytes:
    """One batch frame carrying ``envelopes`` in order; ValueError if they do not fit."""
    if not envelopes or len(envelopes) > MAX_BATCH_ENTRIES:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_ENTRIES} envelopes, not {len(envelopes)}")
    parts = [BATCH_HEADER]
    for envelope in envelopes:
        parts.append(BATCH_ENTRY.pack(len(envelope)))
        parts.append(envelope)
    frame = b"".join(parts)
    if len(frame) > MAX_FRAME:
        raise ValueError(f"batch of {len(frame)} bytes over one frame ({MAX_FRAME})")
    return frame


def split_batch(frame: bytes) -> list[bytes]:
    """The envelopes of a batch frame, in order; ``FrameRejected("batch_malformed")``
    for anything but a whole, well-formed batch (the frame is then dropped whole)."""
    if not is_batch(frame):
        raise FrameRejected("batch_malformed", "not a batch header")
    end = len(frame)
    if end > MAX_FRAME:
        raise FrameRejected("batch_malformed", f"{end} bytes")
    envelopes: list[bytes] = []
    pos = HEADER_SIZE
    while pos < end:
        if len(envelopes) == MAX_BATCH_ENTRIES:
            raise FrameRejected("batch_malformed", f"more than {MAX_BATCH_ENTRIES} entries")
        if end - pos < BATCH_ENTRY_SIZE:
            raise FrameRejected("batch_malformed", f"truncated length at byte {pos}")
        (size,) = BATCH_ENTRY.unpack_from(frame, pos)
        pos += BATCH_ENTRY_SIZE
        if size > end - pos:
            raise FrameRejected("batch_malformed", f"entry of {size} bytes at byte {pos} overruns")
        envelopes.append(frame[pos : pos + size])
        pos += size
    if not envelopes:
        raise FrameRejected("batch_malformed", "no entries")
    return envelopes


@dataclass
class _Partial:
    total: int
    started: float
    # Filled in as fragments come: never sized by the claimed total, which a
    # hostile sender picks (a 9-byte frame may claim 65,535 fragments).
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


@dataclass
class Reassembler:
    """Reassembles the frames of one connection by ``(channel, msg_id)`` within DC-4 bounds.

    One instance serves every channel of a connection, so its bounds hold per
    connection however many channels a peer opens: at most ``max_partial``
    partial messages and ``max_partial_bytes`` bytes held in them. A new partial
    past either bound evicts the oldest; partials older than ``partial_ttl``
    are dropped by ``expire(now)``, which the owner calls at ``next_deadline()``
    (and ``feed`` calls too).

    ``feed`` returns a whole message, or None while one is incomplete, and
    raises ``FrameRejected`` when a frame breaks a bound (that message is
    dropped and the reason counted in ``rejects``).
    """

    max_message_size: int = DEFAULT_MAX_MESSAGE
    max_partial: int = 16
    partial_ttl: float = 30.0
    # Defaults to max_message_size: one largest message in flight at a time.
    max_partial_bytes: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    _partials: dict[tuple[object, int], _Partial] = field(default_factory=dict)
    _bytes: int = 0

    def __post_init__(self) -> None:
        if self.max_partial_bytes <= 0:
            self.max_partial_bytes = self.max_message_size
        self.max_partial_bytes = max(self.max_partial_bytes, self.max_message_size)

    def feed(self, frame: bytes, now: float, channel: object = 0) -> bytes | None:
        if len(frame) < HEADER_SIZE:
            raise self._reject("short_frame", f"{len(frame)} bytes")
        if len(frame) > MAX_FRAME:
            raise self._reject("frame_too_large", f"{len(frame)} bytes")
        msg_id, index, total = HEADER.unpack_from(frame)
        key = (channel, msg_id)
        if total == 0:
            raise self._reject("zero_total", f"msg {msg_id}", key)
        if index >= total:
            raise self._reject("index_out_of_range", f"msg {msg_id} {index}/{total}", key)
        payload = frame[HEADER_SIZE:]
        # A partial past its TTL is gone even if a late fragment of it arrives now.
        self._expire(now)
        if total == 1:
            if key in self._partials:
                # A partial message under this msg_id was announced with another total.
                raise self._reject("conflicting_total", f"msg {msg_id}", key)
            if len(payload) > self.max_message_size:
                raise self._reject("message_too_large", f"msg {msg_id}")
            return payload
        partial = self._partials.get(key)
        if partial is None:
            if len(self._partials) >= self.max_partial:
                # The oldest partial gives way: a stuck sender cannot block new messages.
                self._evict_oldest()
            partial = _Partial(total=total, started=now)
            self._partials[key] = partial
        elif partial.total != total:
            raise self._reject("conflicting_total", f"msg {msg_id}", key)
        if index in partial.parts:
            raise self._reject("duplicate_fragment", f"msg {msg_id} index {index}", key)
        if partial.size + len(payload) > self.max_message_size:
            raise self._reject("message_too_large", f"msg {msg_id}", key)
        while self._bytes + len(payload) > self.max_partial_bytes and len(self._partials) > 1:
            self._evict_oldest(keep=key)
        partial.parts[index] = payload
        partial.size += len(payload)
        self._bytes += len(payload)
        if len(partial.parts) < total:
            return None
        self._drop(key)
        return b"".join(partial.parts[i] for i in range(total))

    def expire(self, now: float) -> int:
        """Drops partial messages older than the TTL; returns how many."""
        return self._expire(now)

    def next_deadline(self) -> float | None:
        """When the oldest partial runs out of time, or None when there is none."""
        if not self._partials:
            return None
        return min(p.started for p in self._partials.values()) + self.partial_ttl

    def forget_channel(self, channel: object) -> None:
        """The channel closed: its partials can never complete."""
        for key in [k for k in self._partials if k[0] == channel]:
            self._drop(key)

    @property
    def partial_count(self) -> int:
        return len(self._partials)

    @property
    def partial_bytes(self) -> int:
        return self._bytes

    def _drop(self, key: tuple[object, int]) -> None:
        partial = self._partials.pop(key, None)
        if partial is not None:
            self._bytes -= partial.size

    def _evict_oldest(self, keep: tuple[object, int] | None = None) -> None:
        candidates = [k for k in self._partials if k != keep]
        if not candidates:
            return
        oldest = min(candidates, key=lambda k: self._partials[k].started)
        self._drop(oldest)
        self.rejects["partial_evicted"] += 1

    def _expire(self, now: float) -> int:
        stale = [k for k, p in self._partials.items() if now - p.started > self.partial_ttl]
        for k in stale:
            self._drop(k)
        if stale:
            self.rejects["partial_expired"] += len(stale)
        return len(stale)

    def _reject(
        self, reason: str, detail: str, drop: tuple[object, int] | None = None
    ) -> FrameRejected:
        if drop is not None:
            self._drop(drop)
        self.rejects[reason] += 1
        return FrameRejected(reason, detail)
