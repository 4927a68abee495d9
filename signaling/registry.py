"""Registered actors (PROTOCOL.md ID-2, SIG-7, ACL-2). No I/O.

An actor is *registered* from ``/ais/register`` until its newest credential
expired while it was offline (then it is forgotten, ``lapsed``, a minute later): until then a
restarted daemon resumes the same ActrId with ``/ais/renew``, also after it
unregistered. Only live actors (``signaling.presence_index``) are route candidates.

``Registry`` holds the records by key (``signaling.record``: one actor, its
credential and renewal chain), and in front of them the index of live actors by
type (``presence_index``) and of ``actr_up`` subscriptions by type
(``subscriptions``); each change of presence or subscriptions goes through it, so
the record and the indexes agree.

Presence events are per node: each node tells the subscribers connected to it
(``watchers``). ``announced`` says whether this node's subscribers were last
told the actor is up; ``offline_since`` marks a closed socket whose down event
waits for the reconnect grace.

Serials come from ``signaling.serials`` (or, with Redis, the cluster) and are
handed in (``register(serial=...)``); alone, the registry counts up from 1.
"""

from __future__ import annotations

from collections.abc import Iterator

from actr.acl import acl_denies
from actr.identity import id_text, make_id
from actr.protocol.actr_pb2 import Acl, ActrId, ActrType, ServiceSpec
from signaling.presence_index import LiveIndex
from signaling.record import (
    NEGOTIATION_TTL_SECS,
    TOKEN_HASH_LEN,
    ActorRecord,
    TokenStanding,
    TypeKey,
    token_hash,
    type_key,
)
from signaling.subscriptions import Subscriptions

__all__ = [
    "LAPSE_SLACK_SECS",
    "NEGOTIATION_TTL_SECS",
    "TOKEN_HASH_LEN",
    "ActorRecord",
    "Registry",
    "TokenStanding",
    "TypeKey",
    "token_hash",
    "type_key",
]

# A registration is forgotten this long after its newest credential expired (offline):
# meanwhile a late renewal hears "expired" rather than "unknown". Redis keeps it as long.
LAPSE_SLACK_SECS = 60


