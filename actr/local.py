"""X-LOCAL-1: calls and tells between nodes of one process, without WebRTC.

Every started node registers here by its ActrId text. A call or tell whose target
is a registered actor's node (the caller's own id included; a client hosts no actor,
and a call to it goes the usual way) goes through a ``LocalPeer``:
the same interface as a WebRTC ``Peer`` (``key``, ``remote``, a set ``ready``, all
features), whose ``send`` hands the envelope bytes to the target node's inbound
path (``_on_message``) as if they came from a connection of the caller's id. So the
ACL, the mailbox (MBX-1..5), dedup (ENV-6), cancellation and answers are those of
any call; only fragmentation and the data channels are skipped. The delivery is
scheduled on the loop (``call_soon``), never run inside ``send``: no re-entrancy,
and answers come back through the target's ``LocalPeer`` to the caller.

A handler calling its own actor needs a free handler slot for the inner request:
with ``max_concurrent_handlers = 1`` a call to self waits for its own handler and
times out (a tell to self is fine).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from actr.errors import Unavailable
from actr.hello import FEATURES, STREAM_WINDOW
from actr.identity import id_text
from actr.pending import PendingTable
from actr.protocol.actr_pb2 import ActrId, RpcEnvelope
from actr.transport import Peer, Transport

__all__ = ["LocalNode", "LocalPeer", "find", "peer_to", "register", "unregister"]

log = logging.getLogger(__name__)


class LocalNode(Protocol):
    """What this module needs of a node (actr/node.py's ``Node``)."""

    @property
    def actr_id(self) -> ActrId: ...

    @property
    def transport(self) -> Transport: ...

    @property
    def pending(self) -> PendingTable[asyncio.Future[RpcEnvelope]]: ...

    def _on_message(self, peer: Peer, ptype: int, data: bytes) -> None: ...

    def on_hello(self, peer: Peer) -> None: ...

    def _on_peer_closed(self, peer: Peer) -> None: ...


_nodes: dict[str, LocalNode] = {}  # every started node (answers go to clients too)
_actors: dict[str, LocalNode] = {}  # those hosting an actor: local destinations


def register(node: LocalNode, *, actor: bool) -> None:
    """A started node: reachable from this process by its id if it hosts an actor."""
    key = id_text(node.actr_id)
    _nodes[key] = node
    if actor:
        _actors[key] = node


def unregister(node: LocalNode) -> None:
    """A stopping node takes no more local messages. The other nodes' links to it go,
    and their calls waiting on it fail UNAVAILABLE now (as DC-6 for a connection)."""
    keys = [key for key, found in _nodes.items() if found is node]
    for key in keys:  # none if it never registered (its start failed)
        del _nodes[key]
        if _actors.get(key) is node:
            del _actors[key]
    for key in keys:
        _unlink(node, key)


def _unlink(node: LocalNode, key: str) -> None:
    gone = Unavailable(f"{key} stopped")
    for other in list(_nodes.values()):
        peer = other.transport.local_peers.get(key)
        if not isinstance(peer, LocalPeer) or peer.target is not node:
            continue
        del other.transport.local_peers[key]
        peer.fail(gone)
        # As a connection that closed (DC-6): its calls waiting fail, its streams
        # both ways break, its calls with streams on ``other`` are cancelled.
        other._on_peer_closed(peer)


def find(key: str) -> LocalNode | None:
    """The actor's node of this process with id text ``key``, if any."""
    return _actors.get(key)


def peer_to(source: LocalNode, key: str) -> Peer | None:
    """``source``'s peer for the actor's node of this process with id text ``key``."""
    target = _actors.get(key)
    if target is None:
        return None
    return _link(source, target)


def _link(source: LocalNode, target: LocalNode) -> LocalPeer:
    peers = source.transport.local_peers
    key = id_text(target.actr_id)
    peer = peers.get(key)
    if isinstance(peer, LocalPeer) and peer.target is target and not peer.closed:
        return peer
    peer = LocalPeer(source, target)
    peers[key] = peer
    source.on_hello(peer)  # it speaks everything: its streams take credit (X-STR-3)
    return peer


class LocalPeer(Peer):
    """``source``'s side of its link to ``target``, a node of this process (maybe
    itself). No peer connection: ``Peer.__init__`` is not run."""

    def __init__(self, source: LocalNode, target: LocalNode) -> None:
        self.source = source
        self.target = target
        self.remote = ActrId()
        self.remote.CopyFrom(target.actr_id)
        self.key = id_text(self.remote)
        self.ready = asyncio.Event()
        self.ready.set()
        self.settled = asyncio.Event()
        self.settled.set()
        self.closed = False
        self.asked = True
        self.failure = None
        self.exchange_id = 0
        self.features = FEATURES
        self.stream_window = STREAM_WINDOW
        self.hello = asyncio.Event()
        self.hello.set()

    def send(self, ptype: int, data: bytes) -> Coroutine[Any, Any, None]:
        return self._send(ptype, data)

    async def _send(self, ptype: int, data: bytes) -> None:
        if self.closed:
            raise self.failure or Unavailable(f"local link to {self.key} closed")
        if _nodes.get(self.key) is not self.target:
            raise Unavailable(f"{self.key} is not running in this process any more")
        self.source.transport.counters["local_messages_sent"] += 1
        asyncio.get_running_loop().call_soon(self._deliver, ptype, data)

    def _deliver(self, ptype: int, data: bytes) -> None:
        if _nodes.get(self.key) is not self.target:
            self.source.transport.counters["local_messages_lost"] += 1
            return  # stopped meanwhile: like a connection that went
        back = _link(self.target, self.source)
        self.target._on_message(back, ptype, data)

    def selected_pair(self) -> tuple[str, str] | None:
        return None

    async def close(self) -> None:
        self.closed = True
        self.settled.set()
