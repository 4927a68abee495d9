"""One timer for the node's sans-IO cores: time is their input, this is its source.

Each core that keeps deadlines offers ``next_deadline() -> float | None`` (loop
time) and an ``expire(now)`` to call once it has passed (the pending table's
call deadlines, the stream registry's time to live). ``Timer`` keeps a single
``loop.call_at`` armed for the earliest of them; a core that adds an earlier
deadline calls ``poke()``. Nothing here knows what expires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Timer"]


@dataclass(frozen=True, slots=True)
class _Watch:
    next_deadline: Callable[[], float | None]
    expire: Callable[[float], object]


class Timer:
    def __init__(self) -> None:
        self._watches: list[_Watch] = []
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._closed = False

    def watch(
        self, next_deadline: Callable[[], float | None], expire: Callable[[float], object]
    ) -> None:
        self._watches.append(_Watch(next_deadline, expire))

    def poke(self, added: float | None = None) -> None:
        """Re-arms for the earliest deadline if it moved earlier. ``added``: the one
        deadline just added, which makes the common case O(1) on the hot path."""
        if self._closed:
            return
        if added is not None and self._armed_at is not None and self._armed_at <= added:
            return
        when = self._earliest()
        if when is None:
            return
        if self._armed_at is not None and self._armed_at <= when:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet (set up outside one): the first poke inside arms it
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = loop.call_at(when, self._fire)

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _earliest(self) -> float | None:
        deadlines = [d for w in self._watches if (d := w.next_deadline()) is not None]
        return min(deadlines, default=None)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        now = asyncio.get_running_loop().time()
        for w in self._watches:
            deadline = w.next_deadline()
            if deadline is not None and deadline <= now:
                w.expire(now)
        self.poke()
