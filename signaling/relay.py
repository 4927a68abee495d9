"""Relay between actors and the roles of a connection (PROTOCOL.md SIG-5, SIG-6,
ACL-2). No I/O: time is passed in.

The dispatcher hands in an authenticated ``actr_relay``. It goes to its target
only if the target is live (here, or on another node: ``Forward``) and its ACL
admits the source, or the target asked for a connection to the source a moment
ago (``Registry.may_relay``); otherwise the source hears NOT_FOUND, the same
answer for a refused source as for an absent actor (F12). The very bytes
received are forwarded, so fields this server does not know survive (SIG-5).

A ``role_negotiation`` is not forwarded: the server decides who offers and
sends a ``role_assignment`` to both sides (SIG-6, ``offerer_is_asker``), and
lets the peer relay back to the asker for ``NEGOTIATION_TTL_SECS``.
"""

from __future__ import annotations

import logging

from actr.errors import ErrorCode
from actr.identity import IdentityError, id_text, role_key
from actr.protocol.signaling_pb2 import ActrRelay, SignalingEnvelope
from actr.protocol.webrtc_pb2 import RoleAssignment
from signaling.actions import Action, Announce, Deliver, Forward
from signaling.envelopes import envelope_error, error_to_actr, relay_from_server
from signaling.events import Contact
from signaling.record import NEGOTIATION_TTL_SECS, ActorRecord
from signaling.registry import Registry
from signaling.stats import Stats

__all__ = ["Relay", "offerer_is_asker"]

log = logging.getLogger(__name__)


class Relay:
    def __init__(self, registry: Registry, stats: Stats) -> None:
        self.registry = registry
        self.stats = stats

    def handle(
        self, record: ActorRecord, env: SignalingEnvelope, data: bytes, now: float
    ) -> list[Action]:
        """The actions for one authenticated ``actr_relay`` envelope (``data``) of ``record``."""
        relay = env.actr_relay
        try:
            target_key = id_text(relay.target)
        except IdentityError:
            target_key = ""
        target = self.registry.get(target_key) if target_key else None
        found = target is not None and target.live and target.actr_id == relay.target
        if target is None or not found:
            self.stats.reject("relay_not_found")
            return [self._unreachable(record, env, target_key)]
        if not self.registry.may_relay(record, target, now):
            self.stats.reject("relay_denied")
            log.info("relay_denied source=%s target=%s", record.key, target_key)
            # F12: the same answer as for an absent actor, so a refused source cannot
            # tell a protected actor's liveness.
            return [self._unreachable(record, env, target_key)]
        if relay.WhichOneof("payload") == "role_negotiation":
            return self._assign_roles(record, target, env, now)
        self.stats.relays += 1
        # SIG-5: the very bytes received, so fields this server does not know survive.
        return [self._to(target, data)]

    def _unreachable(self, record: ActorRecord, env: SignalingEnvelope, target_key: str) -> Deliver:
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
                Deliver(
                    record.key,
                    envelope_error(
                        ErrorCode.INVALID_ARGUMENT,
                        "role_negotiation must name this socket's actor as from and the target "
                        "as to",
                        env.envelope_id,
                    ),
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


def offerer_is_asker(asker: ActorRecord, peer: ActorRecord) -> bool:
    """SIG-6: whether the side that asked for the connection offers.

    A side whose socket opened with ``webrtc_role=answer`` answers when the other
    did not; otherwise the larger role key offers.
    """
    if asker.answer_only != peer.answer_only:
        return peer.answer_only
    return role_key(asker.actr_id) > role_key(peer.actr_id)
