"""The ICE sockets get a 1 MiB receive buffer (issue 13): with aioice's 256 KiB a burst
of small messages overflowed it, and every lost datagram cost SCTP a retransmission
timeout of at least a second."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import aioice
import aioice.turn
import pytest

from actr.transport.config import TransportConfig
from actr.transport.ice import apply_process_settings, restrict_host_addresses


def rmem_max() -> int:
    return int(Path("/proc/sys/net/core/rmem_max").read_text())


@pytest.fixture
def restore() -> Iterator[None]:
    size = aioice.turn.UDP_SOCKET_BUFFER_SIZE
    yield
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = size
    restrict_host_addresses(None)


async def test_ice_sockets_get_the_configured_receive_buffer(restore: None) -> None:
    config = TransportConfig(host_addresses=["127.0.0.1"])
    assert config.udp_receive_buffer == 1024 * 1024
    apply_process_settings(config)
    conn = aioice.Connection(ice_controlling=True, components=1)
    try:
        await conn.gather_candidates()
        (protocol,) = conn._protocols
        sock = protocol.transport.get_extra_info("socket")
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        await conn.close()
    # Linux doubles what is asked for, capped at net.core.rmem_max.
    assert got >= 2 * min(config.udp_receive_buffer, rmem_max())
