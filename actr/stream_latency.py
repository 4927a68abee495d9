"""Latency-first streams, sans-IO (docs/protocol.md X-STR-7).

Chunks are still released in sequence order, but a loss never stalls or breaks
the stream: a gap is skipped once ``gap_wait`` has passed since a later chunk
arrived, or once ``gap_chunks`` later chunks wait (or they hold more than the
stream's byte bound); a reader that falls behind loses its oldest released
chunks (past ``max_unread`` items or the byte bound). Either way the reader
gets a ``Gap(first, last)`` in their place. Drops are counted in chunks:
``gap_skipped`` (never came in time) and ``reader_behind``.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable

from actr.stream_credit import Gap
from actr.stream_state import Stream

__all__ = ["LatencyRules"]


class LatencyRules:
    def __init__(
        self,
        drops: Counter[str],
        release_waiting: Callable[[Stream, float], None],
        *,
        gap_wait: float = 0.05,
        gap_chunks: int = 32,
        max_unread: int = 256,
    ) -> None:
        self.drops = drops
        self._release_waiting = release_waiting  # the core's in-order release
        self.gap_wait = gap_wait
        self.gap_chunks = gap_chunks
        self.max_unread = max_unread
        # (due, tie, stream): stale entries (the gap closed or moved) are skipped.
        self._timers: list[tuple[float, int, Stream]] = []
        self._tie = itertools.count()

    def on_held(self, stream: Stream, now: float) -> tuple[bool, float | None]:
        """A chunk of ``stream`` was held behind a gap. Returns (whether its reader
        has news, the gap deadline armed if any)."""
        armed = None
        if stream.gap_since is None:
            armed = self._arm(stream, now)
        if stream.held >= self.gap_chunks or stream.held_bytes > stream.max_buffered_bytes:
            return True, _earliest(armed, self._skip(stream, now))
        return False, armed

    def on_released(self, stream: Stream, now: float) -> float | None:
        """Chunks of ``stream`` were released in order: re-time what still waits and
        bound what its reader has not taken. Returns a deadline armed, if any."""
        armed = self._rearm(stream)
        self._trim(stream)
        return armed

    def expire(self, now: float) -> list[Stream]:
        """Skips the gaps that waited ``gap_wait``; returns the streams that moved."""
        moved: list[Stream] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, stream = heapq.heappop(timers)
            since = stream.gap_since
            if stream.registered and since is not None and since + self.gap_wait <= now:
                self._skip(stream, now)
                moved.append(stream)
        return moved

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers and (not timers[0][2].registered or timers[0][2].gap_since is None):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    # -- inside ------------------------------------------------------------------

    def _arm(self, stream: Stream, since: float) -> float:
        stream.gap_since = since
        due = since + self.gap_wait
        heapq.heappush(self._timers, (due, next(self._tie), stream))
        return due

    def _rearm(self, stream: Stream) -> float | None:
        """The gap timer runs from the oldest chunk still waiting."""
        if not stream.registered or not stream._held:
            stream.gap_since = None
            return None
        oldest = min(t for _, t in stream._held.values())  # at most gap_chunks
        if oldest == stream.gap_since:
            return None
        return self._arm(stream, oldest)

    def _skip(self, stream: Stream, now: float) -> float | None:
        armed = None
        while stream.registered and stream._held:
            since = stream.gap_since
            late = since is not None and since + self.gap_wait <= now
            full = stream.held >= self.gap_chunks or stream.held_bytes > stream.max_buffered_bytes
            if not late and not full:
                break
            first = min(stream._held)
            missing = first - stream.next_sequence
            stream.lost += missing
            self.drops["gap_skipped"] += missing
            stream.push(Gap(stream.next_sequence, first - 1))
            stream.next_sequence = first
            self._release_waiting(stream, now)
            stream.gap_since = None
            armed = _earliest(armed, self._rearm(stream))
        self._trim(stream)
        return armed

    def _trim(self, stream: Stream) -> None:
        if stream.unread > self.max_unread or stream.released_bytes > stream.max_buffered_bytes:
            n = stream.drop_oldest(self.max_unread, stream.max_buffered_bytes)
            stream.lost += n
            self.drops["reader_behind"] += n


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
