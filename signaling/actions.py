"""What the dispatcher asks of the rest of the server (``signaling.dispatcher``). No I/O.

The dispatcher and the modules it delegates to return lists of these; the hub
(``signaling.hub``) carries them out, in order: bytes for a socket here, bytes
for a socket on another node, a socket to close, a change to tell the other nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from signaling.events import Event

__all__ = ["Action", "Announce", "Deliver", "Disconnect", "Forward"]


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send ``data`` (one encoded SignalingEnvelope) on the socket of actor ``to``."""

    to: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the socket of actor ``to`` after what was delivered to it before."""

    to: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Forward:
    """Hand ``data`` to node ``node``, which delivers it on the socket of actor ``to``."""

    node: str
    to: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell the other nodes of a change of shared state (a no-op with one node)."""

    event: Event


Action = Deliver | Disconnect | Forward | Announce
