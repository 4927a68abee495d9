"""WebRTC transport: one aiortc peer connection per remote actor, four labelled
data channels (DC-1), fragmentation (DC-3/4), send backpressure (DC-5), and
connection setup over signaling relays, with the roles the server assigns (SIG-6).

The side that wants a connection asks the server with ``role_negotiation``; the
server answers both sides with ``role_assignment``, and the side told to offer
does so at once while the other waits for the offer. Neither side decides roles
itself, so our runtime and actr's agree whoever asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from actr.errors import ActrError, ConnectionNotReady, ResourceExhausted, Unavailable
from actr.framing import DEFAULT_MAX_MESSAGE, Fragmenter, FrameRejected, Reassembler
from actr.identity import id_text
from actr.protocol.actr_pb2 import ActrId, PayloadType
from actr.protocol.signaling_pb2 import ActrRelay
from actr.protocol.webrtc_pb2 import IceCandidate, RoleNegotiation, SessionDescription
from actr.signaling_client import SignalingClient

log = logging.getLogger(__name__)

# label -> (payload type, createDataChannel options), DC-1
CHANNELS: dict[str, tuple[int, dict[str, Any]]] = {
    "RPC_RELIABLE": (PayloadType.RPC_RELIABLE, {"ordered": True}),
    "RPC_SIGNAL": (PayloadType.RPC_SIGNAL, {"ordered": True}),
    "STREAM_RELIABLE": (PayloadType.STREAM_RELIABLE, {"ordered": True}),
    "STREAM_LATENCY_FIRST": (
        PayloadType.STREAM_LATENCY_FIRST,
        {"ordered": False, "maxRetransmits": 3},
    ),
}

MessageHandler = Callable[["Peer", int, bytes], None]
PeerHandler = Callable[["Peer"], None]


@dataclass
class TransportConfig:
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    # TURN servers that take the signaling server's time-limited credential (AIS-4).
    turn_urls: list[str] = field(default_factory=list)
    # Only relayed candidates: every byte goes through TURN (policy, or NAT testing).
    force_relay: bool = False
    # Addresses for host candidates; None lets aioice pick (it leaves out 127.0.0.1).
    host_addresses: list[str] | None = None
    connect_timeout: float = 15.0
    # ICE consent checks (RFC 7675) are how a dead peer shows up: aiortc sends no
    # SCTP heartbeats. aioice's defaults (5 s x 6) take ~30 s; these are process-wide.
    consent_interval: float = 5.0
    consent_failures: int = 6
    max_message_size: int = DEFAULT_MAX_MESSAGE
    high_water: int = 1024 * 1024
    low_water: int = 256 * 1024
    # DC-4 per connection, whatever number of channels a peer opens (F2).
    max_partial_messages: int = 16
    max_partial_bytes: int = 0  # 0: max_message_size (one largest message in flight)
    partial_ttl: float = 30.0
    # F6: connections still being set up, all peers together; more offers are refused.
    max_half_open: int = 32


_host_addresses_override: list[str] | None = None
_original_get_host_addresses = aioice.ice.get_host_addresses


def _patched_get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _host_addresses_override is not None:
        return list(_host_addresses_override)
    result: list[str] = _original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return result


def restrict_host_addresses(addresses: list[str] | None) -> None:
    """Pins the addresses aioice gathers host candidates on (e.g. loopback only)."""
    global _host_addresses_override
    _host_addresses_override = addresses
    aioice.ice.get_host_addresses = _patched_get_host_addresses


class Peer:
    """One peer connection to one remote actor."""

    def __init__(self, transport: Transport, remote: ActrId) -> None:
        self.transport = transport
        self.remote = remote
        self.key = id_text(remote)
        self.pc = RTCPeerConnection(transport.rtc_configuration())
        cfg = transport.config
        # One reassembler for every inbound channel: DC-4's bounds hold per connection.
        self.reassembler = Reassembler(
            max_message_size=cfg.max_message_size,
            max_partial=cfg.max_partial_messages,
            max_partial_bytes=cfg.max_partial_bytes,
            partial_ttl=cfg.partial_ttl,
        )
        self._expiry: asyncio.TimerHandle | None = None
        self._remote_labels: set[str] = set()
        self.channels: dict[int, RTCDataChannel] = {}
        self.fragmenters: dict[int, Fragmenter] = {}
        self._drained: dict[int, asyncio.Event] = {}
        self.ready = asyncio.Event()
        self.settled = asyncio.Event()  # ready, or failed: what a connecting caller waits on
        self.closed = False
        # This side asked for the connection (connect): its offer or answer is awaited.
        self.asked = False
        self.failure: ActrError | None = None
        self.exchange_id = 0
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("datachannel", self._adopt_remote_channel)
        # F6: a connection not up within the connect timeout is given up and reclaimed.
        self._setup_timer = asyncio.get_running_loop().call_later(
            cfg.connect_timeout, self._setup_expired
        )

    # -- setup ---------------------------------------------------------------

    def open_channels(self) -> None:
        for label, (_ptype, opts) in CHANNELS.items():
            self._adopt_channel(self.pc.createDataChannel(label, **opts))

    def _setup_expired(self) -> None:
        if not self.ready.is_set() and not self.closed:
            self.transport.counters["setup_timed_out"] += 1
            self.transport._peer_failed(
                self, ConnectionNotReady(f"connection to {self.key} not set up in time")
            )

    def _adopt_remote_channel(self, channel: RTCDataChannel) -> None:
        # F2/F6: one channel per label from the peer; more would only multiply state.
        if channel.label in self._remote_labels:
            self.transport.counters["duplicate_channel_label"] += 1
            log.warning("channel_duplicate_label peer=%s label=%r", self.key, channel.label)
            channel.close()
            return
        self._remote_labels.add(channel.label)
        self._adopt_channel(channel)

    def _adopt_channel(self, channel: RTCDataChannel) -> None:
        spec = CHANNELS.get(channel.label)
        if spec is None:
            self.transport.counters["unknown_channel_label"] += 1
            log.warning("channel_unknown_label peer=%s label=%r", self.key, channel.label)
            channel.close()
            return
        ptype = spec[0]
        cfg = self.transport.config
        # Frames are reassembled per channel: if both sides open the same label
        # lazily there are two channels of one type, and both are heard.
        channel.on("message", lambda data: self._on_frame(ptype, channel, data))
        channel.on("close", lambda: self._on_channel_close(ptype, channel))
        current = self.channels.get(ptype)
        if current is not None and current.readyState in ("connecting", "open"):
            return  # we send on the one we had
        self.channels[ptype] = channel
        self.fragmenters.setdefault(ptype, Fragmenter(cfg.max_message_size))
        drained = asyncio.Event()
        drained.set()
        self._drained[ptype] = drained
        channel.bufferedAmountLowThreshold = cfg.low_water
        channel.on("bufferedamountlow", drained.set)
        channel.on("open", self._check_ready)
        self._check_ready()

    def _check_ready(self) -> None:
        # RPC_RELIABLE is what a connection needs; the other channels may open later,
        # from either side (DC-1; actr's offerer opens only this one up front).
        rpc = self.channels.get(PayloadType.RPC_RELIABLE)
        if rpc is None or rpc.readyState != "open" or self.ready.is_set():
            return
        log.info("peer_ready peer=%s", self.key)
        self._setup_timer.cancel()
        self.ready.set()
        self.settled.set()
        if self.transport.on_peer_ready is not None:
            self.transport.on_peer_ready(self)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        log.debug("peer_state peer=%s state=%s", self.key, state)
        if state in ("failed", "closed"):
            self.transport._peer_failed(self, Unavailable(f"connection to {self.key} {state}"))

    def _on_channel_close(self, ptype: int, channel: RTCDataChannel) -> None:
        self.reassembler.forget_channel(channel)
        if self.closed or self.channels.get(ptype) is not channel:
            return
        if ptype == PayloadType.RPC_RELIABLE:
            self.transport._peer_failed(
                self, Unavailable(f"channel {PayloadType.Name(ptype)} to {self.key} closed")
            )
        else:
            del self.channels[ptype]  # opened again on the next send

    async def _channel_for(self, ptype: int) -> RTCDataChannel:
        """The open channel of ``ptype``, opening it now if the peer has none yet."""
        channel = self.channels.get(ptype)
        if channel is None or channel.readyState in ("closing", "closed"):
            label = PayloadType.Name(ptype)
            if label not in CHANNELS or not self.ready.is_set():
                raise ConnectionNotReady(f"channel {label} to {self.key} not open")
            self._adopt_channel(self.pc.createDataChannel(label, **CHANNELS[label][1]))
            channel = self.channels[ptype]
        if channel.readyState != "open":
            opened = asyncio.Event()
            channel.on("open", opened.set)
            waiter = asyncio.ensure_future(opened.wait())
            try:
                await asyncio.wait({waiter}, timeout=self.transport.config.connect_timeout)
            finally:
                waiter.cancel()
            if channel.readyState != "open":
                raise ConnectionNotReady(
                    f"channel {PayloadType.Name(ptype)} to {self.key} did not open"
                )
        return channel

    # -- data ----------------------------------------------------------------

    def _on_frame(self, ptype: int, channel: RTCDataChannel, data: bytes | str) -> None:
        if isinstance(data, str):
            self.transport.counters["text_frame"] += 1
            return
        loop = asyncio.get_running_loop()
        try:
            message = self.reassembler.feed(data, loop.time(), channel)
        except FrameRejected as e:
            log.warning("frame_rejected peer=%s reason=%s", self.key, e)
            message = None
        self._count_rejects()
        if self._expiry is None and self.reassembler.partial_count:
            self._schedule_expiry()
        if message is not None:
            self.transport.on_message(self, ptype, message)

    def _count_rejects(self) -> None:
        rejects = self.reassembler.rejects
        if rejects:
            for reason, n in rejects.items():
                self.transport.counters["frame_" + reason] += n
            rejects.clear()

    def _schedule_expiry(self) -> None:
        """Partials expire on time with no further traffic, not only when a frame comes."""
        when = self.reassembler.next_expiry()
        if when is None or self.closed:
            self._expiry = None
            return
        self._expiry = asyncio.get_running_loop().call_at(when + 0.01, self._expire_partials)

    def _expire_partials(self) -> None:
        self.reassembler.expire(asyncio.get_running_loop().time())
        self._count_rejects()
        self._schedule_expiry()

    async def send(self, ptype: int, data: bytes) -> None:
        if self.closed:
            raise self.failure or Unavailable(f"connection to {self.key} closed")
        channel = self.channels.get(ptype)
        if channel is None or channel.readyState != "open":
            channel = await self._channel_for(ptype)
        try:
            frames = self.fragmenters[ptype].fragment(data)
        except ValueError as e:
            raise ResourceExhausted(str(e)) from e
        counters = self.transport.counters
        counters["messages_sent"] += 1
        counters["frames_sent"] += len(frames)
        high = self.transport.config.high_water
        drained = self._drained[ptype]
        for frame in frames:
            # DC-5: wait while the channel holds more than the high-water mark.
            while channel.bufferedAmount > high:
                drained.clear()
                waiter = asyncio.ensure_future(drained.wait())
                await asyncio.wait({waiter}, timeout=1.0)
                waiter.cancel()
                if self.closed:
                    raise self.failure or Unavailable(f"connection to {self.key} closed")
            channel.send(frame)

    def selected_pair(self) -> tuple[str, str] | None:
        """Types of the nominated ICE candidate pair (host, srflx, relay), if any."""
        sctp = self.pc.sctp
        if sctp is None:
            return None
        conn = sctp.transport.transport._connection  # sctp -> dtls -> ice -> aioice
        pair = next(iter(conn._nominated.values()), None)
        if pair is None:
            return None
        return (pair.local_candidate.type, pair.remote_candidate.type)

    async def close(self) -> None:
        self.closed = True
        self._setup_timer.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.reassembler = Reassembler(max_message_size=self.reassembler.max_message_size)
        with contextlib.suppress(Exception):
            await self.pc.close()


class Transport:
    def __init__(
        self,
        signaling: SignalingClient,
        config: TransportConfig,
        on_message: MessageHandler,
        on_peer_closed: PeerHandler,
        on_peer_ready: PeerHandler | None = None,
    ) -> None:
        self.signaling = signaling
        self.config = config
        self.on_message = on_message
        self.on_peer_closed = on_peer_closed
        self.on_peer_ready = on_peer_ready
        self.counters: Counter[str] = Counter()
        # F6: who may set up a connection this side did not ask for, checked before
        # any peer connection exists (the node passes its ACL; None admits everyone).
        self.admit: Callable[[ActrId], bool] | None = None
        self._peers: dict[str, Peer] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        if config.host_addresses is not None:
            restrict_host_addresses(config.host_addresses)
        aioice.ice.CONSENT_INTERVAL = config.consent_interval  # type: ignore[assignment]
        aioice.ice.CONSENT_FAILURES = config.consent_failures
        signaling.on_relay = self.handle_relay
        signaling.on_relay_error = self._relay_error

    @property
    def local(self) -> ActrId:
        return self.signaling.actr_id

    def rtc_configuration(self) -> RTCConfiguration:
        cfg = self.config
        servers = [RTCIceServer(**s) for s in cfg.ice_servers]
        reg = self.signaling.registration
        if reg is not None and reg.HasField("turn_credential"):
            # Read at each new connection: the credential is renewed with the identity.
            # The server names its TURN servers (our RegisterOk.turn_urls); the
            # config's turn_urls take precedence.
            urls = cfg.turn_urls or list(reg.turn_urls)
            cred = reg.turn_credential
            if urls:
                servers.append(
                    RTCIceServer(urls=urls, username=cred.username, credential=cred.password)
                )
        policy = RTCIceTransportPolicy.RELAY if cfg.force_relay else RTCIceTransportPolicy.ALL
        return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)

    def peer(self, key: str) -> Peer | None:
        p = self._peers.get(key)
        return p if p is not None and not p.closed else None

    async def connect(self, remote: ActrId) -> Peer:
        """Returns a ready connection to ``remote``, setting one up if needed."""
        key = id_text(remote)
        peer = self._peers.get(key)
        if peer is None or peer.closed:
            peer = self._new_peer(remote)
            peer.asked = True
            # SIG-6: the server decides who offers and tells both sides.
            self._spawn(self._negotiate(peer))
        if not peer.ready.is_set():
            waiter = asyncio.ensure_future(peer.settled.wait())
            try:
                await asyncio.wait({waiter}, timeout=self.config.connect_timeout)
            finally:
                waiter.cancel()
            if peer.failure is not None:
                raise peer.failure
            if not peer.ready.is_set():
                err = ConnectionNotReady(
                    f"connection to {key} not ready after {self.config.connect_timeout:g}s"
                )
                self._peer_failed(peer, err)
                raise err
        if peer.closed:
            raise peer.failure or Unavailable(f"connection to {key} closed")
        return peer

    def half_open(self) -> int:
        return sum(1 for p in self._peers.values() if not p.closed and not p.ready.is_set())

    def _admits(self, remote: ActrId, what: str) -> bool:
        """F6: admission before resources, for a connection the peer started."""
        key = id_text(remote)
        if self.admit is not None and not self.admit(remote):
            self.counters[f"{what}_refused_acl"] += 1
            log.info("connection_refused reason=acl peer=%s via=%s", key, what)
            return False
        if self.half_open() >= self.config.max_half_open:
            self.counters[f"{what}_refused_half_open"] += 1
            log.warning(
                "connection_refused reason=half_open_cap peer=%s via=%s cap=%d",
                key,
                what,
                self.config.max_half_open,
            )
            return False
        return True

    def _asked_for(self, key: str) -> Peer | None:
        """A connection this side asked for that is still being set up."""
        peer = self._peers.get(key)
        if peer is None or peer.closed or peer.ready.is_set() or not peer.asked:
            return None
        return peer

    def _new_peer(self, remote: ActrId) -> Peer:
        peer = Peer(self, remote)
        self.counters["peers_opened"] += 1
        self._peers[peer.key] = peer
        return peer

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            await self.signaling.send_relay(ActrRelay(target=peer.remote, session_description=desc))
        except ActrError as e:
            self._peer_failed(peer, e)
        except Exception as e:
            log.exception("offer_failed peer=%s", peer.key)
            self._peer_failed(peer, Unavailable(f"offer to {peer.key} failed: {e}"))

    async def _negotiate(self, peer: Peer) -> None:
        neg = RoleNegotiation(realm_id=self.local.realm.realm_id)
        getattr(neg, "from").CopyFrom(self.local)
        neg.to.CopyFrom(peer.remote)
        try:
            await self.signaling.send_relay(ActrRelay(target=peer.remote, role_negotiation=neg))
        except ActrError as e:
            self._peer_failed(peer, e)

    def _relay_error(self, target: str, err: ActrError) -> None:
        peer = self._peers.get(target)
        if peer is not None and not peer.ready.is_set():
            self._peer_failed(peer, err)

    async def handle_relay(self, relay: ActrRelay) -> None:
        source = relay.source
        key = id_text(source)
        kind = relay.WhichOneof("payload")
        if kind == "session_description":
            desc = relay.session_description
            if desc.type in (
                SessionDescription.OFFER,
                SessionDescription.RENEGOTIATION_OFFER,
                SessionDescription.ICE_RESTART_OFFER,
            ):
                await self._on_offer(source, desc)
            elif desc.type == SessionDescription.ANSWER:
                await self._on_answer(key, desc)
        elif kind == "role_assignment":
            # The peer is whichever of source/target is not us (actrix writes the
            # asker as source and the peer as target on both copies).
            peer_id = relay.target if source == self.local else source
            self._on_assignment(peer_id, relay.role_assignment.is_offerer)
        elif kind == "ice_candidate":
            await self._on_candidate(key, relay.ice_candidate)
        else:
            self.counters["relay_ignored_" + str(kind)] += 1

    def _on_assignment(self, remote: ActrId, is_offerer: bool) -> None:
        key = id_text(remote)
        peer = self._peers.get(key)
        self.counters["role_offerer" if is_offerer else "role_answerer"] += 1
        log.info("role_assigned peer=%s offerer=%s", key, is_offerer)
        if not is_offerer:
            # Wait for the offer; one that arrives replaces any older connection.
            return
        if self._asked_for(key) is not None:
            assert peer is not None
            if peer.pc.signalingState == "stable" and peer.pc.localDescription is None:
                self._spawn(self._offer(peer))  # the connection we asked for
            # else an offer is under way already (both sides asked at once).
            return
        if not self._admits(remote, "assignment"):
            return
        if peer is not None:
            # The other side asked for a connection: it has lost ours, or never had it.
            self._peer_failed(peer, Unavailable(f"connection to {key} replaced"))
        self._spawn(self._offer(self._new_peer(remote)))

    async def _on_offer(self, source: ActrId, desc: SessionDescription) -> None:
        key = id_text(source)
        if self._asked_for(key) is None and not self._admits(source, "offer"):
            return
        peer = self._peers.get(key)
        if peer is not None and (peer.closed or peer.pc.remoteDescription is not None):
            # A fresh offer replaces an older connection: the offerer started over.
            self._peer_failed(peer, Unavailable(f"connection to {key} replaced"))
            peer = None
        if peer is None:
            peer = self._new_peer(source)
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=desc.sdp, type="offer"))
            answer = await peer.pc.createAnswer()
            await peer.pc.setLocalDescription(answer)
            reply = SessionDescription(
                type=SessionDescription.ANSWER,
                sdp=peer.pc.localDescription.sdp,
                sdp_exchange_id=desc.sdp_exchange_id,
            )
            await self.signaling.send_relay(ActrRelay(target=source, session_description=reply))
        except Exception as e:
            log.warning("answer_failed peer=%s error=%s", key, e)
            self._peer_failed(peer, Unavailable(f"answer to {key} failed: {e}"))

    async def _on_answer(self, key: str, desc: SessionDescription) -> None:
        peer = self._peers.get(key)
        if peer is None or peer.pc.signalingState != "have-local-offer":
            self.counters["stale_answer"] += 1
            return
        if desc.sdp_exchange_id and desc.sdp_exchange_id != str(peer.exchange_id):
            self.counters["stale_answer"] += 1
            return
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=desc.sdp, type="answer"))
        except Exception as e:
            self._peer_failed(peer, Unavailable(f"bad answer from {key}: {e}"))

    async def _on_candidate(self, key: str, cand: IceCandidate) -> None:
        peer = self._peers.get(key)
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

    def _peer_failed(self, peer: Peer, err: ActrError) -> None:
        if peer.closed:
            return
        peer.closed = True
        peer.failure = err
        peer.settled.set()
        if self._peers.get(peer.key) is peer:
            del self._peers[peer.key]
        log.info("peer_closed peer=%s reason=%s", peer.key, err.message)
        self.on_peer_closed(peer)
        self._spawn(peer.close())

    async def close(self) -> None:
        for peer in list(self._peers.values()):
            self._peer_failed(peer, Unavailable("transport closed"))
        for t in list(self._tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(t, 2.0)
