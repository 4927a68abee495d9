"""The baselines of bench/rpc.py, each a caller here and an echo in a child process:

- raw aiortc: two peer connections, one reliable ordered data channel, SDP over
  a pipe; 100-byte ping-pong, round trips with N in flight, one-way messages with
  bufferedAmount backpressure; and first contact: a new connection set up (offer,
  answer, ICE, DTLS, SCTP, channel open) and one round trip;
- grpc.aio: grpcio's asyncio server (a generic unary handler, bytes in and out)
  and client, 100-byte payloads, over loopback TCP (HTTP/2, no TLS).

The children are this file run with --raw-echo, --raw-setup or --grpc-echo.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from actr.transport.config import TransportConfig  # noqa: E402
from actr.transport.ice import apply_process_settings  # noqa: E402


def _raw_sockets() -> None:
    """Raw aiortc on loopback with the process settings actr's own sockets get (the
    same UDP receive buffer: with aioice's 256 KiB a burst of small messages loses
    datagrams and SCTP stalls on its retransmission timer)."""
    apply_process_settings(TransportConfig(host_addresses=["127.0.0.1"]))


PAYLOAD = b"x" * 100
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(
    call: Callable[[int], Awaitable[None]], calls: int, inflight: int
) -> dict[str, float]:
    """Sequential latency (p50, p99) and round trips per second with ``inflight``."""
    for i in range(50):  # warm-up
        await call(i)
    lat = []
    for i in range(calls):
        t0 = time.perf_counter()
        await call(1000 + i)
        lat.append(time.perf_counter() - t0)
    total = calls * 2
    sem = asyncio.Semaphore(inflight)

    async def bounded(i: int) -> None:
        async with sem:
            await call(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(bounded(10_000_000 + i) for i in range(total)))
    return {
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "rps_inflight": total / (time.perf_counter() - t0),
    }


def _child(flag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, flag], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


async def _line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    return await asyncio.get_running_loop().run_in_executor(None, child.stdout.readline)


# ---------------------------------------------------------------- raw aiortc, children


def _echo_on(ch: RTCDataChannel) -> None:
    count = 0

    @ch.on("message")
    def on_message(msg: bytes) -> None:
        nonlocal count
        if msg[:1] == b"O":
            count += 1
        elif msg[:1] == b"C":
            ch.send(b"C" + struct.pack(">I", count))
            count = 0
        else:
            ch.send(msg)


async def raw_child(many: bool) -> None:
    """Answers offers read from stdin, one a line, and echoes (b"O..." is one-way)."""
    _raw_sockets()
    loop = asyncio.get_running_loop()
    pcs: list[RTCPeerConnection] = []
    print("ready", flush=True)
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        pc = RTCPeerConnection()
        pcs.append(pc)
        pc.on("datachannel", _echo_on)
        await pc.setRemoteDescription(RTCSessionDescription(**json.loads(line)))
        await pc.setLocalDescription(await pc.createAnswer())
        print(json.dumps({"sdp": pc.localDescription.sdp, "type": "answer"}), flush=True)
        if not many:
            break
    if not many:
        done = asyncio.Event()
        pcs[0].on(
            "connectionstatechange",
            lambda: done.set() if pcs[0].connectionState in ("closed", "failed") else None,
        )
        await done.wait()
    for pc in pcs:
        await pc.close()


# ---------------------------------------------------------------- raw aiortc, caller


async def _raw_connect(child: subprocess.Popen[str]) -> tuple[RTCPeerConnection, RTCDataChannel]:
    assert child.stdin is not None
    pc = RTCPeerConnection()
    ch = pc.createDataChannel("bench", ordered=True)
    opened = asyncio.Event()
    ch.on("open", opened.set)
    await pc.setLocalDescription(await pc.createOffer())
    child.stdin.write(json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}) + "\n")
    child.stdin.flush()
    await pc.setRemoteDescription(RTCSessionDescription(**json.loads(await _line(child))))
    await asyncio.wait_for(opened.wait(), 30)
    return pc, ch


async def bench_raw(calls: int, inflight: int, oneway: int) -> dict[str, float]:
    _raw_sockets()
    child = _child("--raw-echo")
    assert await _line(child) == "ready\n"
    pc, ch = await _raw_connect(child)
    drained = asyncio.Event()
    ch.bufferedAmountLowThreshold = LOW_WATER
    ch.on("bufferedamountlow", drained.set)
    replies: asyncio.Queue[bytes] = asyncio.Queue()
    waiters: dict[bytes, asyncio.Future[None]] = {}

    @ch.on("message")
    def on_message(msg: bytes) -> None:
        fut = waiters.pop(msg[:8], None)
        if fut is not None:
            fut.set_result(None)
        else:
            replies.put_nowait(msg)

    async def send(data: bytes) -> None:
        while ch.bufferedAmount > HIGH_WATER:
            drained.clear()
            await drained.wait()
        ch.send(data)

    loop = asyncio.get_running_loop()

    async def round_trip(i: int) -> None:
        tag = b"P" + struct.pack(">Q", i)[1:]
        fut: asyncio.Future[None] = loop.create_future()
        waiters[tag] = fut
        await send(tag + PAYLOAD[8:])
        await fut

    out = await measure(round_trip, calls, inflight)
    t0 = time.perf_counter()
    for _ in range(oneway):
        await send(b"O" + PAYLOAD[1:])
    ch.send(b"C")
    reply = await asyncio.wait_for(replies.get(), 60)
    out["oneway_per_s"] = oneway / (time.perf_counter() - t0)
    assert struct.unpack(">I", reply[1:5])[0] == oneway, "one-way messages lost"
    await pc.close()
    child.wait(10)
    return out


async def raw_first_calls(rounds: int) -> list[float]:
    """Seconds from a new peer connection to the answer of its first round trip (the
    echo process already running: as an actr daemon would be)."""
    _raw_sockets()
    child = _child("--raw-setup")
    assert child.stdin is not None
    assert await _line(child) == "ready\n"
    took = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        pc, ch = await _raw_connect(child)
        answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        ch.on("message", lambda m, f=answered: f.done() or f.set_result(m))
        ch.send(PAYLOAD)
        await asyncio.wait_for(answered, 30)
        took.append(time.perf_counter() - t0)
        await pc.close()
    child.stdin.close()
    child.wait(10)
    return took


# ---------------------------------------------------------------- grpc.aio


async def grpc_child() -> None:
    import grpc

    async def say(request: bytes, context: Any) -> bytes:
        return request

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    await server.stop(None)


async def bench_grpc(calls: int, inflight: int) -> dict[str, float]:
    import grpc

    child = _child("--grpc-echo")
    assert child.stdin is not None
    port = int(await _line(child))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        say = channel.unary_unary("/bench.Echo/Say")

        async def call(i: int) -> None:
            await say(PAYLOAD, timeout=60)

        out = await measure(call, calls, inflight)
    child.stdin.close()
    child.wait(10)
    return out


def main() -> int:
    flag = sys.argv[1]
    if flag == "--grpc-echo":
        asyncio.run(grpc_child())  # grpc.aio's own supported loop
        return 0
    try:
        import uvloop

        run: Callable[[Any], Any] = uvloop.run
    except ImportError:
        run = asyncio.run
    run(raw_child(many=flag == "--raw-setup"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
