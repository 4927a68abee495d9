"""A caller process that opens a streaming call and keeps it open until killed.

python -m tests.e2e.stream_caller <signaling url> <target id> <route>
Prints {"streaming": true} once the call's streams are flowing.
"""

from __future__ import annotations

import asyncio
import json
import sys

import actr
from examples.echo_pb2 import SayReply, SayRequest


async def main(url: str, target: str, route: str) -> None:
    async with actr.connect(url, realm_secret="dev-secret", host_addresses=["127.0.0.1"]) as client:
        if route.endswith(".Count"):
            call = await client.open_call(target, route, SayRequest(text="2:hang"), out=SayReply)
            await anext(aiter(call))
        else:
            out = SayReply if route.endswith(".Echo") else None
            call = await client.open_call(target, route, send=SayRequest, out=out)
            await call.send(SayRequest(text="1"))
            if out is not None:
                await anext(aiter(call))
        print(json.dumps({"streaming": True}), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
