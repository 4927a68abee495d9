"""ACL-2 in the runtime: whatever path a request took to reach the daemon, the
daemon checks the caller's ActrId against its own ACL before the mailbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from actr.config import NodeConfig
from actr.identity import id_text, parse_id
from actr.node import Node
from actr.protocol.actr_pb2 import Direction, PayloadType, RegisterOk, RpcEnvelope
from tests.e2e.actors import Guarded


async def test_acl2_runtime_refuses_a_caller_its_acl_denies(tmp_path: Path) -> None:
    node = Node(NodeConfig(data_dir=tmp_path), Guarded())
    node.signaling.registration = RegisterOk(actr_id=parse_id("5@1/acme:guarded:1.0"))
    answers: list[tuple[str, bytes]] = []

    async def capture(caller: str, ptype: int, data: bytes) -> None:
        answers.append((caller, data))

    node.inbound.answer = capture  # type: ignore[method-assign]
    await node._open_mailbox()
    assert node.mailbox is not None
    env = RpcEnvelope(
        route_key="guarded.v1.Guarded.Touch",
        request_id="r1",
        timeout_ms=5000,
        direction=Direction.DIRECTION_REQUEST,
        payload=b"",
    )
    for caller, allowed in (("7@1/acme:stranger:1.0", False), ("8@2/acme:trusted:1.0", True)):
        remote = parse_id(caller)
        peer = SimpleNamespace(remote=remote, key=id_text(remote))
        node._on_message(peer, PayloadType.RPC_RELIABLE, env.SerializeToString())  # type: ignore[arg-type]
        await asyncio.gather(*node._tasks)
        stats = await node.mailbox.stats()
        assert stats.queued == (1 if allowed else 0)
    # The stranger got PERMISSION_DENIED and nothing of it reached the mailbox.
    ((to, data),) = answers
    reply = RpcEnvelope()
    reply.ParseFromString(data)
    assert to == "7@1/acme:stranger:1.0"
    assert reply.error.code == 10004 and reply.request_id == "r1"
    assert node.stats()["node"]["refused_permission_denied"] == 1
    await node.mailbox.close()
