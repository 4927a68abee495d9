"""One inbound stream's state, sans-IO: what waits for its turn, what was released
for its reader, and its credit (X-STR-3). ``actr.stream_core`` applies the rules
to it; nothing here counts drops or builds frames.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from dataclasses import dataclass, field

from actr.errors import ResourceExhausted
from actr.protocol.actr_pb2 import DataStream
from actr.stream_credit import Control, Gap, OutStream

__all__ = ["Effects", "IdleTimers", "Item", "Slots", "Stream", "StreamLimit", "StreamOverflow"]

Item = DataStream | Gap  # what a reader takes


class StreamOverflow(Exception):
    """A buffer of the stream overflowed; the stream is broken."""


class StreamLimit(ResourceExhausted):
    """A stream not registered: its sender, or all senders, have as many inbound
    streams as the caps allow (refuse its call RESOURCE_EXHAUSTED)."""


@dataclass(eq=False)
class Stream:
    """One registered stream: what was released for its reader, and what waits."""

    stream_id: str
    sender: str
    max_reorder: int
    max_buffered_bytes: int
    last_active: float  # the last chunk accepted or taken
    latency_first: bool = False
    # The sender reads control frames (its Hello lists stream-credit): it is reset
    # when the stream ends early on this side.
    peer_speaks: bool = False
    window: int = 0  # the credit granted past what the reader took (credit only)
    next_sequence: int = 0
    registered: bool = True  # False: no chunk will come any more
    error: Exception | None = None  # why it broke (raised to its reader after the rest)
    reader: object = None  # the asyncio layer's, never touched here
    # Credit (X-STR-3): bytes accepted, bytes taken by the reader, the limit last
    # granted, and what was taken when it was granted.
    received: int = 0
    consumed: int = 0
    credit_limit: int = 0
    granted_at: int = 0
    # Latency-first (X-STR-7): since when a later chunk waits behind a gap.
    gap_since: float | None = None
    lost: int = 0  # chunks its reader will never get (gaps skipped or dropped)
    _held: dict[int, tuple[DataStream, float]] = field(default_factory=dict)
    _released: deque[Item] = field(default_factory=deque)
    _end_at: int | None = None
    held_bytes: int = 0
    released_bytes: int = 0
    slot: bool = False  # counted against the caps (``Slots``)

    @property
    def key(self) -> tuple[str, str]:
        return (self.sender, self.stream_id)

    @property
    def credit(self) -> bool:
        """Credit applies: the sender speaks it and the stream is reliable."""
        return self.peer_speaks and not self.latency_first

    @property
    def held(self) -> int:
        """Chunks waiting in the reorder buffer."""
        return len(self._held)

    @property
    def unread(self) -> int:
        """Items released and not yet taken by the reader."""
        return len(self._released)

    @property
    def buffered_bytes(self) -> int:
        return self.held_bytes + self.released_bytes

    def hold(self, chunk: DataStream, now: float) -> None:
        self._held[chunk.sequence] = (chunk, now)
        self.held_bytes += len(chunk.payload)

    def unhold(self, seq: int) -> DataStream:
        chunk = self._held.pop(seq)[0]
        self.held_bytes -= len(chunk.payload)
        return chunk

    def drop_held_after(self, seq: int) -> list[DataStream]:
        return [self.unhold(s) for s in [s for s in self._held if s > seq]]

    def push(self, item: Item) -> None:
        """Appends to what the reader takes; adjacent gaps merge into one."""
        released = self._released
        if isinstance(item, Gap):
            if released and isinstance(last := released[-1], Gap) and last.last + 1 == item.first:
                released[-1] = Gap(last.first, item.last)
                return
        else:
            self.released_bytes += len(item.payload)
        released.append(item)

    def pop(self) -> Item | None:
        if not self._released:
            return None
        item = self._released.popleft()
        if isinstance(item, DataStream):
            self.released_bytes -= len(item.payload)
        return item

    def drop_oldest(self, max_items: int, max_bytes: int) -> int:
        """A reader that fell behind (latency-first) loses its oldest chunks until
        ``max_items`` and ``max_bytes`` hold; they become one gap at the front.
        Returns the number of chunks dropped."""
        released = self._released
        first = last = -1
        dropped = 0
        while released and (len(released) >= max_items or self.released_bytes > max_bytes):
            item = released.popleft()
            if isinstance(item, Gap):
                lo, hi = item.first, item.last
            else:
                self.released_bytes -= len(item.payload)
                lo = hi = item.sequence
                dropped += 1
            first = lo if first < 0 else first
            last = hi
        if first >= 0:
            if released and isinstance(nxt := released[0], Gap) and nxt.first == last + 1:
                released[0] = Gap(first, nxt.last)
            else:
                released.appendleft(Gap(first, last))
        return dropped

    def clear(self, *, released: bool) -> None:
        """Frees what waits (and, if ``released``, what the reader has not taken)."""
        self._held.clear()
        self.held_bytes = 0
        self.gap_since = None
        if released:
            self._released.clear()
            self.released_bytes = 0


class Slots:
    """The caps on inbound streams: ``per_sender`` and ``total``. A stream holds its
    slot from its registration until it is over *and* its reader took (or freed,
    by closing it) what was released: an ended stream's unread chunks are memory
    too (X-STR-3 bounds one stream; this bounds how many)."""

    def __init__(self, per_sender: int, total: int) -> None:
        self.per_sender = per_sender
        self.total = total
        self.used = 0
        self._by_sender: Counter[str] = Counter()

    def take(self, stream: Stream) -> None:
        """Counts ``stream``; StreamLimit past a cap."""
        sender = stream.sender
        if self._by_sender[sender] >= self.per_sender:
            raise StreamLimit(f"{sender} has {self.per_sender} streams open")
        if self.used >= self.total:
            raise StreamLimit(f"{self.total} streams open")
        self._by_sender[sender] += 1
        self.used += 1
        stream.slot = True

    def settle(self, stream: Stream) -> None:
        """Frees ``stream``'s slot once it is over and holds nothing unread."""
        if stream.slot and not stream.registered and not stream.unread:
            stream.slot = False
            self.used -= 1
            self._by_sender[stream.sender] -= 1
            if not self._by_sender[stream.sender]:
                del self._by_sender[stream.sender]


