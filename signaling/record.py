"""One registered actor: its identity, credential, renewal chain and presence (PROTOCOL.md
ID-2, AIS-3, SIG-6, SIG-7, ACL-2). No I/O.

``ActorRecord`` is what the registry (``signaling.registry``) keeps per actor and
what the cluster stores in Redis (``signaling.events.record_fields``). Presence
fields (``connection``, ``node``, ``generation``, ``offline_since``, ...) are
set by the presence index (``signaling.presence_index``) and the dispatcher.

Renewal tokens (AIS-3, F8) form a chain: each renewal hands out a new token. The
token it was granted on stays valid for one more renewal, and only while its
successor has not been used (a daemon that crashed before saving the answer
renews with it again); every older token is spent. A spent token that comes
back means two parties hold the chain: the whole chain is revoked
(``TokenStanding.REUSED``), with every credential issued on it. Tokens are kept
hashed (``token_hash``).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass, field

from actr.acl import acl_allows
from actr.protocol.actr_pb2 import Acl, ActrId, ActrType, AIdCredential, ServiceSpec

__all__ = [
    "MAX_SPENT_TOKENS",
    "NEGOTIATION_TTL_SECS",
    "TOKEN_HASH_LEN",
    "ActorRecord",
    "TokenStanding",
    "TypeKey",
    "token_hash",
    "type_key",
]

TypeKey = tuple[str, str, str]

# Connections an actor asked for that are still being set up (see Registry.may_relay).
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
