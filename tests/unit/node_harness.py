"""Test helper: a Node with its mailbox and handler scheduler and no network."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from actr.actor import Actor
from actr.config import NodeConfig
from actr.identity import id_text, parse_id
from actr.inbound import NORMAL, Accept
from actr.mailbox import Mailbox
from actr.node import Node
from actr.protocol.actr_pb2 import Direction, PayloadType, RegisterOk, RpcEnvelope
from actr.scheduler import Scheduler
from examples.echo_pb2 import SayRequest

CALLER = parse_id("8@1/acme:caller:1.0")


class Harness:
    """A Node with its mailbox and handler scheduler, no network: requests go in
    through ``accept`` and answers are captured."""

    @classmethod
    async def open(cls, data_dir: Path, actor: Actor, **config: Any) -> Harness:
        node = Node(NodeConfig(data_dir=data_dir, **config), actor)
        node.signaling.registration = RegisterOk(actr_id=parse_id(f"5@1/{actor.actr_type}"))
        harness = cls(node)
        await node._open_mailbox()  # the scheduler it builds answers through the capture
        return harness

    @property
    def scheduler(self) -> Scheduler:
        assert self.node.scheduler is not None
        return self.node.scheduler

    def start_scheduler(self) -> None:
        self.scheduler.start()

    async def close(self) -> None:
        if not self.box.closed:
            self.box.serve(None)  # no more rows; those running finish
        await asyncio.gather(*self.scheduler.running, return_exceptions=True)
        if not self.box.closed:
            await self.box.close()

    def __init__(self, node: Node) -> None:
        self.node = node
        self.answers: asyncio.Queue[RpcEnvelope] = asyncio.Queue()

        async def capture(caller: str, ptype: int, data: bytes) -> None:
            reply = RpcEnvelope()
            reply.ParseFromString(data)
            self.answers.put_nowait(reply)

        node.inbound.answer = capture  # type: ignore[method-assign]

    def set_answer(self, send: Any) -> None:
        """Where answers go, for the scheduler and the inbound path alike."""
        self.node.inbound.answer = send  # type: ignore[method-assign]
        self.scheduler._answer = send

    @property
    def box(self) -> Mailbox:
        assert self.node.mailbox is not None
        return self.node.mailbox

    async def accept(
        self, request_id: str, text: str = "hi", route: str = "echo.v1.Echo.Say"
    ) -> None:
        env = RpcEnvelope(
            route_key=route,
            request_id=request_id,
            timeout_ms=10_000,
            direction=Direction.DIRECTION_REQUEST,
            payload=SayRequest(text=text).SerializeToString(),
        )
        action = Accept(env, env.SerializeToString(), NORMAL, PayloadType.RPC_RELIABLE)
        # Resolves once committed; the inbound shell's callback on it ran before.
        with contextlib.suppress(Exception):
            await self.node.inbound._accept(id_text(CALLER), action)

    async def answer(self) -> RpcEnvelope:
        return await asyncio.wait_for(self.answers.get(), 10)

    def rows(self) -> list[tuple[str, int, int]]:
        with sqlite3.connect(self.box.path) as db:
            return db.execute(
                "SELECT request_id, state, attempts FROM messages ORDER BY seq"
            ).fetchall()
