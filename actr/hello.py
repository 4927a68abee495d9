"""X-HELLO-1: what this runtime speaks, told to each peer once its connection is ready.

The features and the stream window live here, in one place. A peer is "base" (no
feature) until its Hello arrives; the inbound shell records it on the ``Peer``
(``features``, ``stream_window``, the ``hello`` event). A sender that needs to
know waits for it at most ``HELLO_WAIT`` (``peer_features``), then treats the
peer as base: the Rust actr sends no Hello, and answers ours with an error
RESPONSE for an unknown route, which the pending table drops and counts (ENV-2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from typing import TYPE_CHECKING

from actr.errors import ActrError
from actr.inbound import HELLO_ROUTE
from actr.protocol.actr_pb2 import Direction, Hello, PayloadType, RpcEnvelope

if TYPE_CHECKING:
    from actr.transport import Peer

__all__ = [
    "BASE",
    "BATCH",
    "CALL_STREAMS",
    "CANCEL",
    "FEATURES",
    "HELLO_WAIT",
    "STREAM_CREDIT",
    "STREAM_WINDOW",
    "hello_envelope",
    "peer_features",
    "send_hello",
]

log = logging.getLogger(__name__)

STREAM_CREDIT = "stream-credit"  # X-STR-3/4
CALL_STREAMS = "call-streams"  # X-STR-6
CANCEL = "cancel"  # X-CALL-1
BATCH = "batch"  # X-BATCH-1
FEATURES: frozenset[str] = frozenset({STREAM_CREDIT, CALL_STREAMS, CANCEL, BATCH})
BASE: frozenset[str] = frozenset()
# The credit each stream this side receives starts with (X-STR-3).
STREAM_WINDOW = 1 << 20
# How long a sender that needs a peer's features waits for its Hello.
HELLO_WAIT = 2.0


def hello_envelope(features: frozenset[str] = FEATURES, window: int = STREAM_WINDOW) -> RpcEnvelope:
    """The TELL to ``actr.v1.Runtime.Hello`` sent first on RPC_RELIABLE."""
    return RpcEnvelope(
        route_key=HELLO_ROUTE,
        payload=Hello(features=sorted(features), stream_window=window).SerializeToString(),
        direction=Direction.DIRECTION_TELL,
        request_id=uuid.uuid4().hex,
        timeout_ms=0,
    )


async def peer_features(peer: Peer, wait: float = HELLO_WAIT) -> frozenset[str]:
    """The peer's features once its Hello came, waiting for it at most ``wait``
    seconds; a peer that sent none by then is base (it may still send one later)."""
    if not peer.hello.is_set() and wait > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(peer.hello.wait(), wait)
    return peer.features


async def send_hello(peer: Peer, counters: Counter[str]) -> None:
    """Sends our Hello on a connection that just became ready; raises nothing."""
    try:
        await peer.send(PayloadType.RPC_RELIABLE, hello_envelope().SerializeToString())
        counters["hello_sent"] += 1
    except ActrError as e:
        counters["hello_send_failed"] += 1
        log.info("hello_send_failed peer=%s error=%s", peer.key, e)
