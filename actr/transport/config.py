"""The transport's settings ([webrtc] and part of [limits] in a daemon's config).

A leaf: it imports no aiortc or aioice, so reading a config file does not load
the WebRTC stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actr.framing import DEFAULT_MAX_MESSAGE

__all__ = ["TransportConfig"]


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
    # SO_RCVBUF of the ICE sockets (aioice asks 256 KiB; the kernel caps it at
    # net.core.rmem_max). A burst that overflows it is lost and SCTP waits a whole
    # retransmission timeout (1 s at least) for it: measured here, 5,000 one-way
    # tells lost ~170 datagrams and took 1.2 s with 256 KiB, none and 0.5 s with 1 MiB.
    udp_receive_buffer: int = 1024 * 1024
    max_message_size: int = DEFAULT_MAX_MESSAGE
    high_water: int = 1024 * 1024
    low_water: int = 256 * 1024
    # DC-4 per connection, whatever number of channels a peer opens (F2).
    max_partial_messages: int = 16
    max_partial_bytes: int = 0  # 0: max_message_size (one largest message in flight)
    partial_ttl: float = 30.0
    # F6: connections still being set up, all peers together; more offers are refused.
    max_half_open: int = 32
