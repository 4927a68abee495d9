"""The two sides of bench/streams.py that run in other processes, and their helpers.

- raw aiortc: a sink in a child process (this file run with --raw-sink), one peer
  connection, one reliable ordered data channel, SDP over a pipe; binary messages
  are data (counted, and hashed with --verify), the text message "end" is answered
  with a JSON line of what came since the last "end";
- ``send_raw``: the sending side, here, with the channel's bufferedAmount
  backpressure (bufferedAmountLowThreshold and "bufferedamountlow", the same marks
  as actr's [webrtc] high_water / low_water);
- ``Sink``: the actr actor the daemon runs (``bench.stream_peers:Sink``).
  ``bench.v1.Sink.Begin`` (JSON {"stream": id, "verify": bool}) registers the
  caller's stream and consumes it in a task of its own, answering at once;
  ``bench.v1.Sink.Result`` (the stream id) waits for that task and answers JSON
  {"bytes", "chunks", "sha256"} once the stream ended;
- /proc readers: a process's peak RSS (VmHWM) and CPU seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from actr import Actor, Context, rpc  # noqa: E402
from actr.transport.config import TransportConfig  # noqa: E402
from actr.transport.ice import apply_process_settings  # noqa: E402


def _raw_sockets() -> None:
    """Raw aiortc on loopback with the process settings actr's own sockets get (the
    same UDP receive buffer: with aioice's 256 KiB a burst of small messages loses
    datagrams and SCTP stalls on its retransmission timer)."""
    apply_process_settings(TransportConfig(host_addresses=["127.0.0.1"]))


# The same marks as an actr data channel (DC-5), so both sides queue alike.
HIGH_WATER = TransportConfig.high_water
LOW_WATER = TransportConfig.low_water
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pattern(size: int) -> bytes:
    """``size`` bytes that are not all alike (a hash over them means something)."""
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


def expected_digest(total: int, chunk: int) -> str:
    payload = pattern(chunk)
    digest = hashlib.sha256()
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        digest.update(payload if n == chunk else payload[:n])
        sent += n
    return digest.hexdigest()


# ---------------------------------------------------------------- /proc


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM of ``pid`` in KiB (None if unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


# ---------------------------------------------------------------- actr sink actor


async def _consume(rx: Any, verify: bool) -> dict[str, Any]:
    digest = hashlib.sha256() if verify else None
    total = chunks = 0
    async for chunk in rx:
        payload = chunk.payload
        total += len(payload)
        chunks += 1
        if digest is not None:
            digest.update(payload)
    return {"bytes": total, "chunks": chunks, "sha256": digest.hexdigest() if digest else None}


class Sink(Actor):
    """Takes streams announced by ``Begin`` and says what came with ``Result``."""

    actr_type = "bench:sink:1.0"

    def __init__(self) -> None:
        self.streams: dict[str, asyncio.Task[dict[str, Any]]] = {}

    @rpc("bench.v1.Sink.Begin")
    async def begin(self, req: bytes, ctx: Context) -> bytes:
        spec = json.loads(req)
        rx = ctx.receive_stream(spec["stream"])
        self.streams[spec["stream"]] = asyncio.create_task(_consume(rx, bool(spec["verify"])))
        return b"ready"

    @rpc("bench.v1.Sink.Result")
    async def result(self, req: bytes, ctx: Context) -> bytes:
        task = self.streams.pop(req.decode())
        return json.dumps(await task).encode()


# ---------------------------------------------------------------- raw aiortc sink (child)


def _sink_on(ch: RTCDataChannel, verify: bool) -> None:
    state: dict[str, Any] = {"bytes": 0, "chunks": 0, "digest": hashlib.sha256()}

    @ch.on("message")
    def on_message(msg: bytes | str) -> None:
        if isinstance(msg, str):
            digest = state["digest"]
            ch.send(
                json.dumps(
                    {
                        "bytes": state["bytes"],
                        "chunks": state["chunks"],
                        "sha256": digest.hexdigest() if verify else None,
                    }
                )
            )
            state.update(bytes=0, chunks=0, digest=hashlib.sha256())
            return
        state["bytes"] += len(msg)
        state["chunks"] += 1
        if verify:
            state["digest"].update(msg)


async def raw_sink(verify: bool) -> None:
    """Answers one offer read from stdin, counts what comes until the peer closes."""
    _raw_sockets()
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    pc = RTCPeerConnection()
    pc.on("datachannel", lambda ch: _sink_on(ch, verify))
    await pc.setRemoteDescription(RTCSessionDescription(**json.loads(line)))
    await pc.setLocalDescription(await pc.createAnswer())
    print(json.dumps({"sdp": pc.localDescription.sdp, "type": "answer"}), flush=True)
    done = asyncio.Event()
    pc.on(
        "connectionstatechange",
        lambda: done.set() if pc.connectionState in ("closed", "failed") else None,
    )
    # Closed by the peer, or stdin closing (the parent going away).
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    await asyncio.wait(
        {asyncio.ensure_future(done.wait()), asyncio.ensure_future(stdin_closed)},
        return_when=asyncio.FIRST_COMPLETED,
    )
    await pc.close()


# ---------------------------------------------------------------- raw aiortc sender (here)


class RawPeer:
    """The sending side: a peer connection to a --raw-sink child and its channel."""

    def __init__(self, verify: bool) -> None:
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--raw-sink"] + (["--verify"] if verify else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pc = RTCPeerConnection()
        self.ch = self.pc.createDataChannel("bench", ordered=True)
        self.replies: asyncio.Queue[str] = asyncio.Queue()
        self._drained = asyncio.Event()

    @property
    def pid(self) -> int:
        return self.child.pid

    async def _line(self) -> str:
        assert self.child.stdout is not None
        return await asyncio.get_running_loop().run_in_executor(None, self.child.stdout.readline)

    async def connect(self) -> None:
        _raw_sockets()
        assert self.child.stdin is not None
        assert await self._line() == "ready\n"
        opened = asyncio.Event()
        self.ch.on("open", opened.set)
        self.ch.on("message", lambda m: self.replies.put_nowait(m))
        self.ch.bufferedAmountLowThreshold = LOW_WATER
        self.ch.on("bufferedamountlow", self._drained.set)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        self.child.stdin.write(json.dumps(offer) + "\n")
        self.child.stdin.flush()
        await self.pc.setRemoteDescription(RTCSessionDescription(**json.loads(await self._line())))
        await asyncio.wait_for(opened.wait(), 30)

    async def transfer(self, total: int, chunk: int) -> tuple[float, dict[str, Any]]:
        """Sends ``total`` bytes in ``chunk``-byte messages; seconds from the first send
        to the sink's count, and that count."""
        ch = self.ch
        payload = pattern(chunk)
        drained = self._drained
        t0 = time.perf_counter()
        sent = 0
        while sent < total:
            n = min(chunk, total - sent)
            while ch.bufferedAmount > HIGH_WATER:
                drained.clear()
                await drained.wait()
            ch.send(payload if n == chunk else payload[:n])
            sent += n
        ch.send("end")
        reply = await asyncio.wait_for(self.replies.get(), 600)
        return time.perf_counter() - t0, json.loads(reply)

    async def close(self) -> None:
        await self.pc.close()
        assert self.child.stdin is not None
        self.child.stdin.close()
        try:
            self.child.wait(10)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()


def main() -> int:
    run: Callable[[Any], Any]
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    if sys.argv[1] == "--raw-sink":
        run(raw_sink(verify="--verify" in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
