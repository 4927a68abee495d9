"""The pending-call table (sans-IO): request_id -> waiter, with deadlines and a cap.

The table stores an opaque waiter per call (the runtime uses a Future) and
never touches it; time is passed in, so deadline logic is tested without
sleeping. Late or unknown answers are counted, never raised (ENV-2).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from actr.errors import InvalidArgument, ResourceExhausted

W = TypeVar("W")


@dataclass
class Pending(Generic[W]):
    request_id: str
    peer: str
    deadline: float
    waiter: W


@dataclass
class PendingTable(Generic[W]):
    max_pending: int = 10_000
    counters: Counter[str] = field(default_factory=Counter)
    _entries: dict[str, Pending[W]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, request_id: str, peer: str, deadline: float, waiter: W) -> Pending[W]:
        if len(self._entries) >= self.max_pending:
            self.counters["rejected_full"] += 1
            raise ResourceExhausted(f"{len(self._entries)} calls pending (max {self.max_pending})")
        if request_id in self._entries:
            raise InvalidArgument(f"request id {request_id} already pending")
        entry = Pending(request_id, peer, deadline, waiter)
        self._entries[request_id] = entry
        return entry

    def resolve(self, request_id: str, peer: str) -> Pending[W] | None:
        """Takes the entry an answer from ``peer`` belongs to; None if unknown."""
        entry = self._entries.get(request_id)
        if entry is None:
            self.counters["unknown_response"] += 1
            return None
        if entry.peer != peer:
            # An answer must come from the actor that was asked (DC-2).
            self.counters["response_from_wrong_peer"] += 1
            return None
        del self._entries[request_id]
        return entry

    def remove(self, request_id: str) -> Pending[W] | None:
        """Forgets a call (cancelled or timed out); a later answer counts as unknown."""
        return self._entries.pop(request_id, None)

    def fail_peer(self, peer: str) -> list[Pending[W]]:
        """Takes every call pending on ``peer`` (its connection failed, DC-6)."""
        gone = [e for e in self._entries.values() if e.peer == peer]
        for e in gone:
            del self._entries[e.request_id]
        return gone

    def fail_peer_all(self) -> list[Pending[W]]:
        """Takes every entry (the node is stopping)."""
        gone = list(self._entries.values())
        self._entries.clear()
        return gone

    def expire(self, now: float) -> list[Pending[W]]:
        gone = [e for e in self._entries.values() if e.deadline <= now]
        for e in gone:
            del self._entries[e.request_id]
        self.counters["expired"] += len(gone)
        return gone

    def next_deadline(self) -> float | None:
        return min((e.deadline for e in self._entries.values()), default=None)