class Registry:
    def __init__(self) -> None:
        self._records: dict[str, ActorRecord] = {}
        self._next_serial: dict[int, int] = {}
        self._per_realm: dict[int, int] = {}
        self.live = LiveIndex()
        self.subscriptions = Subscriptions(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[ActorRecord]:
        return iter(list(self._records.values()))

    @property
    def live_count(self) -> int:
        return self.live.count

    @property
    def local_count(self) -> int:
        return self.live.local_count

    def get(self, key: str) -> ActorRecord | None:
        return self._records.get(key)

    def realm_count(self, realm_id: int) -> int:
        """Registrations held in ``realm_id`` (lapsed ones are forgotten)."""
        return self._per_realm.get(realm_id, 0)

    def _add(self, record: ActorRecord) -> None:
        if record.key not in self._records:
            realm_id = record.actr_id.realm.realm_id
            self._per_realm[realm_id] = self._per_realm.get(realm_id, 0) + 1
        self._records[record.key] = record

    def register(
        self,
        actr_type: ActrType,
        realm_id: int,
        acl: Acl | None,
        service: str,
        now: float,
        serial: int | None = None,
        service_spec: ServiceSpec | None = None,
    ) -> ActorRecord:
        if serial is None:
            serial = self.next_unseen(realm_id)
        self._saw_serial(realm_id, serial)
        actr_id = make_id(realm_id, serial, actr_type)
        stored_acl: Acl | None = None
        if acl is not None:
            stored_acl = Acl()
            stored_acl.CopyFrom(acl)
        record = ActorRecord(
            actr_id=actr_id,
            key=id_text(actr_id),
            acl=stored_acl,
            service=service,
            registered_at=now,
            last_seen=now,
            service_spec=service_spec,
        )
        self._add(record)
        return record

    def next_unseen(self, realm_id: int) -> int:
        """Above every serial of the realm this registry has held (F1: with Redis, the
        floor of the next allocation, should Redis have lost its counter)."""
        return self._next_serial.get(realm_id, 1)

    def _saw_serial(self, realm_id: int, serial: int) -> None:
        if serial >= self._next_serial.get(realm_id, 1):
            self._next_serial[realm_id] = serial + 1

    def merge(self, incoming: ActorRecord) -> ActorRecord:
        """Take in a registration another node wrote (SIG-10); presence here is kept."""
        record = self._records.get(incoming.key)
        if record is None:
            # Presence, and so its generation, arrives with Online events only.
            incoming.generation = 0
            self._add(incoming)
            self._saw_serial(incoming.actr_id.realm.realm_id, incoming.actr_id.serial_number)
            self.subscriptions.adopt(incoming)
            return incoming
        record.acl = incoming.acl
        record.service = incoming.service
        record.service_spec = incoming.service_spec
        record.revoked_through = max(record.revoked_through, incoming.revoked_through)
        if incoming.credential_expires_at >= record.credential_expires_at:
            record.credential = incoming.credential
            record.credential_expires_at = incoming.credential_expires_at
            record.token_hashes = incoming.token_hashes
            record.spent_hashes = incoming.spent_hashes
        return record

    def forget(self, key: str) -> ActorRecord | None:
        record = self._records.pop(key, None)
        if record is None:
            return None
        realm_id = record.actr_id.realm.realm_id
        left = self._per_realm.get(realm_id, 0) - 1
        if left > 0:
            self._per_realm[realm_id] = left
        else:
            self._per_realm.pop(realm_id, None)
        if record.live:
            self.live.set_offline(record)
        self.subscriptions.forget(record)
        return record

    # ---- presence (signaling.presence_index) ----

    def attach(self, key: str, connection: int, now: float, generation: int | None = None) -> bool:
        """Make ``connection`` the actor's socket here; True when the actor just came live.

        ``generation`` is the attach's number from the cluster; alone, it counts here.
        """
        return self.live.attach(self._records[key], connection, now, generation)

    def attach_remote(self, key: str, node: str, generation: int) -> int | None:
        """The actor's socket is now on ``node``; returns the local connection it replaces."""
        return self.live.attach_remote(self._records[key], node, generation)

    def detach(self, key: str, connection: int) -> bool:
        """Drop ``connection``; True when the actor went offline because of it."""
        record = self._records.get(key)
        return record is not None and self.live.detach(record, connection)

    def detach_remote(self, key: str, node: str, generation: int | None = None) -> bool:
        record = self._records.get(key)
        return record is not None and self.live.detach_remote(record, node, generation)

    def on_node(self, node: str) -> list[ActorRecord]:
        return self.live.on_node(node)

    def remote_nodes(self) -> set[str]:
        return self.live.remote_nodes()

    def silent(self, now: float, max_silence: float) -> list[ActorRecord]:
        """Actors on a socket here not heard from for longer than ``max_silence`` (SIG-7)."""
        return self.live.silent(now, max_silence)

    def outlived_credential(self, now: float) -> list[ActorRecord]:
        """Actors on a socket here whose newest credential expired (they failed to renew)."""
        return self.live.outlived_credential(now)

    def grace_over(self, now: float, grace: float) -> list[ActorRecord]:
        """Offline actors whose reconnect grace ran out with their down event still due."""
        return [
            r
            for r in self._records.values()
            if r.offline_since is not None and not r.live and now - r.offline_since >= grace
        ]

    def lapsed(self, now: float) -> list[ActorRecord]:
        """Offline actors that can no longer renew: their newest credential expired."""
        return [
            r
            for r in self._records.values()
            if not r.live
            and r.offline_since is None
            and r.credential_expires_at + LAPSE_SLACK_SECS <= now
        ]

    # ---- queries ----

    def route_candidates(self, requester: ActrId, target: ActrType, cap: int) -> list[ActrId]:
        """SIG-7: live actors of exactly that type that admit the requester, least busy first."""
        return self.live.route_candidates(requester, target, cap)

    def live_types(
        self, requester: ActrId, manufacturer: str, limit: int
    ) -> list[tuple[ActrType, str]]:
        """Live types with an actor that admits ``requester``: (type, service) by type."""
        return self.live.live_types(requester, manufacturer, limit)

    def may_relay(self, source: ActorRecord, target: ActorRecord, now: float) -> bool:
        """ACL-2 on relay: the target's ACL admits the source, or the target asked the
        server for a connection to the source within NEGOTIATION_TTL_SECS (SIG-6).

        The second case lets a callee answer a caller whose ACL does not list it
        (another realm, a type it never calls): its SDP answer and ICE candidates
        must reach the caller, or no connection could ever form. It is scoped to
        that negotiation, expires, and never overrides an explicit DENY.
        """
        if target.admits(source.actr_id):
            return True
        if acl_denies(target.acl, source.actr_id):
            return False
        return target.negotiating_with(source.key, now)

    # ---- actr_up subscriptions (signaling.subscriptions) ----

    def subscribe(self, subscriber: str, target: TypeKey, cap: int = 0) -> bool:
        """False when the subscriber already has ``cap`` other subscriptions (0: no cap)."""
        return self.subscriptions.subscribe(subscriber, target, cap)

    def unsubscribe(self, subscriber: str, target: TypeKey) -> None:
        self.subscriptions.unsubscribe(subscriber, target)

    def watchers(self, record: ActorRecord) -> list[ActorRecord]:
        """Subscribers of the record's type on a socket here that its ACL admits (not itself)."""
        return self.subscriptions.watchers(record)
