"""Registered actors and their presence (PROTOCOL.md ID-2, SIG-7, ACL-2). No I/O.

An actor is *registered* from ``/ais/register`` until it unregisters or its
registration lapses, and *live* while one signaling socket of it is attached.
Sockets are known here only by an opaque connection number, so a socket that
was replaced by a newer one cannot take its actor offline when it closes.

Serials count up from 1 per realm and are never reused while the process runs.
A registration that is offline and whose newest credential expired more than
one credential lifetime ago is forgotten (``lapsed``): that is the window an
actor has to renew after a long absence before it must register anew.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from actr.acl import acl_allows
from actr.identity import id_text, make_id
from actr.protocol.actr_pb2 import Acl, ActrId, ActrType, AIdCredential

__all__ = ["ActorRecord", "Registry", "TypeKey", "type_key"]

log = logging.getLogger(__name__)

TypeKey = tuple[str, str, str]

# Peers an actor relayed to, kept so they may relay back (see may_relay).
_MAX_CONTACTS = 1024


def type_key(t: ActrType) -> TypeKey:
    # A tuple rather than the text form: it never raises on odd characters.
    return (t.manufacturer, t.name, t.version)


@dataclass(slots=True, eq=False)
class ActorRecord:
    actr_id: ActrId
    key: str
    acl: Acl | None
    service: str
    registered_at: float
    credential: AIdCredential = field(default_factory=AIdCredential)
    credential_expires_at: int = 0
    renewal_token: bytes = b""
    connection: int | None = None
    last_seen: float = 0.0
    mailbox_backlog: float = 0.0
    pings: int = 0
    contacts: OrderedDict[str, None] = field(default_factory=OrderedDict)

    @property
    def live(self) -> bool:
        return self.connection is not None

    @property
    def type_key(self) -> TypeKey:
        return type_key(self.actr_id.type)

    def admits(self, caller: ActrId) -> bool:
        return acl_allows(self.acl, self.actr_id, caller)

    def grant(self, credential: AIdCredential, expires_at: int, renewal_token: bytes) -> None:
        self.credential = credential
        self.credential_expires_at = expires_at
        self.renewal_token = renewal_token

    def note_contact(self, peer_key: str) -> None:
        self.contacts[peer_key] = None
        self.contacts.move_to_end(peer_key)
        while len(self.contacts) > _MAX_CONTACTS:
            self.contacts.popitem(last=False)


class Registry:
    def __init__(self) -> None:
        self._records: dict[str, ActorRecord] = {}
        self._next_serial: dict[int, int] = {}
        self._live_by_type: dict[TypeKey, dict[str, ActorRecord]] = {}
        self._subscribers: dict[TypeKey, set[str]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[ActorRecord]:
        return iter(list(self._records.values()))

    @property
    def live_count(self) -> int:
        return sum(len(v) for v in self._live_by_type.values())

    def get(self, key: str) -> ActorRecord | None:
        return self._records.get(key)

    def register(
        self, actr_type: ActrType, realm_id: int, acl: Acl | None, service: str, now: float
    ) -> ActorRecord:
        serial = self._next_serial.get(realm_id, 1)
        self._next_serial[realm_id] = serial + 1
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
        )
        self._records[record.key] = record
        return record

    def forget(self, key: str) -> ActorRecord | None:
        record = self._records.pop(key, None)
        if record is None:
            return None
        if record.live:
            self._set_offline(record)
        for subs in self._subscribers.values():
            subs.discard(key)
        self._subscribers = {t: s for t, s in self._subscribers.items() if s}
        return record

    # ---- presence ----

    def attach(self, key: str, connection: int, now: float) -> bool:
        """Make ``connection`` the actor's socket; True when the actor just came online."""
        record = self._records[key]
        came_online = not record.live
        record.connection = connection
        record.last_seen = now
        self._live_by_type.setdefault(record.type_key, {})[key] = record
        return came_online

    def detach(self, key: str, connection: int) -> bool:
        """Drop ``connection``; True when the actor went offline because of it."""
        record = self._records.get(key)
        if record is None or record.connection != connection:
            return False
        self._set_offline(record)
        return True

    def _set_offline(self, record: ActorRecord) -> None:
        record.connection = None
        live = self._live_by_type.get(record.type_key)
        if live is not None:
            live.pop(record.key, None)
            if not live:
                del self._live_by_type[record.type_key]

    def silent(self, now: float, max_silence: float) -> list[ActorRecord]:
        """Live actors not heard from for longer than ``max_silence`` seconds (SIG-7)."""
        return [
            r
            for live in self._live_by_type.values()
            for r in live.values()
            if now - r.last_seen > max_silence
        ]

    def lapsed(self, now: float, grace: float) -> list[ActorRecord]:
        return [
            r
            for r in self._records.values()
            if not r.live and now > r.credential_expires_at + grace
        ]

    # ---- queries ----

    def route_candidates(self, requester: ActrId, target: ActrType, cap: int) -> list[ActrId]:
        """SIG-7: live actors of exactly that type that admit the requester, least busy first."""
        live = self._live_by_type.get(type_key(target), {})
        fit = [r for r in live.values() if r.actr_id != requester and r.admits(requester)]
        fit.sort(key=lambda r: (r.mailbox_backlog, r.actr_id.serial_number))
        return [r.actr_id for r in fit[:cap]]

    def live_types(
        self, requester: ActrId, manufacturer: str, limit: int
    ) -> list[tuple[ActrType, str]]:
        """Live types with an actor that admits ``requester``: (type, service) by type."""
        out: list[tuple[ActrType, str]] = []
        for key in sorted(self._live_by_type):
            if manufacturer and key[0] != manufacturer:
                continue
            admitting = [r for r in self._live_by_type[key].values() if r.admits(requester)]
            if not admitting:
                continue
            first = min(admitting, key=lambda r: r.actr_id.serial_number)
            out.append((first.actr_id.type, first.service))
            if limit and len(out) >= limit:
                break
        return out

    def may_relay(self, source: ActorRecord, target: ActorRecord) -> bool:
        """ACL-2 on relay: the target's ACL admits the source, or the target spoke first.

        The second case lets a callee answer a caller its own ACL does not list
        (another realm, a type it never calls): the callee's SDP answer and ICE
        candidates must reach the caller, or no connection could ever form.
        """
        return target.admits(source.actr_id) or source.key in target.contacts

    # ---- actr_up subscriptions ----

    def subscribe(self, subscriber: str, target: ActrType) -> None:
        self._subscribers.setdefault(type_key(target), set()).add(subscriber)

    def unsubscribe(self, subscriber: str, target: ActrType) -> None:
        key = type_key(target)
        subs = self._subscribers.get(key)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._subscribers[key]

    def watchers(self, record: ActorRecord) -> list[ActorRecord]:
        """Live subscribers of the record's type that the record's ACL admits (not itself)."""
        out: list[ActorRecord] = []
        for key in sorted(self._subscribers.get(record.type_key, ())):
            sub = self._records.get(key)
            if (
                sub is not None
                and sub.live
                and sub.key != record.key
                and record.admits(sub.actr_id)
            ):
                out.append(sub)
        return out
