"""Signaling server benchmark: concurrent registered actor sockets on one server process.

    python bench/signaling.py [--actors 2000] [--heartbeat 5] [--hold 15] [--relays 2000]

The server runs as its own process (``python -m signaling``, heartbeat interval
``--heartbeat``). Every socket comes from 127.0.0.1, so the limits per client
address and per /24 are off (attempt rates and open connections: thousands of
sockets from one address are what they refuse), and so is the message rate.
This process registers ``--actors`` actors over HTTP and opens a signaling
socket for each (aiohttp), then every socket pings at the advised
interval, as the runtime does, for ``--hold`` seconds (at least 2 intervals).
Meanwhile it measures the relay round trip at that load: actor A relays an ICE
candidate to B, B relays it straight back, A times the pair; ``--relays`` of
them, 10 in flight. At the end it checks that the server still holds every
socket and expired none (``/stats``).

Memory per connection: the server's RSS (from /proc) after all sockets are
open and pinging, minus its RSS before the first registration, divided by the
count. Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actr.identity import id_text, parse_type  # noqa: E402
from actr.protocol.actr_pb2 import (  # noqa: E402
    Realm,
    RegisterOk,
    RegisterRequest,
    RegisterResponse,
)
from actr.protocol.signaling_pb2 import (  # noqa: E402
    ActrRelay,
    Ping,
    SignalingEnvelope,
)
from actr.protocol.webrtc_pb2 import IceCandidate  # noqa: E402
from actr.wire import (  # noqa: E402
    ENVELOPE_VERSION,
    PROTOBUF_CONTENT_TYPE,
    REALM_SECRET_HEADER,
    REGISTER_PATH,
    SOCKET_PATH,
)

SECRET = "bench-secret"
LISTEN_RE = re.compile(r"signaling listening on (http://\S+)")
CONNECT_CONCURRENCY = 64
RELAYS_IN_FLIGHT = 10
# A bench that cannot finish in this time has failed.
DEADLINE_SECS = 600


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def envelope() -> SignalingEnvelope:
    return SignalingEnvelope(envelope_version=ENVELOPE_VERSION, envelope_id=uuid.uuid4().hex)


@dataclass
class BenchActor:
    ok: RegisterOk
    ws: aiohttp.ClientWebSocketResponse
    pongs: int = 0
    errors: int = 0
    # envelope_id -> future, for relays coming back
    waiting: dict[str, asyncio.Future[float]] = field(default_factory=dict)

    def ping_frame(self) -> bytes:
        env = envelope()
        env.actr_to_server.source.CopyFrom(self.ok.actr_id)
        env.actr_to_server.credential.CopyFrom(self.ok.credential)
        env.actr_to_server.ping.CopyFrom(Ping(availability=0, power_reserve=1.0, mailbox_backlog=0))
        return env.SerializeToString()

    def relay_frame(self, target: BenchActor, envelope_id: str) -> bytes:
        env = SignalingEnvelope(envelope_version=ENVELOPE_VERSION, envelope_id=envelope_id)
        r = ActrRelay(
            source=self.ok.actr_id, credential=self.ok.credential, target=target.ok.actr_id
        )
        r.ice_candidate.CopyFrom(
            IceCandidate(candidate="candidate:1 1 udp 1 127.0.0.1 9 typ host", sdp_mid="0")
        )
        env.actr_relay.CopyFrom(r)
        return env.SerializeToString()


def start_server(workdir: Path, heartbeat: int) -> tuple[subprocess.Popen[str], str]:
    cfg = workdir / "signaling.toml"
    cfg.write_text(
        f"heartbeat_interval_secs = {heartbeat}\n"
        "[limits]\n"
        "connects_per_ip_per_sec = 0\n"
        "connects_per_prefix_per_sec = 0\n"
        "max_connections_per_ip = 0\n"
        "max_connections_per_prefix = 0\n"
        "messages_per_sec = 0\n"
        f'[realms]\n1 = "{SECRET}"\n'
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signaling",
            "--config",
            str(cfg),
            "--port",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=open(workdir / "signaling.log", "wb"),  # noqa: SIM115
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = LISTEN_RE.search(line)
    if m is None:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r} (see {workdir}/signaling.log)")
    return proc, m.group(1)


async def join(http: aiohttp.ClientSession, base: str, i: int) -> BenchActor:
    req = RegisterRequest(actr_type=parse_type(f"bench:actor{i % 10}:1.0"), realm=Realm(realm_id=1))
    async with http.post(
        base + REGISTER_PATH,
        data=req.SerializeToString(),
        headers={"content-type": PROTOBUF_CONTENT_TYPE, REALM_SECRET_HEADER: SECRET},
    ) as r:
        answer = RegisterResponse()
        answer.ParseFromString(await r.read())
        if r.status != 200:
            raise RuntimeError(f"register answered {r.status}: {answer}")
    ok = answer.success
    cred = ok.credential
    ws = await http.ws_connect(
        base + SOCKET_PATH,
        params={
            "actor_id": id_text(ok.actr_id),
            "key_id": str(cred.key_id),
            "claims": base64.urlsafe_b64encode(cred.claims).decode(),
            "signature": base64.urlsafe_b64encode(cred.signature).decode(),
        },
        heartbeat=None,
    )
    return BenchActor(ok, ws)


async def reader(actor: BenchActor, by_key: dict[str, BenchActor]) -> None:
    async for msg in actor.ws:
        if msg.type is not aiohttp.WSMsgType.BINARY:
            break
        env = SignalingEnvelope()
        env.ParseFromString(msg.data)
        flow = env.WhichOneof("flow")
        if flow == "actr_relay":
            fut = actor.waiting.pop(env.envelope_id, None)
            if fut is not None:
                # The relay came back to its sender: the round trip is done.
                if not fut.done():
                    fut.set_result(time.perf_counter())
                continue
            # Relay it straight back to its source.
            source = by_key[id_text(env.actr_relay.source)]
            await actor.ws.send_bytes(actor.relay_frame(source, env.envelope_id))
        elif flow == "server_to_actr" and env.server_to_actr.HasField("pong"):
            actor.pongs += 1
        else:
            actor.errors += 1


async def heartbeat(actor: BenchActor, interval: float, stop: asyncio.Event) -> None:
    # Spread the first pings over one interval, as actors started at different times are.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), random.uniform(0, interval))
    while not stop.is_set():
        await actor.ws.send_bytes(actor.ping_frame())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def relay_round_trips(actors: list[BenchActor], count: int) -> list[float]:
    rtts: list[float] = []
    sem = asyncio.Semaphore(RELAYS_IN_FLIGHT)
    rng = random.Random(7)

    async def one() -> None:
        a, b = rng.sample(actors, 2)
        envelope_id = uuid.uuid4().hex
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        async with sem:
            a.waiting[envelope_id] = fut
            t0 = time.perf_counter()
            await a.ws.send_bytes(a.relay_frame(b, envelope_id))
            t1 = await asyncio.wait_for(fut, 10)
            rtts.append((t1 - t0) * 1000)

    await asyncio.gather(*(one() for _ in range(count)))
    return rtts


async def get_stats(http: aiohttp.ClientSession, base: str) -> dict[str, object]:
    async with http.get(base + "/stats") as r:
        result: dict[str, object] = await r.json()
        return result


async def run(args: argparse.Namespace) -> dict[str, object]:
    raise_fd_limit(args.actors * 2 + 1024)
    workdir = Path(tempfile.mkdtemp(prefix="bench-signaling-"))
    proc, base = start_server(workdir, args.heartbeat)
    try:
        rss_before = rss_kib(proc.pid)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            t0 = time.perf_counter()
            sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
            by_key: dict[str, BenchActor] = {}
            stop = asyncio.Event()
            tasks: list[asyncio.Task[None]] = []

            async def limited(i: int) -> BenchActor:
                async with sem:
                    actor = await join(http, base, i)
                # Pinging from the moment it is open, as a daemon does.
                by_key[id_text(actor.ok.actr_id)] = actor
                tasks.append(asyncio.create_task(reader(actor, by_key)))
                tasks.append(asyncio.create_task(heartbeat(actor, args.heartbeat, stop)))
                return actor

            actors = await asyncio.gather(*(limited(i) for i in range(args.actors)))
            open_secs = time.perf_counter() - t0
            hold_start = time.perf_counter()
            rtts = await relay_round_trips(actors, args.relays)
            left = args.hold - (time.perf_counter() - hold_start)
            if left > 0:
                await asyncio.sleep(left)  # the hold itself: heartbeats keep running
            rss_after = rss_kib(proc.pid)
            stats = await get_stats(http, base)
            stop.set()
            pongs = sum(a.pongs for a in actors)
            errors = sum(a.errors for a in actors)
            for a in actors:
                await a.ws.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        proc.terminate()
        proc.wait(30)
    return {
        "actors": args.actors,
        "heartbeat_secs": args.heartbeat,
        "held_secs": args.hold,
        "open_secs": round(open_secs, 2),
        "server_connections": stats["connections"],
        "presence_expired": stats["presence_expired"],
        "rejects": stats["rejects"],
        "pongs": pongs,
        "errors": errors,
        "relay_rtt_p50_ms": round(percentile(rtts, 50), 2),
        "relay_rtt_p99_ms": round(percentile(rtts, 99), 2),
        "relays": len(rtts),
        "server_rss_before_mib": round(rss_before / 1024, 1),
        "server_rss_after_mib": round(rss_after / 1024, 1),
        "kib_per_connection": round((rss_after - rss_before) / args.actors, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--actors", type=int, default=2000)
    p.add_argument("--heartbeat", type=int, default=5, help="server's ping interval (s)")
    p.add_argument("--hold", type=float, default=15.0, help="seconds to hold all sockets")
    p.add_argument("--relays", type=int, default=2000)
    args = p.parse_args()
    if not 2 <= args.actors <= 20000 or args.relays < 1:
        p.error("--actors must be 2..20000, --relays at least 1")
    args.hold = max(args.hold, 2.0 * args.heartbeat)
    result = asyncio.run(asyncio.wait_for(run(args), DEADLINE_SECS))
    held = result["server_connections"] == args.actors and result["presence_expired"] == 0
    print(
        f"signaling bench: {args.actors} actor sockets held {args.hold:.0f} s "
        f"(heartbeat {args.heartbeat} s): {'OK' if held else 'NOT HELD'}\n"
        f"  opened in {result['open_secs']} s (register + socket each)\n"
        f"  relay round trip (A->B->A through the server) p50 {result['relay_rtt_p50_ms']} ms, "
        f"p99 {result['relay_rtt_p99_ms']} ms over {result['relays']}\n"
        f"  server RSS {result['server_rss_before_mib']} -> {result['server_rss_after_mib']} MiB: "
        f"{result['kib_per_connection']} KiB per connection"
    )
    print(json.dumps(result))
    return 0 if held and result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
