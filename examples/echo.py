"""The echo actor: answers ``echo.v1.Echo.Say`` with the text (and bytes) it got."""

from __future__ import annotations

from actr import Actor, Context, rpc
from actr.identity import id_text
from examples.echo_pb2 import SayReply, SayRequest


class Echo(Actor):
    actr_type = "acme:echo:1.0"

    @rpc("echo.v1.Echo.Say")
    async def say(self, req: SayRequest, ctx: Context) -> SayReply:
        reply = SayReply(text=req.text, served_by=id_text(ctx.self_id))
        if req.HasField("blob"):
            reply.blob = req.blob
        return reply
