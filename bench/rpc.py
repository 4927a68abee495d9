"""RPC benchmark: raw aiortc against actr, in one run, on loopback.

    python bench/rpc.py [--calls 2000] [--inflight 64] [--oneway 5000]

(a) raw aiortc: two peer connections in two processes (the second an echo over
    one reliable ordered data channel, SDP exchanged over a pipe): 100-byte
    ping-pong latency, round trips per second with 64 in flight, one-way
    100-byte messages per second with bufferedAmount backpressure.
(b) actr: a signaling server and the echo actor daemon as separate processes,
    a client in this process: sequential calls (p50, p99), calls per second
    with 64 in flight, one-way tells per second (tells, then one call that is
    answered after them, as the mailbox is FIFO).
Both sides run on uvloop when it is installed. Prints both and actr/raw ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from actr.transport import restrict_host_addresses  # noqa: E402

PAYLOAD = b"x" * 100
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024


def _loop_runner() -> object:
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# ---------------------------------------------------------------- raw aiortc


async def raw_echo_child() -> None:
    """Child side: answer the offer from stdin, echo what arrives (b"O..." is one-way)."""
    restrict_host_addresses(["127.0.0.1"])
    pc = RTCPeerConnection()
    done = asyncio.Event()
    count = 0

    @pc.on("datachannel")
    def on_channel(ch: RTCDataChannel) -> None:
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

        ch.on("close", done.set)

    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    offer = json.loads(line)
    await pc.setRemoteDescription(RTCSessionDescription(**offer))
    await pc.setLocalDescription(await pc.createAnswer())
    print(json.dumps({"sdp": pc.localDescription.sdp, "type": "answer"}), flush=True)
    pc.on(
        "connectionstatechange",
        lambda: done.set() if pc.connectionState in ("closed", "failed") else None,
    )
    await done.wait()
    await pc.close()


async def send_with_backpressure(ch: RTCDataChannel, data: bytes, drained: asyncio.Event) -> None:
    while ch.bufferedAmount > HIGH_WATER:
        drained.clear()
        await drained.wait()
    ch.send(data)


async def bench_raw(calls: int, inflight: int, oneway: int) -> dict[str, float]:
    restrict_host_addresses(["127.0.0.1"])
    child = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
        [sys.executable, __file__, "--raw-echo-child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    pc = RTCPeerConnection()
    ch = pc.createDataChannel("bench", ordered=True)
    opened = asyncio.Event()
    ch.on("open", opened.set)
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

    await pc.setLocalDescription(await pc.createOffer())
    child.stdin.write(json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}) + "\n")
    child.stdin.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, child.stdout.readline)
    await pc.setRemoteDescription(RTCSessionDescription(**json.loads(line)))
    await asyncio.wait_for(opened.wait(), 30)

    loop = asyncio.get_running_loop()

    async def round_trip(i: int) -> None:
        tag = b"P" + struct.pack(">Q", i)[1:]
        fut: asyncio.Future[None] = loop.create_future()
        waiters[tag] = fut
        await send_with_backpressure(ch, tag + PAYLOAD[8:], drained)
        await fut

    for i in range(50):  # warm-up
        await round_trip(i)
    lat = []
    for i in range(calls):
        t0 = time.perf_counter()
        await round_trip(1000 + i)
        lat.append(time.perf_counter() - t0)

    total = calls * 2
    sem = asyncio.Semaphore(inflight)

    async def bounded(i: int) -> None:
        async with sem:
            await round_trip(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(bounded(10_000_000 + i) for i in range(total)))
    rps = total / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for _ in range(oneway):
        await send_with_backpressure(ch, b"O" + PAYLOAD[1:], drained)
    ch.send(b"C")
    reply = await asyncio.wait_for(replies.get(), 60)
    oneway_rate = oneway / (time.perf_counter() - t0)
    assert struct.unpack(">I", reply[1:5])[0] == oneway, "one-way messages lost"

    await pc.close()
    child.wait(10)
    return {
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "rps_inflight": rps,
        "oneway_per_s": oneway_rate,
    }


# ---------------------------------------------------------------- actr


async def bench_actr(calls: int, inflight: int, oneway: int) -> dict[str, float]:
    import actr
    from examples.echo_pb2 import SayReply, SayRequest
    from examples.launch import start_actor, start_signaling, write_actor_config

    with tempfile.TemporaryDirectory(prefix="actr-bench-") as tmp:
        work = Path(tmp)
        sig, url = start_signaling(work)
        echo = None
        try:
            echo, _ = start_actor(
                work, "echo", write_actor_config(work, "echo", "examples.echo:Echo", url)
            )
            async with actr.connect(
                url, realm=1, realm_secret="dev-secret", host_addresses=["127.0.0.1"]
            ) as client:
                req = SayRequest(blob=PAYLOAD)
                target = "acme:echo:1.0"
                for _ in range(50):  # warm-up, connection setup
                    await client.call(target, "echo.v1.Echo.Say", req, SayReply)
                lat = []
                for _ in range(calls):
                    t0 = time.perf_counter()
                    await client.call(target, "echo.v1.Echo.Say", req, SayReply)
                    lat.append(time.perf_counter() - t0)

                total = calls * 2
                sem = asyncio.Semaphore(inflight)

                async def bounded() -> None:
                    async with sem:
                        await client.call(target, "echo.v1.Echo.Say", req, SayReply, timeout=60)

                t0 = time.perf_counter()
                await asyncio.gather(*(bounded() for _ in range(total)))
                rps = total / (time.perf_counter() - t0)

                t0 = time.perf_counter()
                for _ in range(oneway):
                    await client.tell(target, "echo.v1.Echo.Say", req)
                await client.call(target, "echo.v1.Echo.Say", req, SayReply, timeout=120)
                oneway_rate = oneway / (time.perf_counter() - t0)
        finally:
            if echo is not None:
                echo.stop()
            sig.stop()
    return {
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "rps_inflight": rps,
        "oneway_per_s": oneway_rate,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="raw aiortc vs actr on loopback")
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls")
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--oneway", type=int, default=5000, help="one-way messages")
    parser.add_argument("--raw-echo-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run = _loop_runner()
    if args.raw_echo_child:
        run(raw_echo_child())  # type: ignore[operator]
        return 0
    raw = run(bench_raw(args.calls, args.inflight, args.oneway))  # type: ignore[operator]
    ours = run(bench_actr(args.calls, args.inflight, args.oneway))  # type: ignore[operator]
    rows = [
        ("sequential p50 (ms)", "p50_ms", "lower is better"),
        ("sequential p99 (ms)", "p99_ms", "lower is better"),
        (f"round trips/s, {args.inflight} in flight", "rps_inflight", "higher is better"),
        ("one-way 100 B msg/s", "oneway_per_s", "higher is better"),
    ]
    print(f"{'metric':<32}{'raw aiortc':>12}{'actr':>12}{'actr/raw':>10}")
    for label, key, note in rows:
        ratio = ours[key] / raw[key]
        print(f"{label:<32}{raw[key]:>12.2f}{ours[key]:>12.2f}{ratio:>10.2f}  ({note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
