"""The Stats answer (EXT-1) carries the mailbox's depth and bytes, for `actr top`."""

from __future__ import annotations

from pathlib import Path

from actr.config import NodeConfig
from actr.identity import parse_id
from actr.node import Node
from actr.protocol.actr_pb2 import RegisterOk
from examples.echo import Echo
from tests.unit.node_harness import Harness


async def test_stats_show_the_mailbox_depth_and_bytes(tmp_path: Path) -> None:
    h = await Harness.open(tmp_path, Echo())
    try:
        assert h.node.stats()["mailbox"] == {"depth": 0, "bytes": 0}
        await h.accept("r1", "queued, no scheduler running")
        mailbox = h.node.stats()["mailbox"]
        assert mailbox["depth"] == 1 and mailbox["bytes"] > 0
    finally:
        await h.close()


def test_a_client_node_has_no_mailbox_section() -> None:
    node = Node(NodeConfig())
    node.signaling.registration = RegisterOk(actr_id=parse_id("9@1/actr:client:1.0"))
    assert "mailbox" not in node.stats()
