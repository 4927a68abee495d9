"""What the server does with each signaling frame (PROTOCOL.md SIG-2 .. SIG-7). No I/O.

The contract, the whole of it:

- In: a frame from an actor's socket (``frame``, or ``rate_limited`` for one over
  the socket's message rate), the news that a socket came or went
  (``connected``, ``disconnected``), the passing of time (``sweep``), a revoked
  renewal chain (``chain_revoked``), and what other nodes announced (``apply``,
  ``node_lost``). Every call takes ``now``; nothing reads a clock.
- Out: a list of actions (``signaling.actions``), carried out in order by the
  hub: ``Deliver`` bytes to an actor's socket here, ``Forward`` them to the node
  that holds it, ``Disconnect`` a socket, ``Announce`` a change of shared state
  to the other nodes. The registry (``signaling.registry``) is the state it
  reads and changes.

A frame is decoded once (a malformed one is answered DECODE_FAILURE); an
``actr_to_server`` or ``actr_relay`` must carry the socket's own ``source`` and
a credential of it (SIG-3, else UNAUTHENTICATED); ``envelope_error`` is logged,
never answered; any other flow is refused. The work is split by job:

- ``signaling.presence``: sockets, expiry, the reconnect grace, up/down events,
  what other nodes announce (SIG-7, SIG-10);
- ``signaling.actr_to_server``: the requests an actor asks the server (SIG-3,
  SIG-4, SIG-6a, SIG-6b, unregister);
- ``signaling.relay``: relay between actors and role assignment (SIG-5, SIG-6,
  ACL-2).
"""

from __future__ import annotations

import logging

from actr.errors import ErrorCode
from actr.protocol.actr_pb2 import ActrId, AIdCredential
from actr.protocol.signaling_pb2 import SignalingEnvelope
from actr.wire import CLOSE_POLICY
from signaling.actions import Action, Announce, Deliver, Disconnect, Forward
from signaling.actr_to_server import DEFAULT_CANDIDATES, MAX_CANDIDATES, ActrToServer
from signaling.config_limits import Limits
from signaling.credentials import CredentialAuthority, CredentialError
from signaling.envelopes import (
    EnvelopeDecodeError,
    decode_envelope,
    envelope_error,
    error_to_actr,
)
from signaling.events import Event
from signaling.inbound import clip
from signaling.presence import Presence
from signaling.record import ActorRecord
from signaling.registry import Registry
from signaling.relay import Relay, offerer_is_asker
from signaling.stats import Stats

