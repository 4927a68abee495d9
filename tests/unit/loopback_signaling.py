"""A stand-in for the signaling server between two in-process transports: relays go
straight across, and ``role_negotiation`` is answered as the server does (SIG-6),
with ``role_assignment`` to both sides, by a rule the test picks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from actr.identity import role_key
from actr.protocol.actr_pb2 import ActrId
from actr.protocol.signaling_pb2 import ActrRelay

# (asker, peer) -> whether the asker offers
RoleRule = Callable[[ActrId, ActrId], bool]


def larger_offers(asker: ActrId, peer: ActrId) -> bool:
    return role_key(asker) > role_key(peer)


class LoopbackSignaling:
    def __init__(self, actr_id: ActrId, rule: RoleRule = larger_offers) -> None:
        self.actr_id = actr_id
        self.registration = None
        self.on_relay: Any = None
        self.on_relay_error: Any = None
        self.other: LoopbackSignaling | None = None
        self.rule = rule
        self.sent: list[ActrRelay] = []

    def listen_relays(self, on_relay: Any, on_relay_error: Any) -> None:
        self.on_relay, self.on_relay_error = on_relay, on_relay_error

    def _hand(self, to: LoopbackSignaling, relay: ActrRelay) -> None:
        assert to.on_relay is not None
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(to.on_relay(relay)))

    async def send_relay(self, relay: ActrRelay) -> None:
        relay.source.CopyFrom(self.actr_id)
        self.sent.append(relay)
        assert self.other is not None
        if relay.WhichOneof("payload") != "role_negotiation":
            self._hand(self.other, relay)
            return
        asker_offers = self.rule(self.actr_id, relay.target)
        for side, offers in ((self, asker_offers), (self.other, not asker_offers)):
            out = ActrRelay(source=self.actr_id, target=relay.target)
            out.role_assignment.is_offerer = offers
            self._hand(side, out)


def pair(
    a: ActrId, b: ActrId, rule: RoleRule = larger_offers
) -> tuple[LoopbackSignaling, LoopbackSignaling]:
    sa, sb = LoopbackSignaling(a, rule), LoopbackSignaling(b, rule)
    sa.other, sb.other = sb, sa
    return sa, sb
