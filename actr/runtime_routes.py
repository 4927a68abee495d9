"""The routes the runtime answers itself (PROTOCOL.md EXT-1): ``actr.v1.Runtime.Stats``.

Who may call them, and how often, the inbound core decides (actr/inbound.py with
actr/admin.py); this module only writes the answer: JSON counters of every
layer, by reason (what was dropped, refused, retried), and the peers. The node's
counters include X-HELLO-1's (hello_sent, hello_received), X-CALL-1's (caller:
calls_cancelled, cancel_sent, cancel_not_sent; callee: cancel_running,
cancel_queued, cancel_unknown, cancelled_running, cancelled_queued) and X-CALL-2's
call_past_handler_deadline.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from actr.envelopes import payload_answer
from actr.identity import id_text
from actr.inbound import InboundCore
from actr.pending import PendingTable
from actr.protocol.actr_pb2 import RpcEnvelope
from actr.signaling_client import SignalingClient
from actr.streams import StreamRegistry
from actr.transport import Transport

__all__ = ["RuntimeRoutes"]


class RuntimeRoutes:
    def __init__(
        self,
        counters: Counter[str],
        core: InboundCore,
        transport: Transport,
        pending: PendingTable[asyncio.Future[RpcEnvelope]],
        streams: StreamRegistry,
        signaling: SignalingClient,
        handling: Callable[[], int],
        mailbox: Callable[[], tuple[int, int] | None] = lambda: None,
    ) -> None:
        self.counters = counters
        self.core = core
        self.transport = transport
        self.pending = pending
        self.streams = streams
        self.signaling = signaling
        # How many handlers are at work now.
        self.handling = handling
        # The mailbox's (rows queued or in flight, their bytes); None on a client.
        self.mailbox = mailbox

    def answer(self, request: RpcEnvelope) -> bytes:
        """The encoded RESPONSE to an admitted Stats request."""
        return payload_answer(request, json.dumps(self.stats()).encode()).SerializeToString()

    def stats(self) -> dict[str, Any]:
        signaling = self.signaling
        return {
            "actor": id_text(signaling.actr_id) if signaling.registration else None,
            "node": {**self.counters, **self.core.refusals},
            "inbound": dict(self.core.drops),
            "transport": dict(self.transport.counters),
            "pending": {**self.pending.counters, "in_flight": len(self.pending)},
            "streams": {**self.streams.drops, **self.streams.core.stats()},
            "signaling": {
                "connected": signaling.connected.is_set(),
                "reconnects": signaling.reconnects,
            },
            "handling": self.handling(),
            **self._mailbox(),
            "peers": {
                key: {"selected_pair": peer.selected_pair()}
                for key, peer in self.transport._peers.items()
            },
            # X-LOCAL-1: nodes of this process this one exchanged messages with.
            "local_peers": sorted(self.transport.local_peers),
        }

    def _mailbox(self) -> dict[str, Any]:
        figures = self.mailbox()
        if figures is None:
            return {}
        return {"mailbox": {"depth": figures[0], "bytes": figures[1]}}
