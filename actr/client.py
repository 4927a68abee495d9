"""``actr.connect``: a caller for any process, as an async context manager.

async with actr.connect("http://127.0.0.1:8081", realm=1, realm_secret="...") as client:
    reply = await client.call("acme:echo:1.0", "echo.v1.Echo.Say", req, SayReply, timeout=5)
"""

from __future__ import annotations

from typing import Any

from actr.config import NodeConfig, SignalingConfig
from actr.node import CLIENT_TYPE, Node
from actr.transport import TransportConfig


def connect(
    url: str | list[str],
    *,
    realm: int = 1,
    realm_secret: str,
    actr_type: str = CLIENT_TYPE,
    host_addresses: list[str] | None = None,
    ice_servers: list[dict[str, Any]] | None = None,
    turn_urls: list[str] | None = None,
    force_relay: bool = False,
    connect_timeout: float = 15.0,
    consent_interval: float = 5.0,
    consent_failures: int = 6,
    max_pending_calls: int = 10_000,
) -> Node:
    """Returns a client node; ``async with`` registers it and closes it after.

    ``url`` may list several servers of one deployment to fail over between.
    """
    cfg = NodeConfig(
        signaling=SignalingConfig(
            urls=[url] if isinstance(url, str) else list(url),
            realm=realm,
            realm_secret=realm_secret,
        ),
        transport=TransportConfig(
            ice_servers=list(ice_servers or []),
            turn_urls=list(turn_urls or []),
            force_relay=force_relay,
            host_addresses=host_addresses,
            connect_timeout=connect_timeout,
            consent_interval=consent_interval,
            consent_failures=consent_failures,
        ),
        actr_type=actr_type,
        max_pending_calls=max_pending_calls,
    )
    return Node(cfg)
