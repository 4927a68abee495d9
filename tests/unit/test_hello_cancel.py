"""X-HELLO-1 and X-CALL-1..3 without a network: the inbound core's Hello and Cancel,
the scheduler's cancellation (running, queued, early), the handler's deadline and
metadata."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from actr.actor import DEADLINE, Actor, Context, rpc
from actr.calls import check_metadata
from actr.cancel import CancelMarks, cancel_envelope
from actr.errors import ErrorCode, InvalidArgument, TimedOut
from actr.hello import FEATURES, STREAM_WINDOW, hello_envelope
from actr.identity import id_text, parse_id
from actr.inbound import Cancel, Drop, Hello, InboundCore
from actr.protocol.actr_pb2 import Direction, PayloadType
from examples.echo_pb2 import SayReply, SayRequest
from tests.unit.node_harness import CALLER, Harness

OWNER = parse_id("5@1/acme:echo:1.0")
PEER = parse_id("8@1/acme:caller:1.0")
RPC = PayloadType.RPC_RELIABLE


def test_a_hello_is_taken_on_a_client_and_never_answered() -> None:
    client = InboundCore(owner=lambda: OWNER, admits=None)
    action = client.receive(PEER, RPC, hello_envelope().SerializeToString(), 0.0)
    assert action == Hello(FEATURES, STREAM_WINDOW)
    refusing = InboundCore(owner=lambda: OWNER, admits=lambda _c: False)
    action = refusing.receive(PEER, RPC, hello_envelope().SerializeToString(), 0.0)
    assert action == Drop("hello_refused")
    as_request = hello_envelope()
    as_request.direction = Direction.DIRECTION_REQUEST
    as_request.timeout_ms = 1000
    assert isinstance(client.receive(PEER, RPC, as_request.SerializeToString(), 0.0), Drop)
    assert client.drops["hello_not_tell"] == 1


def test_a_cancel_is_admitted_like_a_tell() -> None:
    actor = InboundCore(owner=lambda: OWNER, admits=lambda _c: True)
    data = cancel_envelope("r-1").SerializeToString()
    assert actor.receive(PEER, PayloadType.RPC_SIGNAL, data, 0.0) == Cancel("r-1")
    client = InboundCore(owner=lambda: OWNER, admits=None)
    assert client.receive(PEER, PayloadType.RPC_SIGNAL, data, 0.0) == Drop("cancel_refused")
    bad = cancel_envelope("r-1")
    bad.payload = b"\xff\xff"
    assert isinstance(actor.receive(PEER, RPC, bad.SerializeToString(), 0.0), Drop)
    assert actor.drops["cancel_decode_error"] == 1


def test_user_metadata_may_not_use_the_runtimes_keys() -> None:
    check_metadata({"trace": "1"})
    with pytest.raises(InvalidArgument, match=r"actr\."):
        check_metadata({"actr.stream.in": "s-1"})


def test_early_cancel_marks_expire() -> None:
    now = [0.0]
    marks = CancelMarks(clock=lambda: now[0])
    marks.mark(("a", "1"), queued=False)
    marks.mark(("a", "2"), queued=True)
    now[0] = 1000.0
    assert not marks.take(("a", "1"))
    assert marks.take(("a", "2"))
    assert not marks.take(("a", "2"))


class Blocking(Actor):
    actr_type = "acme:echo:1.0"

    def __init__(self) -> None:
        self.started: dict[str, asyncio.Event] = {}
        self.cancelled: dict[str, asyncio.Event] = {}
        self.release = asyncio.Event()
        self.ran: list[str] = []
        self.seen: list[Context] = []

    def _event(self, table: dict[str, asyncio.Event], key: str) -> asyncio.Event:
        return table.setdefault(key, asyncio.Event())

    @rpc("echo.v1.Echo.Say")
    async def say(self, req: SayRequest, ctx: Context) -> SayReply:
        self.ran.append(req.text)
        self.seen.append(ctx)
        self._event(self.started, req.text).set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self._event(self.cancelled, req.text).set()
            raise
        return SayReply(text=req.text)


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), 5)


async def test_a_running_handler_is_cancelled_and_its_retry_gets_cancelled(
    tmp_path: Path,
) -> None:
    actor = Blocking()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=2)
    h.start_scheduler()
    try:
        await h.accept("r-1", "one")
        await wait(actor._event(actor.started, "one"))
        h.node._on_cancel(id_text(CALLER), "r-1")
        await wait(actor._event(actor.cancelled, "one"))
        assert h.node.counters["cancel_running"] == 1
        await h.box.stats()  # the ack is committed
        await h.accept("r-1", "one")  # the caller retries: the stored answer, no rerun
        reply = await h.answer()
        assert reply.error.code == ErrorCode.CANCELLED
        assert actor.ran == ["one"]
        assert h.answers.empty()  # nothing was sent for the cancel itself
        assert h.node.counters["cancelled_running"] == 1
    finally:
        actor.release.set()
        await h.close()


async def test_a_queued_request_cancelled_is_never_run(tmp_path: Path) -> None:
    actor = Blocking()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=1)
    h.start_scheduler()
    try:
        await h.accept("r-1", "first")
        await wait(actor._event(actor.started, "first"))
        await h.accept("r-2", "second")  # queued behind the first
        h.node._on_cancel(id_text(CALLER), "r-2")
        assert h.node.counters["cancel_queued"] == 1
        h.node._on_cancel(id_text(CALLER), "r-9")  # never heard of
        assert h.node.counters["cancel_unknown"] == 1
        actor.release.set()
        assert (await h.answer()).payload == SayReply(text="first").SerializeToString()
        await h.accept("r-2", "second")
        reply = await h.answer()
        assert reply.error.code == ErrorCode.CANCELLED
        assert actor.ran == ["first"]
        assert h.node.counters["cancelled_queued"] == 1
    finally:
        actor.release.set()
        await h.close()


async def test_a_cancel_before_its_request_stops_it_too(tmp_path: Path) -> None:
    actor = Blocking()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=1)
    h.start_scheduler()
    try:
        h.node._on_cancel(id_text(CALLER), "r-1")  # came first, on RPC_SIGNAL
        assert h.node.counters["cancel_unknown"] == 1
        await h.accept("r-1", "late")
        # Its handler's task acks it CANCELLED without running it; then that commits.
        await asyncio.gather(*h.scheduler.running)
        await h.box.stats()
        await h.accept("r-1", "late")
        assert (await h.answer()).error.code == ErrorCode.CANCELLED
        assert actor.ran == []
    finally:
        await h.close()


async def test_the_handler_knows_its_deadline_and_calls_inherit_it(tmp_path: Path) -> None:
    actor = Blocking()
    actor.release.set()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=1)
    h.start_scheduler()
    try:
        await h.accept("r-1", "one")  # timeout_ms 10 000
        await h.answer()
        ctx = actor.seen[0]
        assert ctx.deadline is not None
        left = ctx.remaining()
        assert 0 < left <= 10.0
        assert DEADLINE.get() is None  # reset after the handler
        # A call under a passed deadline fails at once, sending nothing.
        loop = asyncio.get_running_loop()
        token = DEADLINE.set(loop.time() - 1)
        try:
            with pytest.raises(TimedOut, match="deadline"):
                await h.node.call_raw("1@1/acme:other:1.0", "x.Y", b"")
        finally:
            DEADLINE.reset(token)
        assert h.node.counters["call_past_handler_deadline"] == 1
    finally:
        await h.close()


async def test_metadata_reaches_the_handler(tmp_path: Path) -> None:
    actor = Blocking()
    actor.release.set()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=1)
    h.start_scheduler()
    try:
        from actr.inbound import NORMAL, Accept
        from actr.protocol.actr_pb2 import MetadataEntry, RpcEnvelope

        env = RpcEnvelope(
            route_key="echo.v1.Echo.Say",
            request_id="m-1",
            timeout_ms=5000,
            direction=Direction.DIRECTION_REQUEST,
            payload=SayRequest(text="m").SerializeToString(),
            metadata=[MetadataEntry(key="tenant", value="t1")],
        )
        with contextlib.suppress(Exception):
            await h.node.inbound._accept(
                id_text(CALLER), Accept(env, env.SerializeToString(), NORMAL, RPC)
            )
        await h.answer()
        assert actor.seen[0].metadata == {"tenant": "t1"}
        assert actor.seen[0].remaining() <= 5.0
    finally:
        await h.close()
