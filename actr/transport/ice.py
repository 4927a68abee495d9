"""ICE settings: the RTCConfiguration of a new connection (ICE servers, the TURN
credential from registration, relay-only policy), and the two places the runtime
reaches into aioice, which has no API for them:

- ``restrict_host_addresses``: the addresses host candidates are gathered on
  (aioice leaves out 127.0.0.1, which loopback tests and single-host setups need);
- ``set_consent``: how often ICE consent is checked and how many misses mean the
  peer is gone (RFC 7675; aiortc sends no SCTP heartbeats, so this is how a dead
  peer shows up);
- ``set_receive_buffer``: the SO_RCVBUF aioice gives its UDP sockets.

All patch aioice module state, so they hold for every connection in the process.
``selected_pair`` reads aioice's nominated pair, which aiortc does not expose.
"""

from __future__ import annotations

import aioice.ice
import aioice.turn
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection

from actr.protocol.actr_pb2 import RegisterOk
from actr.transport.config import TransportConfig

__all__ = [
    "apply_process_settings",
    "restrict_host_addresses",
    "rtc_configuration",
    "selected_pair",
    "set_consent",
    "set_receive_buffer",
]

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


def set_consent(interval: float, failures: int) -> None:
    """ICE consent checks every ``interval`` s; ``failures`` misses close the connection."""
    aioice.ice.CONSENT_INTERVAL = interval  # type: ignore[assignment]  # an int there, a float works
    aioice.ice.CONSENT_FAILURES = failures


def set_receive_buffer(size: int) -> None:
    """SO_RCVBUF for the UDP sockets aioice opens from now on (host and TURN)."""
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = size


def apply_process_settings(config: TransportConfig) -> None:
    """The process-wide part of ``config``: host addresses (if given), consent and
    the UDP receive buffer."""
    if config.host_addresses is not None:
        restrict_host_addresses(config.host_addresses)
    set_consent(config.consent_interval, config.consent_failures)
    set_receive_buffer(config.udp_receive_buffer)


def rtc_configuration(config: TransportConfig, registration: RegisterOk | None) -> RTCConfiguration:
    """ICE servers and policy for a new connection."""
    servers = [RTCIceServer(**s) for s in config.ice_servers]
    if registration is not None and registration.HasField("turn_credential"):
        # Read at each new connection: the credential is renewed with the identity.
        # The server names its TURN servers (our RegisterOk.turn_urls); the
        # config's turn_urls take precedence.
        urls = config.turn_urls or list(registration.turn_urls)
        cred = registration.turn_credential
        if urls:
            servers.append(
                RTCIceServer(urls=urls, username=cred.username, credential=cred.password)
            )
    policy = RTCIceTransportPolicy.RELAY if config.force_relay else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def selected_pair(pc: RTCPeerConnection) -> tuple[str, str] | None:
    """Types of the nominated ICE candidate pair (host, srflx, relay), if any."""
    sctp = pc.sctp
    if sctp is None:
        return None
    conn = sctp.transport.transport._connection  # sctp -> dtls -> ice -> aioice
    pair = next(iter(conn._nominated.values()), None)
    if pair is None:
        return None
    return (pair.local_candidate.type, pair.remote_candidate.type)
