"""Connection setup over signaling relays, with the roles the server assigns (SIG-6).

The side that wants a connection asks the server with ``role_negotiation``
(``ask``); the server answers both sides with ``role_assignment``, and the side
told to offer does so at once while the other waits for the offer. Neither side
decides roles itself, so our runtime and actr's agree whoever asks. Then the
offer, the answer (matched by ``sdp_exchange_id``) and ICE candidates go through
the relay; a fresh offer or assignment from a peer replaces an older connection.
A connection this side did not ask for is admitted first (F6, ``Connections``).
"""

from __future__ import annotations

import logging
from collections import Counter

from aiortc import RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from actr.errors import ActrError, Unavailable
from actr.identity import id_text
from actr.protocol.actr_pb2 import ActrId
from actr.protocol.signaling_pb2 import ActrRelay
from actr.protocol.webrtc_pb2 import IceCandidate, RoleNegotiation, SessionDescription
from actr.transport.connections import Connections
from actr.transport.peer import Peer
from actr.transport.relay import RelayLink

__all__ = ["Negotiator"]

log = logging.getLogger(__name__)

_OFFERS = (
    SessionDescription.OFFER,
    SessionDescription.RENEGOTIATION_OFFER,
    SessionDescription.ICE_RESTART_OFFER,
)


class Negotiator:
    def __init__(self, relay: RelayLink, table: Connections, counters: Counter[str]) -> None:
        self.relay = relay
        self.table = table
        self.counters = counters

    async def ask(self, peer: Peer) -> None:
        """Asks the server to assign roles for a connection to ``peer`` (SIG-6)."""
        local = self.relay.actr_id
        neg = RoleNegotiation(realm_id=local.realm.realm_id)
        getattr(neg, "from").CopyFrom(local)
        neg.to.CopyFrom(peer.remote)
        try:
            await self.relay.send_relay(ActrRelay(target=peer.remote, role_negotiation=neg))
        except ActrError as e:
            self.table.peer_failed(peer, e)

    def relay_error(self, target: str, err: ActrError) -> None:
        """The server refused a relay to ``target``: a connection being set up fails."""
        peer = self.table.peers.get(target)
        if peer is not None and not peer.ready.is_set():
            self.table.peer_failed(peer, err)

    async def handle_relay(self, relay: ActrRelay) -> None:
        source = relay.source
        key = id_text(source)
        kind = relay.WhichOneof("payload")
        if kind == "session_description":
            desc = relay.session_description
            if desc.type in _OFFERS:
                await self._on_offer(source, desc)
            elif desc.type == SessionDescription.ANSWER:
                await self._on_answer(key, desc)
        elif kind == "role_assignment":
            # The peer is whichever of source/target is not us (actrix writes the
            # asker as source and the peer as target on both copies).
            peer_id = relay.target if source == self.relay.actr_id else source
            self._on_assignment(peer_id, relay.role_assignment.is_offerer)
        elif kind == "ice_candidate":
            await self._on_candidate(key, relay.ice_candidate)
        else:
            self.counters["relay_ignored_" + str(kind)] += 1

    def _on_assignment(self, remote: ActrId, is_offerer: bool) -> None:
        table = self.table
        key = id_text(remote)
        peer = table.peers.get(key)
        self.counters["role_offerer" if is_offerer else "role_answerer"] += 1
        log.info("role_assigned peer=%s offerer=%s", key, is_offerer)
        if not is_offerer:
            # Wait for the offer; one that arrives replaces any older connection.
            return
        if table.asked_for(key) is not None:
            assert peer is not None
            if peer.pc.signalingState == "stable" and peer.pc.localDescription is None:
                table.spawn(self._offer(peer))  # the connection we asked for
            # else an offer is under way already (both sides asked at once).
            return
        if not table.admits(remote, "assignment"):
            return
        if peer is not None:
            # The other side asked for a connection: it has lost ours, or never had it.
            table.peer_failed(peer, Unavailable(f"connection to {key} replaced"))
        table.spawn(self._offer(table.new_peer(remote)))

    async def _offer(self, peer: Peer) -> None:
        try:
            peer.open_channels()
            offer = await peer.pc.createOffer()
            await peer.pc.setLocalDescription(offer)
            peer.exchange_id += 1
            desc = SessionDescription(
                type=SessionDescription.OFFER,
                sdp=peer.pc.localDescription.sdp,
                sdp_exchange_id=str(peer.exchange_id),
            )
            await self.relay.send_relay(ActrRelay(target=peer.remote, session_description=desc))
        except ActrError as e:
            self.table.peer_failed(peer, e)
        except Exception as e:
            log.exception("offer_failed peer=%s", peer.key)
            self.table.peer_failed(peer, Unavailable(f"offer to {peer.key} failed: {e}"))

    async def _on_offer(self, source: ActrId, desc: SessionDescription) -> None:
        table = self.table
        key = id_text(source)
        if table.asked_for(key) is None and not table.admits(source, "offer"):
            return
        peer = table.peers.get(key)
        if peer is not None and (peer.closed or peer.pc.remoteDescription is not None):
            # A fresh offer replaces an older connection: the offerer started over.
            table.peer_failed(peer, Unavailable(f"connection to {key} replaced"))
            peer = None
        if peer is None:
            peer = table.new_peer(source)
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=desc.sdp, type="offer"))
            answer = await peer.pc.createAnswer()
            await peer.pc.setLocalDescription(answer)
            reply = SessionDescription(
                type=SessionDescription.ANSWER,
                sdp=peer.pc.localDescription.sdp,
                sdp_exchange_id=desc.sdp_exchange_id,
            )
            await self.relay.send_relay(ActrRelay(target=source, session_description=reply))
        except Exception as e:
            log.warning("answer_failed peer=%s error=%s", key, e)
            table.peer_failed(peer, Unavailable(f"answer to {key} failed: {e}"))

    async def _on_answer(self, key: str, desc: SessionDescription) -> None:
        peer = self.table.peers.get(key)
        if peer is None or peer.pc.signalingState != "have-local-offer":
            self.counters["stale_answer"] += 1
            return
        if desc.sdp_exchange_id and desc.sdp_exchange_id != str(peer.exchange_id):
            self.counters["stale_answer"] += 1
            return
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=desc.sdp, type="answer"))
        except Exception as e:
            self.table.peer_failed(peer, Unavailable(f"bad answer from {key}: {e}"))

    async def _on_candidate(self, key: str, cand: IceCandidate) -> None:
        peer = self.table.peers.get(key)
        if peer is None or peer.pc.remoteDescription is None or not cand.candidate:
            self.counters["ice_candidate_ignored"] += 1
            return
        try:
            ice = candidate_from_sdp(cand.candidate.removeprefix("candidate:"))
            ice.sdpMid = cand.sdp_mid or None
            ice.sdpMLineIndex = cand.sdp_mline_index
            await peer.pc.addIceCandidate(ice)
        except Exception as e:
            self.counters["ice_candidate_bad"] += 1
            log.warning("ice_candidate_bad peer=%s error=%s", key, e)
