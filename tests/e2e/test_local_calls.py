"""X-LOCAL-1 end to end: two actors hosted in this process (real signaling server,
real registration), a handler calling its own actor and the other one, a tell to
self, a cancelled local call: all through the target's mailbox, none on WebRTC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actr import Actor, Context, rpc
from actr.config import NodeConfig, SignalingConfig
from actr.errors import ActrError, ErrorCode, Unavailable
from actr.identity import id_text
from actr.node import Node
from actr.transport import TransportConfig
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

PING = "local.v1.Local.Ping"
PONG = "local.v1.Local.Pong"
NOTE = "local.v1.Local.Note"
TELL_SELF = "local.v1.Local.TellSelf"
HANG = "local.v1.Local.Hang"
COUNT = "local.v1.Local.Count"
RELAY = "local.v1.Local.Relay"


class Local(Actor):
    actr_type = "acme:local:1.0"

    def __init__(self) -> None:
        self.pongs: list[str] = []
        self.notes: asyncio.Queue[str] = asyncio.Queue()
        self.hanging = asyncio.Event()
        self.hang_cancelled = asyncio.Event()

    @rpc(PING)
    async def ping(self, req: SayRequest, ctx: Context) -> SayReply:
        """Calls ``req.text`` (an ActrId: itself or another actor) from the handler."""
        return await ctx.call(req.text, PONG, SayRequest(text="from ping"), SayReply, timeout=5)

    @rpc(PONG)
    async def pong(self, req: SayRequest, ctx: Context) -> SayReply:
        assert ctx.caller is not None
        self.pongs.append(ctx.request_id)
        return SayReply(
            text=req.text, served_by=f"{id_text(ctx.self_id)} for {id_text(ctx.caller)}"
        )

    @rpc(TELL_SELF)
    async def tell_self(self, req: SayRequest, ctx: Context) -> SayReply:
        await ctx.tell(ctx.self_id, NOTE, req)
        return SayReply(text="told")

    @rpc(NOTE)
    async def note(self, req: SayRequest, ctx: Context) -> None:
        self.notes.put_nowait(req.text)

    @rpc(COUNT)
    async def count(self, req: SayRequest, ctx: Context) -> AsyncIterator[SayReply]:
        for i in range(int(req.text)):
            yield SayReply(text=str(i), blob=bytes(100_000))

    @rpc(RELAY)
    async def relay(self, req: SayRequest, ctx: Context) -> SayReply:
        """Streams from ``req.text`` (an actor of this process) and counts."""
        n = 0
        async for _ in ctx.call_stream(req.text, COUNT, SayRequest(text="40"), SayReply):
            n += 1
        return SayReply(text=str(n))

    @rpc(HANG)
    async def hang(self, req: SayRequest, ctx: Context) -> SayReply:
        self.hanging.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.hang_cancelled.set()
            raise
        return SayReply()


def config(cluster: Cluster, data_dir: Path) -> NodeConfig:
    return NodeConfig(
        signaling=SignalingConfig(urls=[cluster.url], realm=1, realm_secret="dev-secret"),
        transport=TransportConfig(host_addresses=["127.0.0.1"]),
        data_dir=data_dir,
        # A call to self needs a second handler free for the inner request.
        max_concurrent_handlers=2,
        stop_grace=0.2,
    )


@pytest.fixture
async def pair(cluster: Cluster, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    a = Node(config(cluster, tmp_path / "a"), Local())
    b = Node(config(cluster, tmp_path / "b"), Local())
    async with a, b:
        yield a, b


def actor(node: Node) -> Local:
    assert isinstance(node.actor, Local)
    return node.actor


async def test_a_handler_calls_its_own_actor_and_another_in_process(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    a_id, b_id = id_text(a.actr_id), id_text(b.actr_id)
    commits = a.mailbox.commits if a.mailbox else 0
    to_self = await a.call(a_id, PING, SayRequest(text=a_id), SayReply, timeout=10)
    assert to_self.served_by == f"{a_id} for {a_id}"
    to_other = await a.call(a_id, PING, SayRequest(text=b_id), SayReply, timeout=10)
    assert to_other.served_by == f"{b_id} for {a_id}"
    assert len(actor(a).pongs) == 1 and len(actor(b).pongs) == 1
    # Through the mailboxes (committed rows), not WebRTC: no peer connection at all.
    assert a.mailbox is not None and a.mailbox.commits > commits
    assert not a.transport._peers and not b.transport._peers
    assert a.transport.counters["local_messages_sent"] >= 4
    assert a.stats()["local_peers"] == sorted({a_id, b_id})
    assert not a.pending.counters["unknown_response"]
    assert not a.pending.counters["response_from_wrong_peer"]


async def test_a_local_call_is_durable_and_deduplicated(pair: tuple[Node, Node]) -> None:
    a, b = pair
    b_id = id_text(b.actr_id)
    first = await a.call(b_id, PONG, SayRequest(text="x"), SayReply, request_id="once")
    again = await a.call(b_id, PONG, SayRequest(text="x"), SayReply, request_id="once")
    assert first == again
    assert actor(b).pongs == ["once"]  # the retry got the stored answer (ENV-6)
    assert b.counters["duplicate_answered"] == 1


async def test_a_tell_to_self(pair: tuple[Node, Node]) -> None:
    a, _ = pair
    reply = await a.call(a.actr_id, TELL_SELF, SayRequest(text="note"), SayReply)
    assert reply.text == "told"
    assert await asyncio.wait_for(actor(a).notes.get(), 5) == "note"


async def test_a_local_call_cancelled_cancels_the_handler(pair: tuple[Node, Node]) -> None:
    a, b = pair
    handle = a.start_call(b.actr_id, HANG, SayRequest(), timeout=30)
    await asyncio.wait_for(actor(b).hanging.wait(), 5)
    handle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handle
    await asyncio.wait_for(actor(b).hang_cancelled.wait(), 5)
    assert b.counters["cancel_running"] == 1
    assert b.mailbox is not None
    await b.mailbox.stats()  # the ack is committed
    with pytest.raises(ActrError) as err:
        await a.call_raw(b.actr_id, HANG, SayRequest(), timeout=5, request_id=handle.request_id)
    assert err.value.raw_code == ErrorCode.CANCELLED


async def test_a_local_target_that_stops_fails_the_calls_waiting_on_it(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    call = asyncio.ensure_future(a.call_raw(b.actr_id, HANG, SayRequest(), timeout=30))
    await asyncio.wait_for(actor(b).hanging.wait(), 5)
    await b.stop()
    with pytest.raises(Unavailable):
        await asyncio.wait_for(call, 5)
    assert id_text(b.actr_id) not in a.transport.local_peers
    with pytest.raises(ActrError):  # no longer local: the usual way, and it is gone
        await a.call_raw(b.actr_id, PONG, SayRequest(), timeout=2)


async def test_a_call_with_streams_between_actors_of_one_process(
    pair: tuple[Node, Node],
) -> None:
    """X-STR-6 over X-LOCAL-1: a server stream (4 MB, past the 1 MiB window, so
    credit paces it) from one in-process actor to another's handler."""
    a, b = pair
    reply = await a.call(a.actr_id, RELAY, SayRequest(text=id_text(b.actr_id)), SayReply)
    assert reply.text == "40"
    assert not a.transport._peers and not b.transport._peers
    for node in (a, b):
        s = node.stats()["streams"]
        assert (s["inbound_open"], s["outbound_open"]) == (0, 0)
        assert s["credit_peers"] >= 1
