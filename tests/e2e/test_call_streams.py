"""X-STR-6 end to end: server-streaming, client-streaming and bidirectional calls
against an actor daemon (its own process), each ended normally, by an error, by
the caller's cancel, and by killing the other process; afterwards no stream is
left open on either side (Stats)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import actr
from actr.errors import ActrError, ApplicationError, ErrorCode
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import STATS_FOR_CLIENT, Cluster, runtime_stats

pytestmark = pytest.mark.e2e

NUMBERS = "tests.e2e.stream_actors:Numbers"
COUNT = "numbers.v1.Numbers.Count"
SUM = "numbers.v1.Numbers.Sum"
ECHO = "numbers.v1.Numbers.Echo"


def open_streams(stats: dict[str, Any]) -> int:
    s = stats["streams"]
    return int(s["inbound_open"]) + int(s["outbound_open"]) + int(s["held_early_chunks"])


async def eventually_no_streams(client: actr.Node, target: str, timeout: float = 10.0) -> None:
    """Open streams on both sides go back to 0 (teardown is asynchronous: a reset
    crosses the connection)."""
    async with asyncio.timeout(timeout):
        while True:
            remote = open_streams(await runtime_stats(client, target))
            local = open_streams(client.stats())
            if remote == 0 and local == 0:
                return
            await asyncio.sleep(0.05)  # polling a remote counter, bounded above


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def side_events(path: Path, route: str, how: str, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            for ev in _events(path):
                if ev["route"] == route and ev["how"] == how:
                    return ev
            await asyncio.sleep(0.02)  # polling a file another process writes


@pytest.fixture
async def numbers(cluster: Cluster, tmp_path: Path) -> tuple[str, Path]:
    side = tmp_path / "side.jsonl"
    target = await cluster.start_actor(
        "numbers",
        NUMBERS,
        env={"ACTR_TEST_SIDE_FILE": str(side)},
        sections={
            **STATS_FOR_CLIENT,
            "actor": {"max_concurrent_handlers": 4},
            # A dead caller is noticed in ~2 s (ICE consent), not the default 30 s.
            "webrtc": {"consent_interval": 0.5, "consent_failures": 3},
        },
    )
    return target, side


# ---- server-streaming ----


async def test_server_stream_ends_normally(cluster: Cluster, numbers: tuple[str, Path]) -> None:
    target, side = numbers
    async with cluster.client() as client:
        got = [
            r
            async for r in client.call_stream(
                target, COUNT, SayRequest(text="200"), SayReply, metadata={"tag": "t1"}
            )
        ]
        assert [r.text for r in got] == [str(i) for i in range(200)]
        assert {r.served_by for r in got} == {"t1"}
        await side_events(side, "Count", "done")
        await eventually_no_streams(client, target)


async def test_server_stream_ends_with_the_handlers_error(
    cluster: Cluster, numbers: tuple[str, Path]
) -> None:
    target, _ = numbers
    async with cluster.client() as client:
        got: list[str] = []
        with pytest.raises(ApplicationError) as err:
            req = SayRequest(text="10:fail=5")
            async for r in client.call_stream(target, COUNT, req, SayReply):
                got.append(r.text)
        assert got == ["0", "1", "2", "3", "4"]
        assert "failing at 5" in err.value.message
        await eventually_no_streams(client, target)


async def test_server_stream_cancelled_by_the_caller(
    cluster: Cluster, numbers: tuple[str, Path]
) -> None:
    target, side = numbers
    async with cluster.client() as client:
        call = await client.open_call(target, COUNT, SayRequest(text="3:hang"), out=SayReply)
        seen = []
        async for r in call:
            seen.append(r.text)
            if len(seen) == 3:
                break
        cancelled_at = time.time()
        call.cancel()
        ev = await side_events(side, "Count", "cancelled")
        assert ev["request_id"] == call.request_id
        assert ev["at"] - cancelled_at < 0.5
        await eventually_no_streams(client, target)


# ---- client-streaming ----


async def test_client_stream_ends_normally(cluster: Cluster, numbers: tuple[str, Path]) -> None:
    target, _ = numbers
    async with cluster.client() as client:
        items = (SayRequest(text=str(i)) for i in range(1000))
        reply = await client.call_client_stream(target, SUM, items, SayReply)
        assert reply.text == f"{sum(range(1000))}/1000"
        await eventually_no_streams(client, target)


async def test_client_stream_ends_with_the_handlers_error(
    cluster: Cluster, numbers: tuple[str, Path]
) -> None:
    target, side = numbers
    async with cluster.client() as client:
        items = [SayRequest(text="1"), SayRequest(text="boom"), SayRequest(text="2")]
        with pytest.raises(ApplicationError):
            await client.call_client_stream(target, SUM, items, SayReply)
        await side_events(side, "Sum", "error")
        await eventually_no_streams(client, target)


async def test_client_stream_cancelled_by_the_caller(
    cluster: Cluster, numbers: tuple[str, Path]
) -> None:
    target, side = numbers
    async with cluster.client() as client:
        call = await client.open_call(target, SUM, send=SayRequest, response_type=SayReply)
        for i in range(5):
            await call.send(SayRequest(text=str(i)))
        await side_events(side, "Sum", "started")
        call.cancel()
        await side_events(side, "Sum", "cancelled")
        await eventually_no_streams(client, target)


# ---- bidirectional ----


async def test_bidi_ends_normally(cluster: Cluster, numbers: tuple[str, Path]) -> None:
    target, side = numbers
    async with cluster.client() as client:
        call = await client.open_call(target, ECHO, send=SayRequest, out=SayReply)
        async with call:
            replies = aiter(call)
            for word in ["a", "bc", "def"]:
                await call.send(SayRequest(text=word))
                r = await anext(replies)
                assert r.text == word.upper()
            await call.done_sending()
            assert [r async for r in replies] == []
            await call.result()
        await side_events(side, "Echo", "done")
        await eventually_no_streams(client, target)


async def test_bidi_ends_with_the_handlers_error(
    cluster: Cluster, numbers: tuple[str, Path]
) -> None:
    target, _ = numbers
    async with cluster.client() as client:
        call = await client.open_call(target, ECHO, send=SayRequest, out=SayReply)
        await call.send(SayRequest(text="x"))
        await call.send(SayRequest(text="boom"))
        got = []
        with pytest.raises(ApplicationError):
            async for r in call:
                got.append(r.text)
        assert got == ["X"]
        await eventually_no_streams(client, target)


async def test_bidi_cancelled_by_the_caller(cluster: Cluster, numbers: tuple[str, Path]) -> None:
    target, side = numbers
    async with cluster.client() as client:
        with pytest.raises(RuntimeError):
            async with await client.open_call(target, ECHO, send=SayRequest, out=SayReply) as call:
                await call.send(SayRequest(text="x"))
                assert (await anext(aiter(call))).text == "X"
                raise RuntimeError("the caller gives up")  # leaving the block cancels
        await side_events(side, "Echo", "cancelled")
        await eventually_no_streams(client, target)


# ---- the other process dies ----


@pytest.mark.parametrize("route", [COUNT, SUM, ECHO])
async def test_killing_the_callee_ends_the_callers_streams(
    cluster: Cluster, numbers: tuple[str, Path], route: str
) -> None:
    target, _ = numbers
    # ICE consent every 0.5 s: the dead peer is noticed in ~2 s (DC-6).
    async with cluster.client(consent_interval=0.5, consent_failures=3) as client:
        if route == COUNT:
            call = await client.open_call(target, route, SayRequest(text="2:hang"), out=SayReply)
        else:
            call = await client.open_call(
                target, route, send=SayRequest, out=SayReply if route == ECHO else None
            )
            await call.send(SayRequest(text="1"))
        if route != SUM:
            await anext(aiter(call))
        cluster.procs["numbers"].kill()
        with pytest.raises(ActrError) as err:
            async with asyncio.timeout(15):
                if route == SUM:
                    await call.result()
                else:
                    async for _ in call:
                        pass
                    await call.result()
        assert err.value.raw_code in (ErrorCode.UNAVAILABLE, ErrorCode.TIMED_OUT)
        assert open_streams(client.stats()) == 0


@pytest.mark.parametrize("route", [COUNT, SUM, ECHO])
async def test_killing_the_caller_ends_the_callees_streams(
    cluster: Cluster, numbers: tuple[str, Path], route: str
) -> None:
    target, side = numbers
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.stream_caller",
        cluster.url,
        target,
        route,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        assert json.loads(line) == {"streaming": True}
        proc.kill()
        await proc.wait()
        name = route.rsplit(".", 1)[1]
        # The handler sees its call end (cancelled, or its input stream failing).
        ev = await side_events(side, name, "cancelled", timeout=20.0)
        assert ev["route"] == name
        async with cluster.client() as client:
            await eventually_no_streams(client, target, timeout=20.0)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
