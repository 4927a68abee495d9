"""The WebRTC transport: a ready connection to any remote actor, on demand.

``Transport`` puts the parts together: the connection table (connections.py),
SIG-6 setup over the relay it is handed (negotiation.py, relay.py), the ICE
settings of each new connection (ice.py), and the peers with their data
channels (peer.py, channels.py). ``connect`` returns a ready ``Peer``, setting
one up if needed; inbound messages go to ``on_message`` straight from the
channels, without passing through here.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from actr.errors import ConnectionNotReady, Unavailable
from actr.identity import id_text
from actr.protocol.actr_pb2 import ActrId
from actr.transport import ice
from actr.transport.config import TransportConfig
from actr.transport.connections import Connections
from actr.transport.negotiation import Negotiator
from actr.transport.peer import MessageHandler, Peer, PeerHandler, PeerHooks
from actr.transport.relay import RelayLink

__all__ = ["Transport"]


class Transport:
    def __init__(
        self,
        relay: RelayLink,
        config: TransportConfig,
        on_message: MessageHandler,
        on_peer_closed: PeerHandler,
        on_peer_ready: PeerHandler | None = None,
    ) -> None:
        self.relay = relay
        self.config = config
        self.counters: Counter[str] = Counter()
        self._table = Connections(
            config.max_half_open, self.counters, self._make_peer, on_peer_closed
        )
        self._hooks = PeerHooks(on_message, on_peer_ready, self._table.peer_failed)
        self._negotiator = Negotiator(relay, self._table, self.counters)
        # X-LOCAL-1: peers that are nodes of this process (actr/local.py), by id text;
        # no WebRTC under them, so not in the connection table.
        self.local_peers: dict[str, Peer] = {}
        ice.apply_process_settings(config)
        relay.listen_relays(self._negotiator.handle_relay, self._negotiator.relay_error)

    @property
    def admit(self) -> Callable[[ActrId], bool] | None:
        """F6: who may set up a connection this side did not ask for (None: anyone)."""
        return self._table.admit

    @admit.setter
    def admit(self, check: Callable[[ActrId], bool] | None) -> None:
        self._table.admit = check

    @property
    def _peers(self) -> dict[str, Peer]:
        """The table itself (Stats lists it; tests clear it)."""
        return self._table.peers

    @property
    def local(self) -> ActrId:
        return self.relay.actr_id

    def _make_peer(self, remote: ActrId) -> Peer:
        rtc = ice.rtc_configuration(self.config, self.relay.registration)
        return Peer(remote, self.config, rtc, self.counters, self._hooks)

    def peer(self, key: str) -> Peer | None:
        """The live connection to the actor with id text ``key``, if any (a node of
        this process, X-LOCAL-1, included)."""
        local = self.local_peers.get(key)
        if local is not None and not local.closed:
            return local
        return self._table.live(key)

    def half_open(self) -> int:
        return self._table.half_open()

    async def connect(self, remote: ActrId) -> Peer:
        """Returns a ready connection to ``remote``, setting one up if needed."""
        table = self._table
        key = id_text(remote)
        peer = table.peers.get(key)
        if peer is None or peer.closed:
            peer = table.new_peer(remote)
            peer.asked = True
            # SIG-6: the server decides who offers and tells both sides.
            table.spawn(self._negotiator.ask(peer))
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
                table.peer_failed(peer, err)
                raise err
        if peer.closed:
            raise peer.failure or Unavailable(f"connection to {key} closed")
        return peer

    async def close(self) -> None:
        for peer in self.local_peers.values():
            await peer.close()
        self.local_peers.clear()
        await self._table.close()
