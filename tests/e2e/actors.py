"""Actors used by the end-to-end tests (loaded by `actr run` from a config)."""

from __future__ import annotations

import asyncio
import hashlib

from actr import Actor, Context, rpc
from actr.identity import id_text
from examples.echo_pb2 import SayReply, SayRequest


class Front(Actor):
    """Calls the echo actor from inside a handler, collects streams, and fails on demand."""

    actr_type = "acme:front:1.0"

    def __init__(self) -> None:
        self.uploads: dict[str, asyncio.Task[SayReply]] = {}

    @rpc("front.v1.Front.Relay")
    async def relay(self, req: SayRequest, ctx: Context) -> SayReply:
        reply = await ctx.call("acme:echo:1.0", "echo.v1.Echo.Say", req, SayReply, timeout=10)
        return SayReply(text=reply.text, served_by=f"{reply.served_by} via {id_text(ctx.self_id)}")

    @rpc("front.v1.Front.Fail")
    async def fail(self, req: SayRequest, ctx: Context) -> SayReply:
        raise ValueError(f"refusing {req.text}")

    @rpc("front.v1.Upload.Begin")
    async def begin(self, req: SayRequest, ctx: Context) -> SayReply:
        rx = ctx.receive_stream(req.text)

        async def collect() -> SayReply:
            digest = hashlib.sha256()
            sequences = []
            async for chunk in rx:
                sequences.append(chunk.sequence)
                digest.update(chunk.payload)
            in_order = sequences == list(range(len(sequences)))
            return SayReply(text=f"{len(sequences)} in_order={in_order}", blob=digest.digest())

        self.uploads[req.text] = asyncio.create_task(collect())
        return SayReply(text="ready")

    @rpc("front.v1.Upload.Result")
    async def result(self, req: SayRequest, ctx: Context) -> SayReply:
        task = self.uploads.pop(req.text)
        return await asyncio.wait_for(task, 20)
