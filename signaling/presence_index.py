"""Which registered actors are live, and where (PROTOCOL.md SIG-7, SIG-10). No I/O.

An actor is *live* while one signaling socket of it is attached, here
(``ActorRecord.connection``, an opaque number, so a socket replaced by a newer
one cannot take its actor offline when it closes) or on another node of the
deployment (``ActorRecord.node``). ``LiveIndex`` keeps the live ones by type,
so route candidates and discovery look at live actors of one type only, and
answers the questions presence asks: who went silent, whose credential ran out,
who was on a node that died.
"""

from __future__ import annotations

from actr.protocol.actr_pb2 import ActrId, ActrType
from signaling.record import ActorRecord, TypeKey, type_key

__all__ = ["LiveIndex"]


class LiveIndex:
    def __init__(self) -> None:
        self._by_type: dict[TypeKey, dict[str, ActorRecord]] = {}
        self._local = 0

    @property
    def count(self) -> int:
        return sum(len(v) for v in self._by_type.values())

    @property
    def local_count(self) -> int:
        """Live actors whose socket is on this node."""
        return self._local

    def _live(self) -> list[ActorRecord]:
        return [r for live in self._by_type.values() for r in live.values()]

    # ---- attach and detach ----

    def attach(
        self, record: ActorRecord, connection: int, now: float, generation: int | None
    ) -> bool:
        """Make ``connection`` the actor's socket here; True when the actor just came live.

        ``generation`` is the attach's number from the cluster; alone, it counts here.
        """
        came_live = not record.live
        record.generation = record.generation + 1 if generation is None else generation
        if not record.local:
            self._local += 1
        record.connection = connection
        record.node = None
        record.last_seen = now
        record.offline_since = None
        self._by_type.setdefault(record.type_key, {})[record.key] = record
        return came_live

    def attach_remote(self, record: ActorRecord, node: str, generation: int) -> int | None:
        """The actor's socket is now on ``node``; returns the local connection it replaces."""
        record.generation = generation
        replaced = record.connection
        if replaced is not None:
            self._local -= 1
        record.connection = None
        record.node = node
        record.offline_since = None
        self._by_type.setdefault(record.type_key, {})[record.key] = record
        return replaced

    def detach(self, record: ActorRecord, connection: int) -> bool:
        """Drop ``connection``; True when the actor went offline because of it."""
        if record.connection != connection:
            return False
        self.set_offline(record)
        return True

    def detach_remote(self, record: ActorRecord, node: str, generation: int | None) -> bool:
        """Its socket on ``node`` closed (an older attach than the newest known changes
        nothing); True when the actor went offline because of it."""
        if record.node != node:
            return False
        if generation is not None and generation < record.generation:
            return False
        self.set_offline(record)
        return True

    def set_offline(self, record: ActorRecord) -> None:
        if record.local:
            self._local -= 1
        record.connection = None
        record.node = None
        live = self._by_type.get(record.type_key)
        if live is not None:
            live.pop(record.key, None)
            if not live:
                del self._by_type[record.type_key]

    # ---- presence ----

    def on_node(self, node: str) -> list[ActorRecord]:
        return [r for r in self._live() if r.node == node]

    def remote_nodes(self) -> set[str]:
        return {r.node for r in self._live() if r.node}

    def silent(self, now: float, max_silence: float) -> list[ActorRecord]:
        """Actors on a socket here not heard from for longer than ``max_silence`` (SIG-7)."""
        return [r for r in self._live() if r.local and now - r.last_seen > max_silence]

    def outlived_credential(self, now: float) -> list[ActorRecord]:
        """Actors on a socket here whose newest credential expired (they failed to renew)."""
        return [r for r in self._live() if r.local and r.credential_expires_at <= now]

    # ---- queries ----

    def route_candidates(self, requester: ActrId, target: ActrType, cap: int) -> list[ActrId]:
        """SIG-7: live actors of exactly that type that admit the requester, least busy first."""
        live = self._by_type.get(type_key(target), {})
        fit = [r for r in live.values() if r.actr_id != requester and r.admits(requester)]
        fit.sort(key=lambda r: (r.mailbox_backlog, r.actr_id.serial_number))
        return [r.actr_id for r in fit[:cap]]

    def live_types(
        self, requester: ActrId, manufacturer: str, limit: int
    ) -> list[tuple[ActrType, str]]:
        """Live types with an actor that admits ``requester``: (type, service) by type."""
        out: list[tuple[ActrType, str]] = []
        for key in sorted(self._by_type):
            if manufacturer and key[0] != manufacturer:
                continue
            admitting = [r for r in self._by_type[key].values() if r.admits(requester)]
            if not admitting:
                continue
            first = min(admitting, key=lambda r: r.actr_id.serial_number)
            out.append((first.actr_id.type, first.service))
            if limit and len(out) >= limit:
                break
        return out
