"""A caller process for the end-to-end tests: runs one scenario, prints one JSON line.

python -m tests.e2e.caller <signaling url> <scenario>
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from typing import Any

import actr
from actr.errors import ActrError
from examples.echo_pb2 import SayReply, SayRequest

ECHO = "acme:echo:1.0"
FRONT = "acme:front:1.0"


def _error(e: ActrError) -> dict[str, Any]:
    return {"error": type(e).__name__, "code": e.raw_code, "message": e.message}


async def scenario(client: actr.Node, name: str) -> dict[str, Any]:
    if name == "say":
        r = await client.call(ECHO, "echo.v1.Echo.Say", SayRequest(text="hi"), SayReply, timeout=10)
        return {"text": r.text, "served_by": r.served_by}
    if name == "big":
        blob = os.urandom(1024 * 1024)
        r = await client.call(ECHO, "echo.v1.Echo.Say", SayRequest(blob=blob), SayReply, timeout=30)
        sent = client.transport.counters
        return {
            "same": r.blob == blob,
            "size": len(r.blob),
            "messages_sent": sent["messages_sent"],
            "frames_sent": sent["frames_sent"],
        }
    if name == "nested":
        r = await client.call(
            FRONT, "front.v1.Front.Relay", SayRequest(text="deep"), SayReply, timeout=20
        )
        return {"text": r.text, "served_by": r.served_by}
    if name == "stream":
        sid = "upload-1"
        await client.call(FRONT, "front.v1.Upload.Begin", SayRequest(text=sid), SayReply)
        sender = await client.open_stream(FRONT, sid)
        digest = hashlib.sha256()
        for i in range(200):
            payload = f"chunk-{i}-".encode() * 50
            digest.update(payload)
            await sender.send(payload)
        await sender.end()
        r = await client.call(
            FRONT, "front.v1.Upload.Result", SayRequest(text=sid), SayReply, timeout=30
        )
        return {"text": r.text, "digest_ok": r.blob == digest.digest()}
    if name == "unknown_route":
        try:
            await client.call(FRONT, "front.v1.Front.Nope", SayRequest(), SayReply)
        except ActrError as e:
            return _error(e)
        return {"error": None}
    if name == "app_error":
        try:
            await client.call(FRONT, "front.v1.Front.Fail", SayRequest(text="x"), SayReply)
        except ActrError as e:
            return _error(e)
        return {"error": None}
    if name == "not_found":
        start = time.monotonic()
        try:
            await client.call("acme:nobody:1.0", "x.Y.Z", SayRequest(), SayReply, timeout=30)
        except ActrError as e:
            return {**_error(e), "elapsed": time.monotonic() - start}
        return {"error": None}
    raise SystemExit(f"unknown scenario {name}")


async def main(url: str, name: str) -> None:
    async with actr.connect(
        url, realm=1, realm_secret="dev-secret", host_addresses=["127.0.0.1"]
    ) as client:
        result = await scenario(client, name)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
