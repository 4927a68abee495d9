"""Counters of the server (PROTOCOL.md SIG-9, SIG-11), kept in plain Python.

Every refused request, frame or connection is counted under a short reason
label; ``GET /stats`` shows them with the gauges, and ``signaling.metrics``
exports the same object through OpenTelemetry on ``GET /metrics``. Plain integers
keep the hot path to one addition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Stats"]


@dataclass(slots=True)
class Stats:
    rejects: Counter[str] = field(default_factory=Counter)
    registrations: int = 0
    renewals: int = 0
    connections_total: int = 0
    frames_in: int = 0
    relays: int = 0
    relays_forwarded: int = 0
    role_assignments: int = 0
    relays_received: int = 0
    presence_expired: int = 0

    def reject(self, reason: str) -> None:
        self.rejects[reason] += 1

    def snapshot(self, *, connections: int, registered: int) -> dict[str, Any]:
        return {
            "connections": connections,
            "registered_actors": registered,
            "connections_total": self.connections_total,
            "registrations": self.registrations,
            "renewals": self.renewals,
            "frames_in": self.frames_in,
            "relays": self.relays,
            "relays_forwarded": self.relays_forwarded,
            "role_assignments": self.role_assignments,
            "relays_received": self.relays_received,
            "presence_expired": self.presence_expired,
            "rejects": dict(sorted(self.rejects.items())),
        }
