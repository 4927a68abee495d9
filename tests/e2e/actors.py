"""Actors used by the end-to-end tests (loaded by `actr run` from a config)."""

from __future__ import annotations

import asyncio
import hashlib
import os

from actr import Actor, Context, rpc
from actr.identity import id_text, parse_type
from actr.protocol.actr_pb2 import Acl, AclRule, ActrId
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


class Worker(Actor):
    """Records every run of ``Work`` in a side file (path from ACTR_TEST_SIDE_FILE), and
    sleeps on demand: for deadline, kill and SIGTERM tests."""

    actr_type = "acme:worker:1.0"

    def __init__(self) -> None:
        self.side_file = os.environ.get("ACTR_TEST_SIDE_FILE", "")
        self.ran: list[str] = []

    def _record(self, label: str) -> None:
        self.ran.append(label)
        if self.side_file:
            fd = os.open(self.side_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (label + "\n").encode())
            finally:
                os.close(fd)

    @rpc("worker.v1.Worker.Work")
    async def work(self, req: SayRequest, ctx: Context) -> SayReply:
        """``text`` is "label:seconds": records label, sleeps, answers label."""
        label, _, seconds = req.text.partition(":")
        self._record(label)
        await asyncio.sleep(float(seconds or 0))
        return SayReply(text=label)

    @rpc("worker.v1.Worker.Ran")
    async def ran_so_far(self, req: SayRequest, ctx: Context) -> SayReply:
        return SayReply(text="\n".join(self.ran))


class Guarded(Actor):
    """Admits only callers of type acme:trusted:1.0 (ACL-1)."""

    actr_type = "acme:guarded:1.0"
    acl = Acl(
        rules=[
            AclRule(
                permission=AclRule.ALLOW, from_type=parse_type("acme:trusted:1.0"), any_realm=True
            )
        ]
    )
    calls = 0

    @rpc("guarded.v1.Guarded.Touch")
    async def touch(self, req: SayRequest, ctx: Context) -> SayReply:
        Guarded.calls += 1
        return SayReply(text=f"touched {Guarded.calls}")


class BadStart(Actor):
    """Its on_start fails: the daemon must not start."""

    actr_type = "acme:badstart:1.0"

    async def on_start(self, ctx: Context) -> None:
        raise RuntimeError("database is not there")


class Ledger(Actor):
    """Appends each request's id to a side file (ACTR_TEST_SIDE_FILE): an effect outside
    the mailbox's database. The runtime never runs an answered request again (ENV-6);
    a run cut short by a crash is handed out again with ctx.attempt > 1, and then
    the handler checks whether its effect is already there."""

    actr_type = "acme:ledger:1.0"

    def __init__(self) -> None:
        self.path = os.environ["ACTR_TEST_SIDE_FILE"]

    @rpc("ledger.v1.Ledger.Record")
    async def record(self, req: SayRequest, ctx: Context) -> SayReply:
        line = ctx.request_id + "\n"
        if ctx.attempt == 1 or not _has_line(self.path, line):
            _append_line(self.path, line)
        return SayReply(text=req.text)


def _has_line(path: str, line: str) -> bool:
    try:
        with open(path) as f:
            return line in f
    except FileNotFoundError:
        return False


def _append_line(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class Hooked(Actor):
    """Writes each lifecycle hook it gets, one line each, to ACTR_TEST_SIDE_FILE."""

    actr_type = "acme:hooked:1.0"

    def __init__(self) -> None:
        self.path = os.environ["ACTR_TEST_SIDE_FILE"]

    def _log(self, line: str) -> None:
        _append_line(self.path, line + "\n")

    async def on_start(self, ctx: Context) -> None:
        self._log("start")

    async def on_ready(self, ctx: Context) -> None:
        self._log("ready")

    async def on_peer(self, ctx: Context, peer: ActrId, up: bool) -> None:
        self._log(f"peer {'up' if up else 'down'} {id_text(peer)}")

    async def on_error(self, ctx: Context, error: Exception) -> None:
        self._log(f"error {type(error).__name__} {ctx.request_id}")

    async def on_stop(self, ctx: Context) -> None:
        self._log("stop")

    @rpc("hooked.v1.Hooked.Fail")
    async def fail(self, req: SayRequest, ctx: Context) -> SayReply:
        raise KeyError("nope")
