"""``actr_up`` subscriptions: who hears of an actor of a type coming up or going down
(PROTOCOL.md SIG-7; issue 11, F3). No I/O.

An actor subscribes to a type; its subscriptions live in its record
(``ActorRecord.subscriptions``, stored with the registration) and in an index by
type here, so an actor coming up or going down finds its watchers at once. At
most ``cap`` subscriptions per actor (``[limits] max_subscriptions``). Events
are per node: each node tells the subscribers whose socket is on it
(``watchers``), so each hears an event once.
"""

from __future__ import annotations

from collections.abc import Mapping

from signaling.record import ActorRecord, TypeKey

__all__ = ["Subscriptions"]


class Subscriptions:
    def __init__(self, records: Mapping[str, ActorRecord]) -> None:
        """``records``: the registry's records by key, read (never changed) here."""
        self._records = records
        self._by_type: dict[TypeKey, set[str]] = {}

    def subscribe(self, subscriber: str, target: TypeKey, cap: int = 0) -> bool:
        """False when the subscriber is unknown or already has ``cap`` other
        subscriptions (0: no cap)."""
        record = self._records.get(subscriber)
        if record is None:
            return False
        if cap and target not in record.subscriptions and len(record.subscriptions) >= cap:
            return False
        record.subscriptions.add(target)
        self._by_type.setdefault(target, set()).add(subscriber)
        return True

    def unsubscribe(self, subscriber: str, target: TypeKey) -> None:
        record = self._records.get(subscriber)
        if record is not None:
            record.subscriptions.discard(target)
        self._drop(subscriber, target)

    def adopt(self, record: ActorRecord) -> None:
        """Index the subscriptions a record came with (a registration another node wrote)."""
        for target in record.subscriptions:
            self._by_type.setdefault(target, set()).add(record.key)

    def forget(self, record: ActorRecord) -> None:
        """Take ``record``'s subscriptions out of the index (the registry forgot it)."""
        for target in list(record.subscriptions):
            self._drop(record.key, target)

    def _drop(self, subscriber: str, target: TypeKey) -> None:
        subs = self._by_type.get(target)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._by_type[target]

    def watchers(self, record: ActorRecord) -> list[ActorRecord]:
        """Subscribers of the record's type on a socket here that its ACL admits (not itself).

        Each node tells its own subscribers, so an event reaches each one once.
        """
        out: list[ActorRecord] = []
        for key in sorted(self._by_type.get(record.type_key, ())):
            sub = self._records.get(key)
            if (
                sub is not None
                and sub.local
                and sub.key != record.key
                and record.admits(sub.actr_id)
            ):
                out.append(sub)
        return out
