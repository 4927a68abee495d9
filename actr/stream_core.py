"""Inbound data streams, sans-IO: (sender, stream_id) -> the state of one stream.

Events in (a chunk from a sender, a sender refused or gone, a reader taking a
chunk or closing, the time), state and counters out. No asyncio here, and time
is an argument (the runtime passes its loop time), so every rule is tested
without a loop or a sleep. ``actr.streams`` is the asyncio layer: it wakes the
reader of each ``Stream`` a call here returns.

The rules (PROTOCOL.md 2, DataStream; F7):
- a stream is the receiver's registration of one stream_id *from one sender*
  (an ActrId's text form); the same stream_id from anyone else is another stream,
  and its chunks are dropped unless that one is registered too
  (``chunk_from_other_sender``, else ``unregistered_stream``);
- chunks are released in sequence order; one that comes early waits in a reorder
  buffer of at most ``max_reorder`` chunks (past it: ``reorder_overflow``);
- a stream holds at most ``max_buffered_bytes`` of payload, waiting in the reorder
  buffer or released and not yet taken by its reader (past it: ``buffer_overflow``);
  an overflow breaks the stream (StreamOverflow), since a reliable stream missing
  a chunk is no stream;
- ``end_of_stream`` at sequence n ends the stream once 0..n were released; later
  sequences are dropped (``chunk_after_end``), repeats too (``duplicate_chunk``);
- a stream with no activity (no chunk accepted, nothing taken by its reader) for
  ``idle_timeout`` is ended with TimedOut by ``expire(now)`` and what it held is
  freed (``stream_expired`` counts streams): a reader that never reads, or a
  sender gone quiet, holds nothing for ever. ``next_deadline()`` says when to call;
- a stream leaves the table when it ends, breaks, expires, its sender fails
  (``fail_sender``) or its reader closes it; the reader still takes what was
  released before an end or a break.
Every chunk dropped is counted by reason in ``drops`` (and logged, the first and
every LOG_EVERY-th of each reason).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter, deque
from dataclasses import dataclass, field

from actr.errors import TimedOut
from actr.protocol.actr_pb2 import DataStream

__all__ = ["LOG_EVERY", "Stream", "StreamCore", "StreamOverflow"]

log = logging.getLogger(__name__)

# A flood of bad chunks must not flood the log: the first drop of each reason is
# logged, then every LOG_EVERY-th; the counters have them all.
LOG_EVERY = 1000


class StreamOverflow(Exception):
    """A buffer of the stream overflowed; the stream is broken."""


@dataclass(eq=False)
class Stream:
    """One registered stream: what was released for its reader, and what waits."""

    stream_id: str
    sender: str
    max_reorder: int
    max_buffered_bytes: int
    last_active: float  # the last chunk accepted or taken
    next_sequence: int = 0
    registered: bool = True  # False: no chunk will come any more
    error: Exception | None = None  # why it broke (raised to its reader after the rest)
    reader: object = None  # the asyncio layer's, never touched here
    _held: dict[int, DataStream] = field(default_factory=dict)
    _released: deque[DataStream] = field(default_factory=deque)
    _end_at: int | None = None
    held_bytes: int = 0
    released_bytes: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.sender, self.stream_id)

    @property
    def held(self) -> int:
        """Chunks waiting in the reorder buffer."""
        return len(self._held)

    @property
    def buffered_bytes(self) -> int:
        return self.held_bytes + self.released_bytes

    def take(self, now: float) -> DataStream | None:
        """The next chunk in order, or None when nothing is released (then, if
        ``registered`` is False, the stream is over: ended, or ``error``)."""
        if not self._released:
            return None
        chunk = self._released.popleft()
        self.released_bytes -= len(chunk.payload)
        self.last_active = now
        return chunk


class StreamCore:
    def __init__(
        self,
        *,
        max_reorder: int = 1024,
        max_buffered_bytes: int = 16 * 1024 * 1024,
        idle_timeout: float | None = 300.0,
    ) -> None:
        self.max_reorder = max_reorder
        self.max_buffered_bytes = max_buffered_bytes
        self.idle_timeout = idle_timeout  # None: streams never expire
        self.drops: Counter[str] = Counter()
        self._table: dict[tuple[str, str], Stream] = {}
        # stream_id -> how many senders it is registered for (to name a drop's reason).
        self._ids: Counter[str] = Counter()
        # (deadline, tie, stream): a deadline may be early (activity since), never
        # late; ``expire`` pushes an early one again with the true deadline.
        self._deadlines: list[tuple[float, int, Stream]] = []
        self._tie = itertools.count()

    def __len__(self) -> int:
        return len(self._table)

    def get(self, stream_id: str, sender: str) -> Stream | None:
        return self._table.get((sender, stream_id))

    def open(
        self,
        stream_id: str,
        sender: str,
        now: float,
        *,
        max_reorder: int | None = None,
        max_buffered_bytes: int | None = None,
    ) -> Stream:
        """Registers the stream ``stream_id`` of ``sender``; ValueError if it is open."""
        key = (sender, stream_id)
        if key in self._table:
            raise ValueError(f"stream {stream_id!r} from {sender} is already registered")
        stream = Stream(
            stream_id,
            sender,
            self.max_reorder if max_reorder is None else max_reorder,
            self.max_buffered_bytes if max_buffered_bytes is None else max_buffered_bytes,
            last_active=now,
        )
        self._table[key] = stream
        self._ids[stream_id] += 1
        if self.idle_timeout is not None:
            if len(self._deadlines) > 2 * len(self._table) + 64:
                # Mostly streams gone already: keep the heap the size of the table.
                self._deadlines = [d for d in self._deadlines if d[2].registered]
                heapq.heapify(self._deadlines)
            heapq.heappush(self._deadlines, (now + self.idle_timeout, next(self._tie), stream))
        return stream

    def close(self, stream: Stream) -> None:
        """Its reader is done with it: it leaves the table and what it held is freed."""
        if stream.registered:
            self._leave(stream)
        self._free(stream)

    def receive(self, sender: str, chunk: DataStream, now: float) -> Stream | None:
        """A chunk from ``sender``. Returns the stream if its reader has something new
        (chunks released, or the stream is over), else None."""
        stream = self._table.get((sender, chunk.stream_id))
        if stream is None:
            other = chunk.stream_id in self._ids
            self._count(
                "chunk_from_other_sender" if other else "unregistered_stream", chunk, sender
            )
            return None
        seq = chunk.sequence
        if seq < stream.next_sequence or seq in stream._held:
            self._count("duplicate_chunk", chunk, sender)
            return None
        if stream._end_at is not None and seq > stream._end_at:
            self._count("chunk_after_end", chunk, sender)
            return None
        size = len(chunk.payload)
        if stream.buffered_bytes + size > stream.max_buffered_bytes:
            self._count("buffer_overflow", chunk, sender)
            self._break(stream, StreamOverflow(f"stream {stream.stream_id}: buffer full"))
            return stream
        if seq != stream.next_sequence and len(stream._held) >= stream.max_reorder:
            self._count("reorder_overflow", chunk, sender)
            self._break(stream, StreamOverflow(f"stream {stream.stream_id}: reorder buffer full"))
            return stream
        stream.last_active = now
        if chunk.end_of_stream:
            stream._end_at = seq
            for later in [s for s in stream._held if s > seq]:
                self._count("chunk_after_end", stream._held[later], sender)
                stream.held_bytes -= len(stream._held.pop(later).payload)
        if seq != stream.next_sequence:
            stream._held[seq] = chunk
            stream.held_bytes += size
            return None
        self._release(stream, chunk)
        while stream.registered and stream.next_sequence in stream._held:
            waiting = stream._held.pop(stream.next_sequence)
            stream.held_bytes -= len(waiting.payload)
            self._release(stream, waiting)
        return stream

    def fail_sender(self, sender: str, err: Exception) -> list[Stream]:
        """Breaks every open stream from ``sender`` (its connection is gone)."""
        broken = [s for key, s in self._table.items() if key[0] == sender]
        for stream in broken:
            self._break(stream, err)
        return broken

    def expire(self, now: float) -> list[Stream]:
        """Ends, with TimedOut, every stream idle for ``idle_timeout``; returns them."""
        ttl = self.idle_timeout
        gone: list[Stream] = []
        heap = self._deadlines
        while ttl is not None and heap and heap[0][0] <= now:
            _, _, stream = heapq.heappop(heap)
            if not stream.registered:
                continue
            due = stream.last_active + ttl
            if due > now:
                heapq.heappush(heap, (due, next(self._tie), stream))
                continue
            self.drops["stream_expired"] += 1
            log.warning(
                "stream_expired sender=%s stream=%s idle=%.0fs unread=%d",
                stream.sender,
                stream.stream_id,
                ttl,
                len(stream._released),
            )
            self._break(stream, TimedOut(f"stream {stream.stream_id}: idle for {ttl:g}s"))
            self._free(stream)  # nobody read it for that long: what it held goes too
            gone.append(stream)
        return gone

    def next_deadline(self) -> float | None:
        """When ``expire`` has something to do next (maybe earlier: it then re-arms)."""
        heap = self._deadlines
        while heap and not heap[0][2].registered:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # -- inside ------------------------------------------------------------------

    def _release(self, stream: Stream, chunk: DataStream) -> None:
        stream.next_sequence = chunk.sequence + 1
        # An end-of-stream chunk with an empty payload only ends the stream.
        if chunk.payload or not chunk.end_of_stream:
            stream._released.append(chunk)
            stream.released_bytes += len(chunk.payload)
        if chunk.end_of_stream:
            self._leave(stream)

    def _break(self, stream: Stream, err: Exception) -> None:
        stream.error = err
        stream._held.clear()
        stream.held_bytes = 0
        if stream.registered:
            self._leave(stream)

    def _free(self, stream: Stream) -> None:
        stream._held.clear()
        stream._released.clear()
        stream.held_bytes = stream.released_bytes = 0

    def _leave(self, stream: Stream) -> None:
        stream.registered = False
        del self._table[stream.key]
        self._ids[stream.stream_id] -= 1
        if not self._ids[stream.stream_id]:
            del self._ids[stream.stream_id]

    def _count(self, reason: str, chunk: DataStream, sender: str) -> None:
        self.drops[reason] += 1
        n = self.drops[reason]
        if n == 1 or n % LOG_EVERY == 0:
            log.warning(
                "stream_drop reason=%s sender=%s stream=%s seq=%d total=%d",
                reason,
                sender,
                chunk.stream_id,
                chunk.sequence,
                n,
            )
