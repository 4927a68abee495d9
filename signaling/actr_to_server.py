"""What the server answers to an actor's ``actr_to_server`` requests (PROTOCOL.md
SIG-3, SIG-4, SIG-6a, SIG-6b, SIG-7). No I/O: time is passed in.

The dispatcher hands in a request whose ``source`` and ``credential`` are already
the socket's own (SIG-3). Each is checked against the size limits of
``signaling.inbound`` (F3) before anything of it is kept, logged or looked up,
then answered with one ``server_to_actr`` envelope whose ``reply_for`` is the
request's id: a pong, route candidates, discovery entries, a subscription
(capped per actor: ``max_subscriptions``) or its end, a signing key, a service
spec. An ``unregister_request`` takes the actor offline and announced down at
once, its credentials revoked; an ``error`` from the client is logged, never
answered.
"""

from __future__ import annotations

import logging

from actr.errors import ErrorCode
from actr.protocol.actr_pb2 import ErrorResponse, ServiceSpec
from actr.protocol.signaling_pb2 import (
    ActrToSignaling,
    GetSigningKeyResponse,
    Pong,
    SignalingEnvelope,
    SignalingToActr,
    SubscribeActrUpResponse,
    UnregisterResponse,
    UnsubscribeActrUpResponse,
)
from actr.wire import CLOSE_NORMAL
from signaling.actions import Action, Announce, Deliver
from signaling.config_limits import Limits
from signaling.credentials import CredentialAuthority
from signaling.envelopes import to_actr
from signaling.events import Backlog, Subscription
from signaling.inbound import clip, request_problem
from signaling.presence import Presence
from signaling.record import ActorRecord, type_key
from signaling.registry import Registry
from signaling.stats import Stats

__all__ = ["DEFAULT_CANDIDATES", "MAX_CANDIDATES", "ActrToServer"]

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES = 16
# Keeps a route_candidates answer far below the 1 MiB frame limit.
MAX_CANDIDATES = 1024


