"""F7 in the node: stream chunks obey the actor's ACL (ACL-2) and a stream takes chunks
from its own sender only, whatever arrives on the connection."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from actr.actor import Context
from actr.config import NodeConfig
from actr.errors import InvalidArgument
from actr.identity import id_text, parse_id
from actr.node import Node
from actr.protocol.actr_pb2 import ActrId, DataStream, PayloadType, RegisterOk
from tests.e2e.actors import Guarded

TRUSTED = parse_id("8@2/acme:trusted:1.0")  # Guarded admits acme:trusted:1.0, any realm
OTHER_TRUSTED = parse_id("9@1/acme:trusted:1.0")
STRANGER = parse_id("7@1/acme:stranger:1.0")


def guarded_node() -> Node:
    node = Node(NodeConfig(), Guarded())
    node.signaling.registration = RegisterOk(actr_id=parse_id("5@1/acme:guarded:1.0"))
    return node


def send(node: Node, sender: ActrId, seq: int, payload: bytes, end: bool = False) -> None:
    chunk = DataStream(stream_id="up", sequence=seq, payload=payload, end_of_stream=end)
    peer = SimpleNamespace(remote=sender, key=id_text(sender))
    node._on_message(peer, PayloadType.STREAM_RELIABLE, chunk.SerializeToString())  # type: ignore[arg-type]


async def test_f7_chunks_from_a_peer_the_acl_refuses_are_dropped_and_counted() -> None:
    node = guarded_node()
    # Even a stream registered for that very peer gets nothing: the ACL comes first.
    rx = node.receive_stream("up", STRANGER)
    send(node, STRANGER, 0, b"x")
    send(node, STRANGER, 1, b"y", end=True)
    assert node.core.drops["stream_sender_refused"] == 2
    assert rx.next_sequence == 0 and not rx.closed
    assert node.stats()["inbound"]["stream_sender_refused"] == 2


async def test_f7_a_third_peer_cannot_inject_into_a_trusted_callers_stream() -> None:
    node = guarded_node()
    # What a handler does for the caller that announced the stream.
    rx = Context(node, caller=TRUSTED).receive_stream("up")
    send(node, OTHER_TRUSTED, 0, b"forged")  # admitted by the ACL, but not the stream's
    send(node, OTHER_TRUSTED, 1, b"forged", end=True)
    send(node, TRUSTED, 0, b"real")
    send(node, TRUSTED, 1, b"data", end=True)
    got = [c.payload for c in await asyncio.wait_for(rx.collect(), 5)]
    assert got == [b"real", b"data"]
    assert node.streams.drops["chunk_from_other_sender"] == 2


def test_receive_stream_needs_a_sender_outside_a_handler() -> None:
    node = guarded_node()
    with pytest.raises(InvalidArgument, match="sender"):
        Context(node).receive_stream("up")
    with pytest.raises(InvalidArgument, match="stream sender"):
        node.receive_stream("up", "not an id")
    rx = Context(node).receive_stream("up", sender=id_text(TRUSTED))
    assert rx.sender == id_text(TRUSTED)


async def test_a_receiver_the_handler_closes_leaves_the_nodes_registry() -> None:
    node = guarded_node()
    rx = Context(node, caller=TRUSTED).receive_stream("up")
    assert len(node.streams) == 1
    rx.close()
    assert len(node.streams) == 0
    send(node, TRUSTED, 0, b"late")
    assert node.streams.drops["unregistered_stream"] == 1
