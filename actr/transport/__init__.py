"""WebRTC transport: one aiortc peer connection per remote actor, four labelled
data channels (DC-1), fragmentation (DC-3/4), send backpressure (DC-5), and
connection setup over signaling relays with the roles the server assigns (SIG-6).

One module per part, after aiortc's layout:

- ``config``: ``TransportConfig`` (no WebRTC import);
- ``relay``: what the transport needs of the signaling client (``RelayLink``);
- ``ice``: RTCConfiguration and the aioice patches (host addresses, consent);
- ``channels``: the DC-1 channels of one connection, reassembly, backpressure;
- ``peer``: one peer connection and its lifecycle;
- ``connections``: the table of peers, admission (F6);
- ``negotiation``: SIG-6 roles, offer/answer, ICE candidates;
- ``transport``: ``Transport``, which ties them together.

The names below are loaded on first use, so that ``actr.transport.config`` (and
``actr.config``, which reads it) can be imported without loading aiortc.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actr.transport.channels import CHANNELS
    from actr.transport.config import TransportConfig
    from actr.transport.ice import restrict_host_addresses
    from actr.transport.peer import Peer
    from actr.transport.relay import RelayLink
    from actr.transport.transport import Transport

__all__ = [
    "CHANNELS",
    "Peer",
    "RelayLink",
    "Transport",
    "TransportConfig",
    "restrict_host_addresses",
]

_HOMES = {
    "CHANNELS": "actr.transport.channels",
    "Peer": "actr.transport.peer",
    "RelayLink": "actr.transport.relay",
    "Transport": "actr.transport.transport",
    "TransportConfig": "actr.transport.config",
    "restrict_host_addresses": "actr.transport.ice",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, a plain module attribute
    return value
