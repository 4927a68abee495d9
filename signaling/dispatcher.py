"""What the server does with each signaling frame (PROTOCOL.md SIG-2 .. SIG-7). No I/O.

The socket layer hands in a frame from an actor's socket, or the news that a
socket came or went, and gets back actions: bytes to deliver to an actor's
socket here or to forward to the node that holds it, a socket to close, or a
change of shared state to announce to the other nodes. The cluster hands in
what other nodes announced (``apply``). Time is passed in, so presence expiry
and the reconnect grace are tested without waiting.

Presence (SIG-7): a socket that closes takes its actor out of route candidates
and relay at once; subscribers hear ``actr_down_event`` only when it has not
come back within ``grace_secs`` (a reconnect within the grace sends no event at
all). Missing 3 ping intervals, unregistering, or outliving the credential
takes the actor down at once. An actor's ``actr_up`` subscriptions live as long
as its presence: a reconnect within the grace keeps them, and they end when its
down is announced (the node that held the socket tells the others).

Inbound requests are checked against the size limits of ``signaling.inbound``
(F3) before anything of them is kept or logged; subscriptions are capped per
actor (``max_subscriptions``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from actr.errors import ErrorCode
from actr.identity import IdentityError, id_text, role_key
from actr.protocol.actr_pb2 import ActrId, AIdCredential, ErrorResponse, ServiceSpec
from actr.protocol.signaling_pb2 import (
    ActrDownEvent,
    ActrRelay,
    ActrToSignaling,
    ActrUpEvent,
    GetSigningKeyResponse,
    Pong,
    SignalingEnvelope,
    SignalingToActr,
    SubscribeActrUpResponse,
    UnregisterResponse,
    UnsubscribeActrUpResponse,
)
from actr.protocol.webrtc_pb2 import RoleAssignment
from actr.wire import CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY
from signaling.config_limits import Limits
from signaling.credentials import CredentialAuthority, CredentialError
from signaling.envelopes import (
    EnvelopeDecodeError,
    decode_envelope,
    envelope_error,
    error_to_actr,
    relay_from_server,
    to_actr,
)
from signaling.events import (
    Backlog,
    Contact,
    Event,
    Granted,
    Offline,
    Online,
    Subscription,
)
from signaling.inbound import clip, request_problem
from signaling.registry import NEGOTIATION_TTL_SECS, ActorRecord, Registry, type_key
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
]

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES = 16
# Keeps a route_candidates answer far below the 1 MiB frame limit.
MAX_CANDIDATES = 1024
# SIG-7: an actor that missed this many ping intervals is taken offline.
MISSED_PINGS = 3


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send ``data`` (one encoded SignalingEnvelope) on the socket of actor ``to``."""

    to: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the socket of actor ``to`` after what was delivered to it before."""

    to: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Forward:
    """Hand ``data`` to node ``node``, which delivers it on the socket of actor ``to``."""

    node: str
    to: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell the other nodes of a change of shared state (a no-op with one node)."""

    event: Event