class ActrToServer:
    def __init__(
        self,
        registry: Registry,
        authority: CredentialAuthority,
        stats: Stats,
        presence: Presence,
        heartbeat_interval_secs: int,
        limits: Limits,
    ) -> None:
        self.registry = registry
        self.authority = authority
        self.stats = stats
        self.presence = presence
        self.heartbeat_interval_secs = heartbeat_interval_secs
        self.limits = limits

    def handle(self, record: ActorRecord, env: SignalingEnvelope, now: float) -> list[Action]:
        """The actions for one authenticated ``actr_to_server`` envelope of ``record``."""
        body = env.actr_to_server
        reply_for = env.envelope_id
        answer = SignalingToActr(target=record.actr_id)
        kind = body.WhichOneof("payload")
        problem = request_problem(body, self.limits)
        if problem is not None:
            # F3: nothing of an oversized request is kept, logged or looked up.
            self.stats.reject("field_too_large")
            log.info("request_refused actor=%s reason=field_too_large flow=%s", record.key, kind)
            answer.error.CopyFrom(
                ErrorResponse(code=int(ErrorCode.INVALID_ARGUMENT), message=problem)
            )
            return [Deliver(record.key, to_actr(answer, reply_for))]
        if kind == "unregister_request":
            return self._unregister(record, body, reply_for)
        if kind == "error":
            err = body.error
            log.warning(
                "client_error actor=%s code=%d message=%s", record.key, err.code, clip(err.message)
            )
            return []
        extra: list[Action] = []
        if kind == "ping":
            extra = self._ping(record, body, answer, now)
        elif kind == "route_candidates_request":
            self._route_candidates(record, body, answer)
        elif kind == "discovery_request":
            self._discovery(record, body, answer)
        elif kind == "subscribe_actr_up_request":
            extra = self._subscribe(record, body, answer)
        elif kind == "unsubscribe_actr_up_request":
            target = type_key(body.unsubscribe_actr_up_request.target_type)
            self.registry.unsubscribe(record.key, target)
            extra = [Announce(Subscription(record.key, target, on=False))]
            answer.unsubscribe_actr_up_response.success.CopyFrom(
                UnsubscribeActrUpResponse.UnsubscribeOk()
            )
        elif kind == "get_signing_key_request":
            self._signing_key(body, answer)
        elif kind == "get_service_spec_request":
            self._service_spec(record, body, answer)
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

    def _route_candidates(
        self, record: ActorRecord, body: ActrToSignaling, answer: SignalingToActr
    ) -> None:
        req = body.route_candidates_request
        asked = req.criteria.candidate_count if req.HasField("criteria") else 0
        cap = min(asked, MAX_CANDIDATES) if asked > 0 else DEFAULT_CANDIDATES
        found = self.registry.route_candidates(record.actr_id, req.target_type, cap)
        answer.route_candidates_response.success.candidates.extend(found)

    def _discovery(
        self, record: ActorRecord, body: ActrToSignaling, answer: SignalingToActr
    ) -> None:
        req = body.discovery_request
        ok = answer.discovery_response.success
        for actr_type, service in self.registry.live_types(
            record.actr_id, req.manufacturer, req.limit
        ):
            entry = ok.entries.add()
            entry.actr_type.CopyFrom(actr_type)
            if service:
                entry.name = service

    def _subscribe(
        self, record: ActorRecord, body: ActrToSignaling, answer: SignalingToActr
    ) -> list[Action]:
        target = type_key(body.subscribe_actr_up_request.target_type)
        cap = self.limits.max_subscriptions
        if self.registry.subscribe(record.key, target, cap):
            answer.subscribe_actr_up_response.success.CopyFrom(
                SubscribeActrUpResponse.SubscribeOk()
            )
            return [Announce(Subscription(record.key, target, on=True))]
        self.stats.reject("subscriptions_exceeded")
        log.info(
            "subscribe_refused actor=%s reason=subscriptions_exceeded limit=%d", record.key, cap
        )
        answer.subscribe_actr_up_response.error.CopyFrom(
            ErrorResponse(
                code=int(ErrorCode.RESOURCE_EXHAUSTED), message=f"at most {cap} subscriptions"
            )
        )
        return []

    def _signing_key(self, body: ActrToSignaling, answer: SignalingToActr) -> None:
        """SIG-6a."""
        key_id = body.get_signing_key_request.key_id
        if key_id != self.authority.key_id:
            self.stats.reject("signing_key_unknown")
            answer.error.CopyFrom(
                ErrorResponse(
                    code=int(ErrorCode.NOT_FOUND), message=f"no signing key with id {key_id}"
                )
            )
            return
        answer.get_signing_key_response.CopyFrom(
            GetSigningKeyResponse(key_id=key_id, pubkey=self.authority.public_key_raw)
        )

    def _service_spec(
        self, requester: ActorRecord, body: ActrToSignaling, answer: SignalingToActr
    ) -> None:
        """SIG-6b: the spec named so of a registered actor that admits ``requester``,
        the live one with the lowest serial first."""
        name = body.get_service_spec_request.name
        best: ActorRecord | None = None
        for r in self.registry:
            if r.service_spec is None or r.service_spec.name != name:
                continue
            if not r.admits(requester.actr_id):
                continue
            rank = (not r.live, r.actr_id.serial_number)
            if best is None or rank < (not best.live, best.actr_id.serial_number):
                best = r
        spec: ServiceSpec | None = None if best is None else best.service_spec
        if spec is None:
            answer.get_service_spec_response.error.CopyFrom(
                ErrorResponse(
                    code=int(ErrorCode.NOT_FOUND), message=f"no service spec named {name!r}"
                )
            )
        else:
            answer.get_service_spec_response.success.CopyFrom(spec)

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
        actions.extend(self.presence.take_offline(record, CLOSE_NORMAL, "unregistered"))
        log.info(
            "actor_unregistered actor=%s reason=%s",
            record.key,
            clip(body.unregister_request.reason),
        )
        return actions
