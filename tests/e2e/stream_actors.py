"""Actors with streaming handlers, for the X-STR-6 end-to-end tests (loaded by
`actr run`). ``SayRequest.text`` carries the instructions: for Count,
"<n>[:fail=<k>][:hang]"; the side file (ACTR_TEST_SIDE_FILE) gets one JSON line
per handler that ends, with how it ended and when (wall time), so a test sees a
cancellation from outside the process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from actr import Actor, Context, rpc
from actr.streams import Gap
from actr.transfer import TransferSink
from examples.echo_pb2 import SayReply, SayRequest


def _report(route: str, how: str, **fields: object) -> None:
    path = os.environ.get("ACTR_TEST_SIDE_FILE")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"route": route, "how": how, "at": time.time(), **fields}) + "\n")


class Numbers(Actor):
    actr_type = "acme:numbers:1.0"

    @rpc("numbers.v1.Numbers.Count")
    async def count(self, req: SayRequest, ctx: Context) -> AsyncIterator[SayReply]:
        parts = req.text.split(":")
        n = int(parts[0])
        fail_at = next((int(p[5:]) for p in parts if p.startswith("fail=")), -1)
        hang = "hang" in parts
        try:
            for i in range(n):
                if i == fail_at:
                    raise ValueError(f"failing at {i}")
                yield SayReply(text=str(i), served_by=ctx.metadata.get("tag", ""))
            if hang:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            _report("Count", "cancelled", request_id=ctx.request_id)
            raise
        _report("Count", "done")

    @rpc("numbers.v1.Numbers.Sum")
    async def sum(self, items: AsyncIterator[SayRequest], ctx: Context) -> SayReply:
        total = 0
        count = 0
        _report("Sum", "started", request_id=ctx.request_id)
        try:
            async for item in items:
                if item.text == "boom":
                    raise ValueError("boom in the input")
                total += int(item.text)
                count += 1
        except asyncio.CancelledError:
            _report("Sum", "cancelled", request_id=ctx.request_id)
            raise
        except Exception as e:
            _report("Sum", "error", error=type(e).__name__)
            raise
        _report("Sum", "done", total=total)
        return SayReply(text=f"{total}/{count}")

    @rpc("numbers.v1.Numbers.Echo")
    async def echo(self, items: AsyncIterator[SayRequest], ctx: Context) -> AsyncIterator[SayReply]:
        try:
            async for item in items:
                if item.text == "boom":
                    raise ValueError("boom in the input")
                yield SayReply(text=item.text.upper())
        except asyncio.CancelledError:
            _report("Echo", "cancelled", request_id=ctx.request_id)
            raise
        _report("Echo", "done")


class Sink(Actor):
    """Consumes a byte stream at the rate the call's metadata asks (bytes/s)."""

    actr_type = "acme:sink:1.0"

    @rpc("sink.v1.Sink.Slow")
    async def slow(self, data: AsyncIterator[bytes], ctx: Context) -> SayReply:
        rate = float(ctx.metadata["rate"])
        loop = asyncio.get_running_loop()
        digest = hashlib.sha256()
        n = 0
        start = loop.time()
        async for block in data:
            digest.update(block)
            n += len(block)
            ahead = n / rate - (loop.time() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)  # the consumer's pace, not a synchronisation
        return SayReply(text=str(n), blob=digest.digest())


class Lossy(Actor):
    """Receives a latency-first stream and reports what reached its reader."""

    actr_type = "acme:lossy:1.0"

    def __init__(self) -> None:
        self.readers: dict[str, asyncio.Task[str]] = {}

    @rpc("lossy.v1.Lossy.Begin")
    async def begin(self, req: SayRequest, ctx: Context) -> SayReply:
        rx = ctx.receive_stream(req.text, latency_first=True)

        async def read() -> str:
            seqs: list[int] = []
            gaps: list[list[int]] = []
            async for item in rx.events():
                if isinstance(item, Gap):
                    gaps.append([item.first, item.last])
                else:
                    seqs.append(item.sequence)
            return json.dumps({"seqs": seqs, "gaps": gaps})

        self.readers[req.text] = asyncio.create_task(read())
        return SayReply(text="ready")

    @rpc("lossy.v1.Lossy.Result")
    async def result(self, req: SayRequest, ctx: Context) -> SayReply:
        return SayReply(text=await asyncio.wait_for(self.readers.pop(req.text), 20))


class Files(TransferSink, Actor):
    """Receives transfers (actr.transfer) into $ACTR_TEST_TRANSFER_DIR."""

    actr_type = "acme:files:1.0"
    transfer_dir = Path(os.environ.get("ACTR_TEST_TRANSFER_DIR", "transfers"))
