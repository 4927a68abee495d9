"""End to end: X-HELLO-1 (features recorded on both sides), X-CALL-1 (cancelling a
running and a queued call across processes), X-CALL-2 (a nested call inherits the
deadline), X-CALL-3 (metadata), over real aiortc connections to actor daemons.

The actor daemons run the classes below (``tests.e2e.test_call_control:Sleeper``);
they write what happened to a side file (ACTR_TEST_SIDE_FILE), one line each."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actr import Actor, Context, rpc
from actr.errors import ActrError, ErrorCode, InvalidArgument
from actr.hello import FEATURES, STREAM_WINDOW, peer_features
from actr.node import CLIENT_TYPE, Node
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster, runtime_stats

pytestmark = pytest.mark.e2e

SLEEP = "sleeper.v1.Sleeper.Sleep"
NEST = "sleeper.v1.Sleeper.Nest"
REMAINING = "sleeper.v1.Sleeper.Remaining"
CLASS = "tests.e2e.test_call_control:Sleeper"
# Stats for the test's client, as often as it polls.
SECTIONS: dict[str, dict[str, object]] = {
    "admin": {"stats_from": [CLIENT_TYPE], "stats_per_sec": 1000.0, "stats_burst": 1000}
}


class Sleeper(Actor):
    actr_type = "acme:sleeper:1.0"

    def __init__(self) -> None:
        self.side_file = os.environ.get("ACTR_TEST_SIDE_FILE", "")

    def _record(self, *words: object) -> None:
        if self.side_file:
            line = " ".join(str(w) for w in words) + "\n"
            fd = os.open(self.side_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)

    @rpc(SLEEP)
    async def sleep(self, req: SayRequest, ctx: Context) -> SayReply:
        self._record("start", req.text, time.time())
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self._record("cancelled", req.text, time.time())
            raise
        return SayReply(text=req.text)

    @rpc(NEST)
    async def nest(self, req: SayRequest, ctx: Context) -> SayReply:
        outer = ctx.remaining()
        hop = {"hop": "outer", **ctx.metadata}
        inner = await ctx.call(
            req.text, REMAINING, SayRequest(), SayReply, timeout=30, metadata=hop
        )
        return SayReply(
            text=json.dumps(
                {"outer": outer, "outer_metadata": ctx.metadata, **json.loads(inner.text)}
            )
        )

    @rpc(REMAINING)
    async def remaining(self, req: SayRequest, ctx: Context) -> SayReply:
        return SayReply(text=json.dumps({"inner": ctx.remaining(), "inner_metadata": ctx.metadata}))


async def until(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Waits for ``check()`` to be true (polling), at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def until_async(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def lines(side: Path) -> list[list[str]]:
    if not side.exists():
        return []
    return [line.split() for line in side.read_text().splitlines()]


def line_for(side: Path, event: str, label: str) -> list[str] | None:
    return next((w for w in lines(side) if w[:2] == [event, label]), None)


async def start_sleeper(cluster: Cluster, name: str, side: Path, handlers: int = 4) -> str:
    sections = {**SECTIONS, "actor": {"max_concurrent_handlers": handlers}}
    return await cluster.start_actor(
        name, CLASS, env={"ACTR_TEST_SIDE_FILE": str(side)}, sections=sections
    )


async def node_stats(client: Node, target: str) -> dict[str, Any]:
    stats = await runtime_stats(client, target)
    node: dict[str, Any] = stats["node"]
    return {**node, "depth": stats.get("mailbox", {}).get("depth")}


async def test_hello_is_recorded_on_both_sides(cluster: Cluster, tmp_path: Path) -> None:
    sleeper = await start_sleeper(cluster, "s", tmp_path / "side")
    async with cluster.client() as client:
        await client.call(sleeper, REMAINING, SayRequest(), SayReply, timeout=10)
        peer = client.transport.peer(sleeper)
        assert peer is not None
        assert await peer_features(peer, 5.0) == FEATURES
        assert peer.stream_window == STREAM_WINDOW
        stats = await until_async(
            lambda: node_stats(client, sleeper), "the daemon's hello counters"
        )
        assert stats["hello_sent"] >= 1 and stats["hello_received"] >= 1
        assert client.counters["hello_sent"] == 1
        assert client.counters["hello_received"] == 1


async def test_cancel_stops_the_running_handler_and_a_retry_gets_cancelled(
    cluster: Cluster, tmp_path: Path
) -> None:
    side = tmp_path / "side"
    sleeper = await start_sleeper(cluster, "s", side)
    async with cluster.client() as client:
        handle = client.start_call(sleeper, SLEEP, SayRequest(text="a"), timeout=30)
        await until(lambda: line_for(side, "start", "a"), "the handler to start")
        peer = client.transport.peer(sleeper)
        assert peer is not None and "cancel" in await peer_features(peer, 5.0)
        cancelled_at = time.time()
        handle.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handle
        seen = await until(lambda: line_for(side, "cancelled", "a"), "the handler's cancel")
        assert float(seen[2]) - cancelled_at < 0.1
        # The same request again: the stored answer CANCELLED, not a second run.
        with pytest.raises(ActrError) as err:
            await client.call_raw(
                sleeper, SLEEP, SayRequest(text="a"), timeout=5, request_id=handle.request_id
            )
        assert err.value.raw_code == ErrorCode.CANCELLED
        assert [w[:2] for w in lines(side)] == [["start", "a"], ["cancelled", "a"]]
        stats = await node_stats(client, sleeper)
        assert stats["cancel_running"] == 1 and stats["cancelled_running"] == 1
        assert client.counters["cancel_sent"] == 1


async def test_a_queued_call_cancelled_never_runs(cluster: Cluster, tmp_path: Path) -> None:
    side = tmp_path / "side"
    sleeper = await start_sleeper(cluster, "s", side, handlers=1)
    async with cluster.client() as client:
        first = client.start_call(sleeper, SLEEP, SayRequest(text="b"), timeout=30)
        await until(lambda: line_for(side, "start", "b"), "the first handler to start")
        second = client.start_call(sleeper, SLEEP, SayRequest(text="c"), timeout=30)

        async def queued() -> bool:
            return (await node_stats(client, sleeper))["depth"] == 2

        await until_async(queued, "the second request in the mailbox")
        second.cancel()
        first.cancel()
        for handle in (first, second):
            with pytest.raises(asyncio.CancelledError):
                await handle

        async def both_done() -> dict[str, Any] | None:
            stats = await node_stats(client, sleeper)
            return stats if stats["depth"] == 0 else None

        stats = await until_async(both_done, "both requests acked")
        assert stats["cancel_queued"] == 1 and stats["cancelled_queued"] == 1
        assert stats["cancelled_running"] == 1
        assert line_for(side, "start", "c") is None
        with pytest.raises(ActrError) as err:
            await client.call_raw(
                sleeper, SLEEP, SayRequest(text="c"), timeout=5, request_id=second.request_id
            )
        assert err.value.raw_code == ErrorCode.CANCELLED
        assert line_for(side, "start", "c") is None


async def test_a_nested_call_inherits_the_deadline_and_metadata_arrives(
    cluster: Cluster, tmp_path: Path
) -> None:
    outer = await start_sleeper(cluster, "outer", tmp_path / "side")
    inner = await start_sleeper(cluster, "inner", tmp_path / "side")
    async with cluster.client() as client:
        reply = await client.call(
            outer, NEST, SayRequest(text=inner), SayReply, timeout=5, metadata={"tenant": "t1"}
        )
        got = json.loads(reply.text)
        assert 0 < got["inner"] <= got["outer"] <= 5.0
        assert got["outer_metadata"] == {"tenant": "t1"}
        assert got["inner_metadata"] == {"hop": "outer", "tenant": "t1"}
        with pytest.raises(InvalidArgument):
            await client.call(outer, NEST, SayRequest(), SayReply, metadata={"actr.x": "1"})
        with pytest.raises(InvalidArgument):
            await client.tell(outer, NEST, SayRequest(), metadata={"actr.stream.in": "s"})
