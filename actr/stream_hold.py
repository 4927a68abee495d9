"""Chunks that came before their stream was registered, sans-IO (X-STR-8).

Nothing orders a stream's first chunks after the message that makes its
receiver register it (they travel on different channels), so a chunk for a
``(sender, stream_id)`` nobody registered is held for ``hold_time``, within
``hold_bytes`` and ``hold_chunks`` per sender and ``total_bytes`` in all.
Registering the stream in time claims them; past the time they are dropped.

A key whose chunks were dropped (expired, or past a cap) is remembered for
``hold_time`` as a *tombstone*, with the error its stream would have: later
chunks for it drop at once instead of being held (and reset) again, and a late
registration opens the stream already failed, since a reliable stream missing
its first chunks can never deliver. A stream that ends or is closed leaves a
tombstone without error, so its stragglers are dropped at once too.

A reset from a stream's sender while chunks of it are held is held with them,
as the stream's end (X-STR-4): the registration gets the chunks, then the error.
It goes with them (one per key with held chunks: bounded like they are).
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

from actr.errors import ActrError, NotFound, ResourceExhausted
from actr.protocol.actr_pb2 import DataStream

__all__ = ["EarlyHold", "Expired"]

Key = tuple[str, str]  # (sender, stream_id)
MAX_TOMBSTONES = 4096


@dataclass(eq=False, slots=True)
class _Entry:
    key: Key
    chunk: DataStream
    deadline: float
    live: bool = True


@dataclass(frozen=True, slots=True)
class Expired:
    """Held chunks dropped: ``chunks`` of the stream ``key``, and why."""

    key: Key
    chunks: int
    reason: str  # "unregistered_stream" (expired) or "hold_full"
    error: ActrError  # what the sender is reset with, and a late registration sees
    reset: bool = False  # the sender reset it itself: no reset goes back


class EarlyHold:
    def __init__(
        self,
        *,
        hold_time: float = 2.0,
        hold_bytes: int = 2 * 1024 * 1024,
        hold_chunks: int = 256,
        total_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.hold_time = hold_time
        self.hold_bytes = hold_bytes
        self.hold_chunks = hold_chunks
        self.total_bytes = total_bytes
        self.bytes = 0
        self.chunks = 0
        self._queue: deque[_Entry] = deque()  # arrival order = deadline order
        self._by_key: dict[Key, list[_Entry]] = {}
        self._sender_bytes: Counter[str] = Counter()
        self._sender_chunks: Counter[str] = Counter()
        # key -> (until, error or None), oldest first (all live equally long).
        self._tombs: OrderedDict[Key, tuple[float, ActrError | None]] = OrderedDict()
        self._resets: dict[Key, ActrError] = {}  # a sender's reset, held with its chunks

    def hold_reset(self, key: Key, error: ActrError) -> bool:
        """Holds the sender's reset of ``key`` as its end, if chunks of it are held."""
        if key not in self._by_key:
            return False
        self._resets.setdefault(key, error)
        return True

    def tombstoned(self, key: Key, now: float) -> bool:
        tomb = self._tombs.get(key)
        return tomb is not None and tomb[0] > now

    def bury(self, key: Key, now: float, error: ActrError | None = None) -> None:
        """Chunks for ``key`` drop at once for ``hold_time`` from ``now``."""
        self._tombs.pop(key, None)
        self._tombs[key] = (now + self.hold_time, error)
        while self._tombs:
            oldest, (until, _) = next(iter(self._tombs.items()))
            if until > now and len(self._tombs) <= MAX_TOMBSTONES:
                break
            del self._tombs[oldest]

    def add(self, key: Key, chunk: DataStream, now: float) -> Expired | None:
        """Holds ``chunk``; or, past a cap, drops it and what ``key`` held (returned)."""
        sender = key[0]
        size = len(chunk.payload)
        if (
            self._sender_bytes[sender] + size > self.hold_bytes
            or self._sender_chunks[sender] + 1 > self.hold_chunks
            or self.bytes + size > self.total_bytes
        ):
            dropped = 1 + self._discard(key)
            reset = self._resets.pop(key, None) is not None
            err = ResourceExhausted(f"stream {key[1]}: early chunks past the hold's bounds")
            self.bury(key, now, err)
            return Expired(key, dropped, "hold_full", err, reset)
        entry = _Entry(key, chunk, now + self.hold_time)
        self._queue.append(entry)
        self._by_key.setdefault(key, []).append(entry)
        self._count(sender, size, 1)
        return None

    def claim(self, key: Key) -> tuple[list[DataStream], ActrError | None, ActrError | None]:
        """The chunks held for ``key`` (arrival order); if its earlier chunks were
        dropped, the error its stream starts with; and the sender's reset held after
        the chunks. Forgets them."""
        tomb = self._tombs.pop(key, None)
        reset = self._resets.pop(key, None)
        entries = self._by_key.pop(key, [])
        for e in entries:
            e.live = False
            self._count(key[0], -len(e.chunk.payload), -1)
        self._compact()
        return [e.chunk for e in entries], tomb[1] if tomb else None, reset

    def expire(self, now: float) -> list[Expired]:
        """Drops what waited ``hold_time``; one ``Expired`` per stream."""
        gone: Counter[Key] = Counter()
        queue = self._queue
        while queue and queue[0].deadline <= now:
            entry = queue.popleft()
            if not entry.live:
                continue
            entry.live = False
            self._count(entry.key[0], -len(entry.chunk.payload), -1)
            left = self._by_key[entry.key]
            left.remove(entry)  # the oldest: at the front
            if not left:
                del self._by_key[entry.key]
            gone[entry.key] += 1
        out: list[Expired] = []
        for key, n in gone.items():
            err = NotFound(f"stream {key[1]}: not registered within {self.hold_time:g}s")
            if key in self._by_key:  # some of its chunks are younger: they go too
                n += self._discard(key)
            reset = self._resets.pop(key, None) is not None
            self.bury(key, now, err)
            out.append(Expired(key, n, "unregistered_stream", err, reset))
        return out

    def next_deadline(self) -> float | None:
        queue = self._queue
        while queue and not queue[0].live:
            queue.popleft()
        return queue[0].deadline if queue else None

    def held_by(self, sender: str) -> tuple[int, int]:
        """(chunks, bytes) held for ``sender``."""
        return self._sender_chunks[sender], self._sender_bytes[sender]

    # -- inside ------------------------------------------------------------------

    def _discard(self, key: Key) -> int:
        entries = self._by_key.pop(key, [])
        for e in entries:
            e.live = False
            self._count(key[0], -len(e.chunk.payload), -1)
        self._compact()
        return len(entries)

    def _count(self, sender: str, size: int, n: int) -> None:
        self.bytes += size
        self.chunks += n
        self._sender_bytes[sender] += size
        self._sender_chunks[sender] += n
        if not self._sender_chunks[sender]:
            del self._sender_chunks[sender]
            self._sender_bytes.pop(sender, None)

    def _compact(self) -> None:
        # Claimed entries stay in the queue until their deadline; when they are
        # most of it, rebuild it so memory follows what is really held.
        if len(self._queue) > 2 * self.chunks + 64:
            self._queue = deque(e for e in self._queue if e.live)
