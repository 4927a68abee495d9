"""What the transport needs of the signaling client: a relay for SIG-6's messages.

The transport sets connections up by relaying ``role_negotiation``, SDP and ICE
candidates through the signaling server. It sees the client only through this
interface, so it imports no socket code and a test can hand relays straight
across (tests/unit/loopback_signaling.py). ``SignalingClient`` is one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from actr.errors import ActrError
from actr.protocol.actr_pb2 import ActrId, RegisterOk
from actr.protocol.signaling_pb2 import ActrRelay

__all__ = ["RelayErrorHandler", "RelayHandler", "RelayLink"]

# A relay from a peer (source is the peer).
RelayHandler = Callable[[ActrRelay], Awaitable[None]]
# The server refused a relay this side sent to ``target`` (its id text).
RelayErrorHandler = Callable[[str, ActrError], None]


class RelayLink(Protocol):
    @property
    def actr_id(self) -> ActrId:
        """This side's id: the source of what it relays."""
        ...

    @property
    def registration(self) -> RegisterOk | None:
        """The current registration; its TURN credential is read at each new connection."""
        ...

    async def send_relay(self, relay: ActrRelay) -> None:
        """Sends ``relay`` to ``relay.target`` through the server."""
        ...

    def listen_relays(self, on_relay: RelayHandler, on_relay_error: RelayErrorHandler) -> None:
        """From now on, relays to this side go to ``on_relay``, refusals to ``on_relay_error``."""
        ...