@dataclass(slots=True)
class Effects:
    """What an event asks of the asyncio layer."""

    wake: list[Stream] = field(default_factory=list)  # readers with news
    senders: list[OutStream] = field(default_factory=list)  # sending ends with news
    send: list[Control] = field(default_factory=list)  # control frames to send
    deadline: float | None = None  # a deadline this event added (re-arm the timer)
    expired: int = 0  # streams ended idle


class IdleTimers:
    """When each open stream goes idle (``idle_timeout`` after its last activity).

    Entries are (deadline, tie, stream): a deadline may be early (activity since),
    never late; ``due`` pushes an early one again with the true deadline."""

    def __init__(self, idle_timeout: float | None) -> None:
        self.idle_timeout = idle_timeout  # None: streams never expire
        self._heap: list[tuple[float, int, Stream]] = []
        self._tie = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, stream: Stream, now: float, open_streams: int) -> None:
        if self.idle_timeout is None:
            return
        if len(self._heap) > 2 * open_streams + 64:
            # Mostly streams gone already: keep the heap the size of the table.
            self._heap = [d for d in self._heap if d[2].registered]
            heapq.heapify(self._heap)
        heapq.heappush(self._heap, (now + self.idle_timeout, next(self._tie), stream))

    def due(self, now: float) -> list[Stream]:
        """The open streams idle for ``idle_timeout`` at ``now``."""
        ttl = self.idle_timeout
        heap = self._heap
        out: list[Stream] = []
        while ttl is not None and heap and heap[0][0] <= now:
            _, _, stream = heapq.heappop(heap)
            if not stream.registered:
                continue
            due = stream.last_active + ttl
            if due > now:
                heapq.heappush(heap, (due, next(self._tie), stream))
                continue
            out.append(stream)
        return out

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and not heap[0][2].registered:
            heapq.heappop(heap)
        return heap[0][0] if heap else None
