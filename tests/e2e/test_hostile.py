"""Hostile input over a real data channel (DC-3, DC-4, ENV-1, ENV-2, ENV-3, DC-1): the
daemon stays up, keeps answering good calls during and after, and counts each reject."""

from __future__ import annotations

import asyncio

import pytest

from actr.framing import HEADER
from actr.protocol.actr_pb2 import Direction, PayloadType, RpcEnvelope
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import STATS_FOR_CLIENT, Cluster, runtime_stats

pytestmark = pytest.mark.e2e

WORKER = "acme:worker:1.0"
BASE = 0xFFFF0000  # msg_ids far from the client's own, which count up from 0


def frame(msg_id: int, index: int, total: int, body: bytes = b"x") -> bytes:
    return HEADER.pack(BASE + msg_id, index, total) + body


def envelope(msg_id: int, **fields: object) -> bytes:
    env = RpcEnvelope(route_key="worker.v1.Worker.Work", request_id="r", timeout_ms=0)
    for k, v in fields.items():
        setattr(env, k, v)
    return frame(msg_id, 0, 1, env.SerializeToString())


async def test_hostile_frames_and_envelopes_are_dropped_and_counted(cluster: Cluster) -> None:
    await cluster.start_actor(
        "worker",
        "tests.e2e.actors:Worker",
        sections={"limits": {"max_message_size": 1048576}, **STATS_FOR_CLIENT},
    )
    async with cluster.client() as client:
        ok = 0

        async def good_call() -> None:
            nonlocal ok
            r = await client.call(
                WORKER, "worker.v1.Worker.Work", SayRequest(text=f"g{ok}:0"), SayReply, timeout=10
            )
            assert r.text == f"g{ok}"
            ok += 1

        await good_call()
        peer = next(iter(client.transport._peers.values()))
        rpc = peer.channels[PayloadType.RPC_RELIABLE]
        stream = peer.channels[PayloadType.STREAM_RELIABLE]

        hostile: list[tuple[object, bytes]] = [
            (rpc, b"\x00\x01\x02"),  # truncated header
            (rpc, frame(1, 0, 1, b"y" * 70_000)),  # fragment over 65,535 bytes
            (rpc, frame(2, 0, 0)),  # total 0
            (rpc, frame(3, 5, 3)),  # index >= total
            (rpc, frame(4, 0, 4)),
            (rpc, frame(4, 1, 5)),  # conflicting totals
            (rpc, frame(5, 0, 3)),
            (rpc, frame(5, 0, 3)),  # duplicate index
            (rpc, b"\xff" * 120),  # garbage whose header claims index 65535 of 65535
            (rpc, frame(6, 0, 1, b"\xff" * 100)),  # one whole frame of garbage
            (rpc, envelope(10)),  # direction UNSPECIFIED
            (rpc, envelope(11, direction=Direction.DIRECTION_RESPONSE, request_id="nobody")),
            (stream, frame(7, 0, 1, b"\xff" * 50)),  # undecodable stream chunk
        ]
        # A message that grows past max_message_size (1 MiB) fragment by fragment.
        hostile += [(rpc, frame(8, i, 20, b"z" * 65_527)) for i in range(17)]
        for i, (channel, data) in enumerate(hostile):
            channel.send(data)  # type: ignore[attr-defined]
            if i % 3 == 0:
                await good_call()

        # A request with timeout_ms <= 0 is answered INVALID_ARGUMENT (ENV-3).
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[RpcEnvelope] = loop.create_future()
        client.pending.add("no-deadline", peer.key, loop.time() + 10, fut)
        bad = RpcEnvelope(
            route_key="worker.v1.Worker.Work",
            request_id="no-deadline",
            timeout_ms=0,
            direction=Direction.DIRECTION_REQUEST,
            payload=b"",
        )
        rpc.send(frame(9, 0, 1, bad.SerializeToString()))
        answer = await asyncio.wait_for(fut, 10)
        assert answer.error.code == 10005

        # A channel with a label outside DC-1 is closed by the daemon.
        bogus = peer.pc.createDataChannel("BOGUS")
        closed = asyncio.Event()
        bogus.on("close", closed.set)
        await asyncio.wait_for(closed.wait(), 10)

        for _ in range(5):
            await good_call()
        stats = await runtime_stats(client, WORKER)

    transport, gate = stats["transport"], stats["inbound"]
    assert transport["frame_short_frame"] == 1
    assert transport["frame_frame_too_large"] == 1
    assert transport["frame_zero_total"] == 1
    assert transport["frame_index_out_of_range"] == 2
    assert transport["frame_conflicting_total"] == 1
    assert transport["frame_duplicate_fragment"] == 1
    assert transport["frame_message_too_large"] == 1
    assert transport["unknown_channel_label"] == 1
    assert gate["envelope_decode_error"] == 1
    assert gate["unspecified_direction"] == 1
    assert gate["stream_decode_error"] == 1
    assert gate["request_without_deadline"] == 1
    assert stats["pending"]["unknown_response"] == 1
    assert cluster.procs["worker"].popen.poll() is None
    (pair,) = [p["selected_pair"] for p in stats["peers"].values()]
    assert pair == ["host", "host"]  # loopback, no TURN
    assert ok == 1 + len(range(0, len(hostile), 3)) + 5