__all__ = [
    "DEFAULT_CANDIDATES",
    "MAX_CANDIDATES",
    "Action",
    "Announce",
    "Deliver",
    "Disconnect",
    "Dispatcher",
    "Forward",
    "offerer_is_asker",
]

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        registry: Registry,
        authority: CredentialAuthority,
        stats: Stats,
        heartbeat_interval_secs: int,
        grace_secs: float = 30.0,
        node: str = "local",
        limits: Limits | None = None,
    ) -> None:
        self.registry = registry
        self.authority = authority
        self.stats = stats
        limits = limits if limits is not None else Limits()
        self.presence = Presence(registry, stats, heartbeat_interval_secs, grace_secs, node, limits)
        self.requests = ActrToServer(
            registry, authority, stats, self.presence, heartbeat_interval_secs, limits
        )
        self.relay = Relay(registry, stats)

    @property
    def grace_secs(self) -> float:
        """SIG-7: how long a closed socket's actor may come back before its down event."""
        return self.presence.grace_secs

    @grace_secs.setter
    def grace_secs(self, value: float) -> None:
        self.presence.grace_secs = value

    # ---- sockets and time (signaling.presence) ----

    def connected(
        self,
        key: str,
        connection: int,
        now: float,
        generation: int | None = None,
        answer_only: bool = False,
    ) -> list[Action]:
        """A socket of ``key`` opened here; ``generation`` numbers it across nodes;
        ``answer_only``: it opened with ``webrtc_role=answer`` (SIG-6)."""
        return self.presence.connected(key, connection, now, generation, answer_only)

    def disconnected(self, key: str, connection: int, now: float) -> list[Action]:
        """SIG-7: not live from now on; the down event waits for the reconnect grace."""
        return self.presence.disconnected(key, connection, now)

    def sweep(self, now: float) -> list[Action]:
        """SIG-7: expire silent actors, announce the down of those whose grace ran out,
        close sockets that outlived their credential, forget lapsed registrations."""
        return self.presence.sweep(now)

    def chain_revoked(self, key: str) -> list[Action]:
        """F8: the actor's renewal chain was revoked (a spent token came back): its
        socket here, if any, speaks for someone who may not be its owner."""
        return self.presence.chain_revoked(key)

    def apply(self, event: Event, now: float) -> list[Action]:
        """Another node's change (SIG-10), taken into this node's view; events for
        subscribers here."""
        return self.presence.apply(event, now)

    def node_lost(self, node: str, now: float) -> list[Action]:
        """A node stopped refreshing its liveness key: its sockets are gone, as if closed."""
        return self.presence.node_lost(node, now)

    # ---- frames ----

    def rate_limited(self, key: str, data: bytes) -> list[Action]:
        """SIG-9: a frame over the connection's message rate, answered and not handled."""
        self.stats.reject("rate_limited")
        env = SignalingEnvelope()
        try:
            env.ParseFromString(data)
        except Exception:
            env.Clear()
        return [
            Deliver(
                key,
                envelope_error(
                    ErrorCode.RESOURCE_EXHAUSTED,
                    "message rate limit exceeded, slow down",
                    env.envelope_id,
                ),
            )
        ]

    def frame(self, key: str, data: bytes, now: float) -> list[Action]:
        """One binary frame from the socket of actor ``key``."""
        self.stats.frames_in += 1
        record = self.registry.get(key)
        if record is None:
            # Unregistered while frames were still in flight: nobody to speak for.
            return [Disconnect(key, CLOSE_POLICY, "actor is not registered")]
        try:
            env = decode_envelope(data)
        except EnvelopeDecodeError as e:
            self.stats.reject("decode_failure")
            log.info("envelope_undecodable actor=%s size=%d error=%s", key, len(data), e)
            return [Deliver(key, envelope_error(ErrorCode.DECODE_FAILURE, str(e), e.envelope_id))]
        flow = env.WhichOneof("flow")
        if flow == "actr_to_server":
            body = env.actr_to_server
            refused = self._authenticate(record, body.source, body.credential, now)
            if refused is not None:
                return self._refuse(record, env, refused)
            return self.requests.handle(record, env, now)
        if flow == "actr_relay":
            relay = env.actr_relay
            refused = self._authenticate(record, relay.source, relay.credential, now)
            if refused is not None:
                return self._refuse(record, env, refused)
            return self.relay.handle(record, env, data, now)
        if flow == "envelope_error":
            # Never answer an error with an error: two peers could loop forever.
            err = env.envelope_error
            log.warning(
                "client_envelope_error actor=%s code=%d message=%s reply_for=%s",
                key,
                err.code,
                clip(err.message),
                clip(env.reply_for),
            )
            return []
        if flow == "peer_to_server":
            self.stats.reject("unsupported_flow")
            code, message = ErrorCode.NOT_IMPLEMENTED, "peer_to_server is not supported"
        else:
            self.stats.reject("invalid_flow")
            code = ErrorCode.INVALID_ARGUMENT
            message = "no flow" if flow is None else f"flow {flow} is not accepted from a client"
        return [Deliver(key, envelope_error(code, message, env.envelope_id))]

    def _authenticate(
        self, record: ActorRecord, source: ActrId, credential: AIdCredential, now: float
    ) -> str | None:
        """SIG-3: None when ``source`` and ``credential`` are the socket's own, else why not."""
        if source != record.actr_id:
            return "source_mismatch"
        # The credential issued last is the usual case: equal message, no signature check.
        if credential == record.credential:
            return None if record.credential_expires_at > now else "credential_expired"
        try:
            claims = self.authority.verify(credential, now)
        except CredentialError as e:
            return f"credential_{e.reason}"
        if claims.actor_id != record.key or claims.realm_id != record.actr_id.realm.realm_id:
            return "credential_other_actor"
        if claims.expires_at <= record.revoked_through:
            return "credential_revoked"
        return None

    def _refuse(self, record: ActorRecord, env: SignalingEnvelope, reason: str) -> list[Action]:
        self.stats.reject(f"unauthenticated_{reason}")
        log.warning(
            "envelope_unauthenticated actor=%s reason=%s flow=%s",
            record.key,
            reason,
            env.WhichOneof("flow"),
        )
        message = (
            "source is not this socket's actor"
            if reason == "source_mismatch"
            else "credential is not a valid credential of this socket's actor"
        )
        return [
            Deliver(
                record.key,
                error_to_actr(record.actr_id, ErrorCode.UNAUTHENTICATED, message, env.envelope_id),
            )
        ]