Action = Deliver | Disconnect | Forward | Announce


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
        self.heartbeat_interval_secs = heartbeat_interval_secs
        self.grace_secs = grace_secs
        self.node = node
        self.limits = limits if limits is not None else Limits()

    # ---- socket lifecycle ----

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
        record = self.registry.get(key)
        if record is None:
            return [Disconnect(key, CLOSE_POLICY, "actor is not registered")]
        came_live = self.registry.attach(key, connection, now, generation)
        record.answer_only = answer_only
        log.info(
            "actor_connected actor=%s connection=%d came_live=%s generation=%d",
            key,
            connection,
            came_live,
            record.generation,
        )
        actions: list[Action] = [Announce(Online(key, self.node, record.generation, answer_only))]
        if not record.announced:
            actions.extend(self._up(record))
        return actions

    def disconnected(self, key: str, connection: int, now: float) -> list[Action]:
        """SIG-7: not live from now on; the down event waits for the reconnect grace."""
        record = self.registry.get(key)
        if record is None or not self.registry.detach(key, connection):
            return []
        log.info(
            "actor_offline actor=%s connection=%d grace_secs=%s", key, connection, self.grace_secs
        )
        actions: list[Action] = [
            Announce(Offline(key, self.node, grace=True, generation=record.generation))
        ]
        if self.grace_secs > 0:
            record.offline_since = now
            record.grace_here = True
        else:
            actions.extend(self._down(record, announce=True))
        return actions

    def sweep(self, now: float) -> list[Action]:
        """SIG-7: expire silent actors, announce the down of those whose grace ran out,
        close sockets that outlived their credential, forget lapsed registrations."""
        actions: list[Action] = []
        max_silence = MISSED_PINGS * self.heartbeat_interval_secs
        for record in self.registry.silent(now, max_silence):
            self.stats.presence_expired += 1
            log.info(
                "actor_presence_expired actor=%s silent_secs=%.0f",
                record.key,
                now - record.last_seen,
            )
            actions.extend(self._take_offline(record, CLOSE_GOING_AWAY, "no ping received"))
        for record in self.registry.outlived_credential(now):
            self.stats.reject("credential_outlived")
            log.info("actor_credential_outlived actor=%s", record.key)
            actions.extend(self._take_offline(record, CLOSE_POLICY, "credential expired"))
        for record in self.registry.grace_over(now, self.grace_secs):
            log.info("actor_grace_over actor=%s", record.key)
            actions.extend(self._down(record, announce=record.grace_here))
        for record in self.registry.lapsed(now):
            self.registry.forget(record.key)
            log.info("actor_registration_lapsed actor=%s", record.key)
        return actions

    def _take_offline(self, record: ActorRecord, code: int, reason: str) -> list[Action]:
        """Offline at once, down event at once, then close the socket."""
        actions: list[Action] = []
        if record.connection is not None:
            self.registry.detach(record.key, record.connection)
            actions.append(
                Announce(Offline(record.key, self.node, grace=False, generation=record.generation))
            )
        actions.extend(self._down(record, announce=True))
        actions.append(Disconnect(record.key, code, reason))
        return actions

    def chain_revoked(self, key: str) -> list[Action]:
        """F8: the actor's renewal chain was revoked (a spent token came back): its
        socket here, if any, speaks for someone who may not be its owner."""
        record = self.registry.get(key)
        if record is None or not record.local:
            return []
        self.stats.reject("socket_chain_revoked")
        return self._take_offline(record, CLOSE_POLICY, "renewal token reused: register again")

    # ---- what other nodes announce (SIG-10) ----

    def apply(self, event: Event, now: float) -> list[Action]:
        """Another node's change, taken into this node's view; events for subscribers here."""
        if isinstance(event, Granted):
            # The cluster read the registration and merged it; one whose renewal chain
            # another node revoked loses its socket here (F8).
            return self.chain_revoked(event.key) if self._revoked(event.key) else []
        if isinstance(event, Contact):
            source = self.registry.get(event.source)
            if source is not None:
                source.note_negotiation(event.target, event.until)
            return []
        record = self.registry.get(event.key)
        if record is None:
            return []
        actions: list[Action] = []
        if isinstance(event, Online):
            if event.generation <= record.generation:
                # An older attach than the one known here (it may be this node's own).
                log.info("stale_online_ignored actor=%s node=%s", event.key, event.node)
                return []
            replaced = self.registry.attach_remote(event.key, event.node, event.generation)
            record.answer_only = event.answer_only
            if replaced is not None:
                log.info("socket_moved actor=%s node=%s", event.key, event.node)
                actions.append(
                    Disconnect(event.key, CLOSE_NORMAL, "replaced by a connection on another node")
                )
            if not record.announced:
                actions.extend(self._up(record))
        elif isinstance(event, Offline):
            if self.registry.detach_remote(event.key, event.node, event.generation):
                if event.grace and self.grace_secs > 0:
                    record.offline_since = now
                else:
                    actions.extend(self._down(record, announce=False))
        elif isinstance(event, Backlog):
            record.mailbox_backlog = event.value
        elif isinstance(event, Subscription):
            if event.on:
                self.registry.subscribe(event.key, event.target, self.limits.max_subscriptions)
            else:
                self.registry.unsubscribe(event.key, event.target)
        return actions

    def node_lost(self, node: str, now: float) -> list[Action]:
        """A node stopped refreshing its liveness key: its sockets are gone, as if closed."""
        actions: list[Action] = []
        for record in self.registry.on_node(node):
            self.registry.detach_remote(record.key, node)
            if self.grace_secs > 0:
                record.offline_since = now
                # Nobody else is left to tell the others its subscriptions ended.
                record.grace_here = True
            else:
                actions.extend(self._down(record, announce=True))
        return actions

    def _revoked(self, key: str) -> bool:
        record = self.registry.get(key)
        return record is not None and record.chain_revoked

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

    # ---- frames ----

    def frame(self, key: str, data: bytes, now: float) -> list[Action]:
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
            return self._actr_to_server(record, env, now)
        if flow == "actr_relay":
            return self._relay(record, env, data, now)
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
            return [
                self._envelope_error(
                    key, env, ErrorCode.NOT_IMPLEMENTED, "peer_to_server is not supported"
                )
            ]
        self.stats.reject("invalid_flow")
        what = "no flow" if flow is None else f"flow {flow} is not accepted from a client"
        return [self._envelope_error(key, env, ErrorCode.INVALID_ARGUMENT, what)]

    def _envelope_error(
        self, key: str, env: SignalingEnvelope, code: ErrorCode, message: str
    ) -> Deliver:
        return Deliver(key, envelope_error(code, message, env.envelope_id))

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

    # ---- actr_to_server ----

    def _actr_to_server(
        self, record: ActorRecord, env: SignalingEnvelope, now: float
    ) -> list[Action]:
        body = env.actr_to_server
        refused = self._authenticate(record, body.source, body.credential, now)
        if refused is not None:
            return self._refuse(record, env, refused)
        reply_for = env.envelope_id
        answer = SignalingToActr(target=record.actr_id)
        kind = body.WhichOneof("payload")
        extra: list[Action] = []
        problem = request_problem(body, self.limits)
        if problem is not None:
            # F3: nothing of an oversized request is kept, logged or looked up.
            self.stats.reject("field_too_large")
            log.info("request_refused actor=%s reason=field_too_large flow=%s", record.key, kind)
            answer.error.CopyFrom(
                ErrorResponse(code=int(ErrorCode.INVALID_ARGUMENT), message=problem)
            )
            return [Deliver(record.key, to_actr(answer, reply_for))]
        if kind == "ping":
            extra = self._ping(record, body, answer, now)
        elif kind == "route_candidates_request":
            req = body.route_candidates_request
            asked = req.criteria.candidate_count if req.HasField("criteria") else 0
            cap = min(asked, MAX_CANDIDATES) if asked > 0 else DEFAULT_CANDIDATES
            found = self.registry.route_candidates(record.actr_id, req.target_type, cap)
            answer.route_candidates_response.success.candidates.extend(found)
        elif kind == "discovery_request":
            req_d = body.discovery_request
            ok = answer.discovery_response.success
            for actr_type, service in self.registry.live_types(
                record.actr_id, req_d.manufacturer, req_d.limit
            ):
                entry = ok.entries.add()
                entry.actr_type.CopyFrom(actr_type)
                if service:
                    entry.name = service
        elif kind == "subscribe_actr_up_request":
            target = type_key(body.subscribe_actr_up_request.target_type)
            if self.registry.subscribe(record.key, target, self.limits.max_subscriptions):
                extra = [Announce(Subscription(record.key, target, on=True))]
                answer.subscribe_actr_up_response.success.CopyFrom(
                    SubscribeActrUpResponse.SubscribeOk()
                )
            else:
                self.stats.reject("subscriptions_exceeded")
                log.info(
                    "subscribe_refused actor=%s reason=subscriptions_exceeded limit=%d",
                    record.key,
                    self.limits.max_subscriptions,
                )
                answer.subscribe_actr_up_response.error.CopyFrom(
                    ErrorResponse(
                        code=int(ErrorCode.RESOURCE_EXHAUSTED),
                        message=f"at most {self.limits.max_subscriptions} subscriptions",
                    )
                )
        elif kind == "unsubscribe_actr_up_request":
            target = type_key(body.unsubscribe_actr_up_request.target_type)
            self.registry.unsubscribe(record.key, target)
            extra = [Announce(Subscription(record.key, target, on=False))]
            answer.unsubscribe_actr_up_response.success.CopyFrom(
                UnsubscribeActrUpResponse.UnsubscribeOk()
            )
        elif kind == "get_signing_key_request":
            key_id = body.get_signing_key_request.key_id
            if key_id != self.authority.key_id:
                self.stats.reject("signing_key_unknown")
                answer.error.CopyFrom(
                    ErrorResponse(
                        code=int(ErrorCode.NOT_FOUND), message=f"no signing key with id {key_id}"
                    )
                )
            else:
                answer.get_signing_key_response.CopyFrom(
                    GetSigningKeyResponse(key_id=key_id, pubkey=self.authority.public_key_raw)
                )
        elif kind == "get_service_spec_request":
            name = body.get_service_spec_request.name
            spec = self._service_spec(record, name)
            if spec is None:
                answer.get_service_spec_response.error.CopyFrom(
                    ErrorResponse(
                        code=int(ErrorCode.NOT_FOUND), message=f"no service spec named {name!r}"
                    )
                )
            else:
                answer.get_service_spec_response.success.CopyFrom(spec)
        elif kind == "unregister_request":
            return self._unregister(record, body, reply_for)
        elif kind == "error":
            err = body.error
            log.warning(
                "client_error actor=%s code=%d message=%s", record.key, err.code, clip(err.message)
            )
            return []
        else:
            self.stats.reject("invalid_payload")
            answer.error.CopyFrom(
                ErrorResponse(
                    code=int(ErrorCode.INVALID_ARGUMENT),
                    message="actr_to_server carries no request the server knows",
                )
            )
        return [Deliver(record.key, to_actr(answer, reply_for)), *extra]

    def _ping(
        self, record: ActorRecord, body: ActrToSignaling, answer: SignalingToActr, now: float
    ) -> list[Action]:
        record.pings += 1
        record.last_seen = now
        answer.pong.CopyFrom(
            Pong(seq=record.pings, suggest_interval_secs=self.heartbeat_interval_secs)
        )
        if body.ping.HasField("mailbox_backlog"):
            backlog = max(0.0, body.ping.mailbox_backlog)
            if backlog != record.mailbox_backlog:
                record.mailbox_backlog = backlog
                return [Announce(Backlog(record.key, backlog))]
        return []

    def _unregister(
        self, record: ActorRecord, body: ActrToSignaling, reply_for: str
    ) -> list[Action]:
        """Offline and announced down at once; the identity stays renewable (a restarted
        daemon resumes it) until its newest credential expires."""
        answer = SignalingToActr(target=record.actr_id)
        answer.unregister_response.success.CopyFrom(UnregisterResponse.UnregisterOk())
        actions: list[Action] = [Deliver(record.key, to_actr(answer, reply_for))]
        # SIG-7: it stays down; its credentials open no socket until it renews.
        record.revoke()
        for target in sorted(record.subscriptions):
            self.registry.unsubscribe(record.key, target)
            actions.append(Announce(Subscription(record.key, target, on=False)))
        # Before the close: once unregistered, no route leads here.
        actions.extend(self._take_offline(record, CLOSE_NORMAL, "unregistered"))
        log.info(
            "actor_unregistered actor=%s reason=%s",
            record.key,
            clip(body.unregister_request.reason),
        )
        return actions

    # ---- actr_relay ----

    def _service_spec(self, requester: ActorRecord, name: str) -> ServiceSpec | None:
        """SIG-6b: the spec named ``name`` of a registered actor that admits ``requester``,
        the live one with the lowest serial first."""
        best: ActorRecord | None = None
        for r in self.registry:
            if r.service_spec is None or r.service_spec.name != name:
                continue
            if not r.admits(requester.actr_id):
                continue
            rank = (not r.live, r.actr_id.serial_number)
            if best is None or rank < (not best.live, best.actr_id.serial_number):
                best = r
        return None if best is None else best.service_spec

    def _relay(
        self, record: ActorRecord, env: SignalingEnvelope, data: bytes, now: float
    ) -> list[Action]:
        relay = env.actr_relay
        refused = self._authenticate(record, relay.source, relay.credential, now)
        if refused is not None:
            return self._refuse(record, env, refused)
        try:
            target_key = id_text(relay.target)
        except IdentityError:
            target_key = ""
        target = self.registry.get(target_key) if target_key else None
        found = target is not None and target.live and target.actr_id == relay.target
        if target is None or not found:
            self.stats.reject("relay_not_found")
            return [self._relay_unreachable(record, env, target_key)]
        if not self.registry.may_relay(record, target, now):
            self.stats.reject("relay_denied")
            log.info("relay_denied source=%s target=%s", record.key, target_key)
            # F12: the same answer as for an absent actor, so a refused source cannot
            # tell a protected actor's liveness.
            return [self._relay_unreachable(record, env, target_key)]
        if relay.WhichOneof("payload") == "role_negotiation":
            return self._assign_roles(record, target, env, now)
        self.stats.relays += 1
        # SIG-5: the very bytes received, so fields this server does not know survive.
        return [self._to(target, data)]

    def _relay_unreachable(
        self, record: ActorRecord, env: SignalingEnvelope, target_key: str
    ) -> Deliver:
        return Deliver(
            record.key,
            error_to_actr(
                record.actr_id,
                ErrorCode.NOT_FOUND,
                f"actor {target_key or '<invalid id>'} is not reachable",
                env.envelope_id,
            ),
        )

    def _to(self, target: ActorRecord, data: bytes) -> Action:
        """Bytes for ``target``'s socket, here or on the node that holds it."""
        if target.node is not None:
            self.stats.relays_forwarded += 1
            return Forward(target.node, target.key, data)
        return Deliver(target.key, data)

    def _assign_roles(
        self, record: ActorRecord, target: ActorRecord, env: SignalingEnvelope, now: float
    ) -> list[Action]:
        """SIG-6: the server decides who offers and tells both sides; nothing is forwarded."""
        neg = env.actr_relay.role_negotiation
        if getattr(neg, "from") != record.actr_id or neg.to != target.actr_id:
            self.stats.reject("role_negotiation_mismatch")
            return [
                self._envelope_error(
                    record.key,
                    env,
                    ErrorCode.INVALID_ARGUMENT,
                    "role_negotiation must name this socket's actor as from and the target as to",
                )
            ]
        asker_offers = offerer_is_asker(record, target)
        until = now + NEGOTIATION_TTL_SECS
        record.note_negotiation(target.key, until)
        self.stats.role_assignments += 1
        log.info(
            "roles_assigned asker=%s peer=%s asker_offers=%s", record.key, target.key, asker_offers
        )

        def assignment(is_offerer: bool) -> ActrRelay:
            # source/target as actrix writes them (the asker, the peer) on both copies; the
            # credential field is required but the asker's own must not reach the peer.
            out = ActrRelay(source=record.actr_id, target=target.actr_id)
            out.credential.SetInParent()
            out.credential.key_id = 0
            out.credential.claims = b""
            out.credential.signature = b""
            out.role_assignment.CopyFrom(RoleAssignment(is_offerer=is_offerer))
            return out

        return [
            Announce(Contact(record.key, target.key, until)),
            Deliver(record.key, relay_from_server(assignment(asker_offers), env.envelope_id)),
            self._to(target, relay_from_server(assignment(not asker_offers))),
        ]

    # ---- presence events ----

    def _up(self, record: ActorRecord) -> list[Action]:
        record.announced = True
        return self._presence_events(record, up=True)

    def _down(self, record: ActorRecord, *, announce: bool) -> list[Action]:
        """Subscribers hear it is down; its own subscriptions end with its presence
        (F3). ``announce``: this node tells the others they ended."""
        record.offline_since = None
        record.grace_here = False
        actions: list[Action] = []
        for target in sorted(record.subscriptions):
            self.registry.unsubscribe(record.key, target)
            if announce:
                actions.append(Announce(Subscription(record.key, target, on=False)))
        if not record.announced:
            return actions
        record.announced = False
        log.info("actor_down actor=%s", record.key)
        return [*actions, *self._presence_events(record, up=False)]

    def _presence_events(self, record: ActorRecord, *, up: bool) -> list[Action]:
        actions: list[Action] = []
        for sub in self.registry.watchers(record):
            event = SignalingToActr(target=sub.actr_id)
            if up:
                event.actr_up_event.CopyFrom(ActrUpEvent(actor_id=record.actr_id))
            else:
                event.actr_down_event.CopyFrom(ActrDownEvent(actor_id=record.actr_id))
            actions.append(Deliver(sub.key, to_actr(event)))
        return actions


def offerer_is_asker(asker: ActorRecord, peer: ActorRecord) -> bool:
    """SIG-6: whether the side that asked for the connection offers.

    A side whose socket opened with ``webrtc_role=answer`` answers when the other
    did not; otherwise the larger role key offers.
    """
    if asker.answer_only != peer.answer_only:
        return peer.answer_only
    return role_key(asker.actr_id) > role_key(peer.actr_id)
