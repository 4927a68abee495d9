"""The connection table: one ``Peer`` per remote actor, by id text.

It admits connections the other side starts (F6: the actor's ACL, then a cap on
connections still being set up, both checked before a peer connection exists),
retires a failed peer exactly once (out of the table, ``on_peer_closed``, then
closed in the background), and owns the background tasks of setting up and
closing, so that ``close`` can wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from actr.errors import ActrError, Unavailable
from actr.identity import id_text
from actr.protocol.actr_pb2 import ActrId
from actr.transport.peer import Peer, PeerHandler

__all__ = ["Connections"]

log = logging.getLogger(__name__)


class Connections:
    def __init__(
        self,
        max_half_open: int,
        counters: Counter[str],
        make_peer: Callable[[ActrId], Peer],
        on_peer_closed: PeerHandler,
    ) -> None:
        self.max_half_open = max_half_open
        self.counters = counters
        self._make_peer = make_peer
        self._on_peer_closed = on_peer_closed
        self.peers: dict[str, Peer] = {}
        # F6: who may set up a connection this side did not ask for, checked before
        # any peer connection exists (the node passes its ACL; None admits everyone).
        self.admit: Callable[[ActrId], bool] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def live(self, key: str) -> Peer | None:
        p = self.peers.get(key)
        return p if p is not None and not p.closed else None

    def half_open(self) -> int:
        return sum(1 for p in self.peers.values() if not p.closed and not p.ready.is_set())

    def admits(self, remote: ActrId, what: str) -> bool:
        """F6: admission before resources, for a connection the peer started."""
        key = id_text(remote)
        if self.admit is not None and not self.admit(remote):
            self.counters[f"{what}_refused_acl"] += 1
            log.info("connection_refused reason=acl peer=%s via=%s", key, what)
            return False
        if self.half_open() >= self.max_half_open:
            self.counters[f"{what}_refused_half_open"] += 1
            log.warning(
                "connection_refused reason=half_open_cap peer=%s via=%s cap=%d",
                key,
                what,
                self.max_half_open,
            )
            return False
        return True

    def asked_for(self, key: str) -> Peer | None:
        """A connection this side asked for that is still being set up."""
        peer = self.peers.get(key)
        if peer is None or peer.closed or peer.ready.is_set() or not peer.asked:
            return None
        return peer

    def new_peer(self, remote: ActrId) -> Peer:
        peer = self._make_peer(remote)
        self.counters["peers_opened"] += 1
        self.peers[peer.key] = peer
        return peer

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def peer_failed(self, peer: Peer, err: ActrError) -> None:
        if peer.closed:
            return
        peer.fail(err)
        if self.peers.get(peer.key) is peer:
            del self.peers[peer.key]
        log.info("peer_closed peer=%s reason=%s", peer.key, err.message)
        self._on_peer_closed(peer)
        self.spawn(peer.close())

    async def close(self) -> None:
        for peer in list(self.peers.values()):
            self.peer_failed(peer, Unavailable("transport closed"))
        for t in list(self._tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(t, 2.0)
