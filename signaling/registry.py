"""Registered actors and their presence (PROTOCOL.md ID-2, SIG-7, ACL-2). No I/O.

An actor is *registered* from ``/ais/register`` until its newest credential
expired while it was offline (then it is forgotten, ``lapsed``, a minute later): until then a
restarted daemon resumes the same ActrId with ``/ais/renew``, also after it
unregistered. It is *live* while one signaling socket of it is attached, here
(``connection``, an opaque number, so a socket replaced by a newer one cannot
take its actor offline when it closes) or on another node of the deployment
(``node``, SIG-10). Only live actors are route candidates.

Presence events are per node: each node tells the subscribers connected to it
(``watchers``). ``announced`` says whether this node's subscribers were last
told the actor is up; ``offline_since`` marks a closed socket whose down event
waits for the reconnect grace.

Serials come from ``signaling.serials`` (or, with Redis, the cluster) and are
handed in (``register(serial=...)``); alone, the registry counts up from 1.

Renewal tokens (AIS-3, F8) form a chain: each renewal hands out a new token. The
token it was granted on stays valid for one more renewal, and only while its
successor has not been used (a daemon that crashed before saving the answer
renews with it again); every older token is spent. A spent token that comes
back means two parties hold the chain: the whole chain is revoked
(``TokenStanding.REUSED``), with every credential issued on it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from actr.acl import acl_allows, acl_denies
from actr.identity import id_text, make_id
from actr.protocol.actr_pb2 import Acl, ActrId, ActrType, AIdCredential, ServiceSpec

__all__ = ["ActorRecord", "Registry", "TokenStanding", "TypeKey", "token_hash", "type_key"]

log = logging.getLogger(__name__)

TypeKey = tuple[str, str, str]

# A registration is forgotten this long after its newest credential expired (offline):
# meanwhile a late renewal hears "expired" rather than "unknown". Redis keeps it as long.
LAPSE_SLACK_SECS = 60
# Connections an actor asked for that are still being set up (see may_relay).
_MAX_NEGOTIATIONS = 1024
# How long the answering side of a negotiation may relay back (SDP, candidates).
NEGOTIATION_TTL_SECS = 60.0
# Spent renewal tokens remembered per actor, to recognise one that comes back (F8).
MAX_SPENT_TOKENS = 16
TOKEN_HASH_LEN = 32


class TokenStanding(enum.Enum):
    VALID = "valid"
    REUSED = "reused"
    UNKNOWN = "unknown"


def type_key(t: ActrType) -> TypeKey:
    # A tuple rather than the text form: it never raises on odd characters.
    return (t.manufacturer, t.name, t.version)


def token_hash(token: bytes) -> bytes:
    """Renewal tokens are kept hashed: a leaked store (or Redis) does not hand them out."""
    return hashlib.sha256(token).digest()


@dataclass(slots=True, eq=False)
class ActorRecord:
    actr_id: ActrId
    key: str
    acl: Acl | None
    service: str
    registered_at: float
    credential: AIdCredential = field(default_factory=AIdCredential)
    credential_expires_at: int = 0
    # The newest renewal token's hash first, then the one it was granted on, valid until
    # the newest is used: a daemon that crashed between a renewal and saving its answer
    # still holds a valid token. Empty once the chain was revoked (F8).
    token_hashes: tuple[bytes, ...] = ()
    # Tokens of the chain no longer valid, newest first: one presented again revokes it.
    spent_hashes: tuple[bytes, ...] = ()
    connection: int | None = None
    node: str | None = None
    # Counts the actor's socket attaches, on any node: a late announcement of an
    # older attach (or its close) must not undo a newer one (SIG-10).
    generation: int = 0
    last_seen: float = 0.0
    mailbox_backlog: float = 0.0
    pings: int = 0
    offline_since: float | None = None
    # The socket whose close started that grace was on this node: when it runs out, this
    # node tells the others the actor's subscriptions ended.
    grace_here: bool = False
    announced: bool = False
    subscriptions: set[TypeKey] = field(default_factory=set)
    # Peers this actor asked the server for a connection to (SIG-6), each until when
    # it may relay back here although this actor's ACL does not list it (may_relay).
    negotiations: OrderedDict[str, float] = field(default_factory=OrderedDict)
    # SIG-6b: what the actor serves, as it registered it.
    service_spec: ServiceSpec | None = None
    # SIG-6: its socket opened with webrtc_role=answer (it never offers if it can help it).
    answer_only: bool = False
    # SIG-7: credentials expiring at or before this were revoked by an unregister.
    revoked_through: int = 0

    @property
    def live(self) -> bool:
        return self.connection is not None or self.node is not None

    @property
    def local(self) -> bool:
        return self.connection is not None

    @property
    def type_key(self) -> TypeKey:
        return type_key(self.actr_id.type)

    def admits(self, caller: ActrId) -> bool:
        return acl_allows(self.acl, self.actr_id, caller)

    def grant(
        self,
        credential: AIdCredential,
        expires_at: int,
        renewal_token: bytes,
        spent: bytes | None = None,
    ) -> None:
        """A new credential and renewal token. ``spent``: the token this renewal was granted
        on. When that was the newest token, it stays valid until the new one is used (AIS-3:
        one more renewal); every other token of the chain is spent."""
        self.credential = credential
        self.credential_expires_at = expires_at
        spent_hash = token_hash(spent) if spent is not None else None
        newest = self.token_hashes[:1]
        kept = newest if spent_hash is not None and newest == (spent_hash,) else ()
        dropped = tuple(h for h in self.token_hashes if h not in kept)
        self.spent_hashes = (*dropped, *self.spent_hashes)[:MAX_SPENT_TOKENS]
        self.token_hashes = (token_hash(renewal_token), *kept)

    def token_standing(self, token: bytes) -> TokenStanding:
        h = token_hash(token)
        # Every hash compared, always: timing does not tell which one matched.
        valid = [hmac.compare_digest(h, known) for known in self.token_hashes]
        spent = [hmac.compare_digest(h, known) for known in self.spent_hashes]
        if any(valid):
            return TokenStanding.VALID
        return TokenStanding.REUSED if any(spent) else TokenStanding.UNKNOWN

    def revoke_chain(self) -> None:
        """F8: no token of the chain renews any more, no credential issued on it verifies."""
        self.spent_hashes = (*self.token_hashes, *self.spent_hashes)[:MAX_SPENT_TOKENS]
        self.token_hashes = ()
        self.revoke()

    @property
    def chain_revoked(self) -> bool:
        return not self.token_hashes and bool(self.spent_hashes)

    def note_negotiation(self, peer_key: str, until: float) -> None:
        """``peer_key`` may relay its side of a connection this actor asked for, until then."""
        self.negotiations[peer_key] = max(until, self.negotiations.get(peer_key, 0.0))
        self.negotiations.move_to_end(peer_key)
        while len(self.negotiations) > _MAX_NEGOTIATIONS:
            self.negotiations.popitem(last=False)

    def negotiating_with(self, peer_key: str, now: float) -> bool:
        until = self.negotiations.get(peer_key)
        if until is None:
            return False
        if until <= now:
            del self.negotiations[peer_key]
            return False
        return True

    def revoke(self) -> None:
        """SIG-7: every credential issued so far stops opening sockets (renewal still works)."""
        self.revoked_through = max(self.revoked_through, self.credential_expires_at)


class Registry:
    def __init__(self) -> None:
        self._records: dict[str, ActorRecord] = {}
        self._next_serial: dict[int, int] = {}
        self._live_by_type: dict[TypeKey, dict[str, ActorRecord]] = {}
        self._subscribers: dict[TypeKey, set[str]] = {}
        self._local = 0

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[ActorRecord]:
        return iter(list(self._records.values()))

    @property
    def live_count(self) -> int:
        return sum(len(v) for v in self._live_by_type.values())

    @property
    def local_count(self) -> int:
        return self._local

    def get(self, key: str) -> ActorRecord | None:
        return self._records.get(key)

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
        self._records[record.key] = record
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
            self._records[incoming.key] = incoming
            self._saw_serial(incoming.actr_id.realm.realm_id, incoming.actr_id.serial_number)
            for t in incoming.subscriptions:
                self._subscribers.setdefault(t, set()).add(incoming.key)
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
        if record.live:
            self._set_offline(record)
        for t in list(record.subscriptions):
            self.unsubscribe(key, t)
        return record

    # ---- presence ----

    def attach(self, key: str, connection: int, now: float, generation: int | None = None) -> bool:
        """Make ``connection`` the actor's socket here; True when the actor just came live.

        ``generation`` is the attach's number from the cluster; alone, it counts here.
        """
        record = self._records[key]
        came_live = not record.live
        record.generation = record.generation + 1 if generation is None else generation
        if not record.local:
            self._local += 1
        record.connection = connection
        record.node = None
        record.last_seen = now
        record.offline_since = None
        self._live_by_type.setdefault(record.type_key, {})[key] = record
        return came_live

    def attach_remote(self, key: str, node: str, generation: int) -> int | None:
        """The actor's socket is now on ``node``; returns the local connection it replaces."""
        record = self._records[key]
        record.generation = generation
        replaced = record.connection
        if replaced is not None:
            self._local -= 1
        record.connection = None
        record.node = node
        record.offline_since = None
        self._live_by_type.setdefault(record.type_key, {})[key] = record
        return replaced

    def detach(self, key: str, connection: int) -> bool:
        """Drop ``connection``; True when the actor went offline because of it."""
        record = self._records.get(key)
        if record is None or record.connection != connection:
            return False
        self._set_offline(record)
        return True

    def detach_remote(self, key: str, node: str, generation: int | None = None) -> bool:
        record = self._records.get(key)
        if record is None or record.node != node:
            return False
        if generation is not None and generation < record.generation:
            return False
        self._set_offline(record)
        return True

    def on_node(self, node: str) -> list[ActorRecord]:
        return [r for live in self._live_by_type.values() for r in live.values() if r.node == node]

    def remote_nodes(self) -> set[str]:
        return {r.node for live in self._live_by_type.values() for r in live.values() if r.node}

    def _set_offline(self, record: ActorRecord) -> None:
        if record.local:
            self._local -= 1
        record.connection = None
        record.node = None
        live = self._live_by_type.get(record.type_key)
        if live is not None:
            live.pop(record.key, None)
            if not live:
                del self._live_by_type[record.type_key]

    def silent(self, now: float, max_silence: float) -> list[ActorRecord]:
        """Actors on a socket here not heard from for longer than ``max_silence`` (SIG-7)."""
        return [
            r
            for live in self._live_by_type.values()
            for r in live.values()
            if r.local and now - r.last_seen > max_silence
        ]

    def outlived_credential(self, now: float) -> list[ActorRecord]:
        """Actors on a socket here whose newest credential expired (they failed to renew)."""
        return [
            r
            for live in self._live_by_type.values()
            for r in live.values()
            if r.local and r.credential_expires_at <= now
        ]

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

    # ---- actr_up subscriptions ----

    def subscribe(self, subscriber: str, target: TypeKey, cap: int = 0) -> bool:
        """False when the subscriber already has ``cap`` other subscriptions (0: no cap)."""
        record = self._records.get(subscriber)
        if record is None:
            return False
        if cap and target not in record.subscriptions and len(record.subscriptions) >= cap:
            return False
        record.subscriptions.add(target)
        self._subscribers.setdefault(target, set()).add(subscriber)
        return True

    def unsubscribe(self, subscriber: str, target: TypeKey) -> None:
        record = self._records.get(subscriber)
        if record is not None:
            record.subscriptions.discard(target)
        subs = self._subscribers.get(target)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._subscribers[target]

    def watchers(self, record: ActorRecord) -> list[ActorRecord]:
        """Subscribers of the record's type on a socket here that its ACL admits (not itself).

        Each node tells its own subscribers, so an event reaches each one once.
        """
        out: list[ActorRecord] = []
        for key in sorted(self._subscribers.get(record.type_key, ())):
            sub = self._records.get(key)
            if (
                sub is not None
                and sub.local
                and sub.key != record.key
                and record.admits(sub.actr_id)
            ):
                out.append(sub)
        return out
