"""ACL-2 in the runtime: whatever path a request took to reach the daemon, the
daemon checks the caller's ActrId against its own ACL before the mailbox."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from actr.config import NodeConfig
from actr.gate import NORMAL, Enqueue
from actr.identity import id_text, parse_id
from actr.mailbox import Mailbox
from actr.node import Node
from actr.protocol.actr_pb2 import Direction, PayloadType, RegisterOk, RpcEnvelope
from tests.e2e.actors import Guarded


async def test_acl2_runtime_refuses_a_caller_its_acl_denies(tmp_path: Path) -> None:
    node = Node(NodeConfig(data_dir=tmp_path), Guarded())
    node.signaling.registration = RegisterOk(actr_id=parse_id("5@1/acme:guarded:1.0"))
    node.mailbox = await Mailbox.open(tmp_path / "mailbox.db")
    answers: list[tuple[str, bytes]] = []

    async def capture(caller: str, ptype: int, data: bytes) -> None:
        answers.append((caller, data))

    node._answer = capture  # type: ignore[method-assign]
    env = RpcEnvelope(
        route_key="guarded.v1.Guarded.Touch",
        request_id="r1",
        timeout_ms=5000,
        direction=Direction.DIRECTION_REQUEST,
        payload=b"",
    )
    action = Enqueue(env, env.SerializeToString(), NORMAL, PayloadType.RPC_RELIABLE)
    for caller, allowed in (("7@1/acme:stranger:1.0", False), ("8@2/acme:trusted:1.0", True)):
        remote = parse_id(caller)
        peer = SimpleNamespace(remote=remote, key=id_text(remote))
        await node._accept(peer, action)  # type: ignore[arg-type]
        stats = await node.mailbox.stats()
        assert stats.queued == (1 if allowed else 0)
    # The stranger got PERMISSION_DENIED and nothing of it reached the mailbox.
    ((to, data),) = answers
    reply = RpcEnvelope()
    reply.ParseFromString(data)
    assert to == "7@1/acme:stranger:1.0"
    assert reply.error.code == 10004 and reply.request_id == "r1"
    assert node.counters["refused_permission_denied"] == 1
    await node.mailbox.close()
