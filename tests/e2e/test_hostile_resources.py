"""Resource floods against a real daemon process (issue 11, F2 and F6): what a hostile
peer can make a daemon hold is bounded per connection and in total, and given back on
time with no further traffic."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from actr.framing import HEADER, MAX_FRAGMENT_PAYLOAD
from actr.identity import id_text, parse_id
from actr.protocol.actr_pb2 import PayloadType
from actr.protocol.signaling_pb2 import ActrRelay, SignalingEnvelope
from actr.transport import restrict_host_addresses
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import STATS_FOR_CLIENT, Cluster, runtime_stats
from tests.signaling.signaling_kit import Actor, open_socket, post_register, receive_env

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
PARTIAL_TTL = 3.0


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def until(check: object, timeout: float, step: float = 0.05) -> bool:
    """Polls a condition of another process (RSS, fds), which sends no event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        await asyncio.sleep(step)
    return bool(check())  # type: ignore[operator]


async def test_f2_fragment_flood_is_bounded_per_connection_and_expires_on_its_own(
    cluster: Cluster,
) -> None:
    echo_id = await cluster.start_actor(
        "echo",
        "examples.echo:Echo",
        sections={
            "limits": {"partial_ttl": PARTIAL_TTL},
            "admin": {**STATS_FOR_CLIENT["admin"], "stats_per_sec": 4.0, "stats_burst": 10},
        },
    )
    pid = cluster.procs["echo"].popen.pid
    async with cluster.client() as client:
        await client.call(echo_id, "echo.v1.Echo.Say", SayRequest(text="hi"), SayReply)
        peer = client.transport.peer(echo_id)
        assert peer is not None
        # 40 more channels under a known label: the daemon keeps one per label.
        extra = [peer.pc.createDataChannel("RPC_RELIABLE") for _ in range(40)]
        opened = [asyncio.Event() for _ in extra]
        for ch, ev in zip(extra, opened, strict=True):
            ch.on("open", ev.set)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 20)
        baseline = rss(pid)
        # 16 partial messages per channel, each claiming 65,535 fragments in 9 bytes.
        for ch in extra:
            if ch.readyState == "open":
                for msg_id in range(16):
                    ch.send(HEADER.pack(0xFFFF0000 + msg_id, 0, 0xFFFF) + b"x")
        # Then bulk partials: 40 MiB of first fragments that never complete.
        rpc = peer.channels[PayloadType.RPC_RELIABLE]
        chunk = b"z" * MAX_FRAGMENT_PAYLOAD
        for msg_id in range(640):
            rpc.send(HEADER.pack(0xFFFE0000 + msg_id, 0, 2) + chunk)
            if rpc.bufferedAmount > 4 * MIB:
                await until(lambda: rpc.bufferedAmount < MIB, 30, 0.01)
        # Everything sent has been taken in: a call behind it is answered.
        await client.call(echo_id, "echo.v1.Echo.Say", SayRequest(text="after"), SayReply)
        peak = rss(pid)
        stats = await runtime_stats(client, echo_id)
        transport = stats["transport"]
        assert transport["duplicate_channel_label"] >= 39
        assert transport["frame_partial_evicted"] > 0
        print(f"f2: baseline {baseline / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB")
        assert peak - baseline <= 32 * MIB, (baseline, peak)
        # No further traffic: the partials go at their TTL, by the daemon's own timer.
        assert await until(lambda: rss(pid) - baseline <= 8 * MIB, PARTIAL_TTL + 2), (
            baseline,
            rss(pid),
        )
        # The daemon says so itself (Stats answers at most one a second here).
        expired = 0
        deadline = time.monotonic() + PARTIAL_TTL + 5
        while time.monotonic() < deadline:
            stats = await runtime_stats(client, echo_id)
            expired = stats["transport"].get("frame_partial_expired", 0)
            if expired:
                break
            await asyncio.sleep(0.5)
        assert expired >= 1
        reply = await client.call(echo_id, "echo.v1.Echo.Say", SayRequest(text="ok"), SayReply)
        assert reply.text == "ok"


async def _join(http: aiohttp.ClientSession, base: str) -> Actor:
    status, answer = await post_register(http, base, "acme:client:1.0", secret="dev-secret")
    assert status == 200, answer
    ok = answer.success
    return Actor(ok, await open_socket(http, base, id_text(ok.actr_id), ok.credential))


async def _offer() -> RTCPeerConnection:
    """One real offer whose owner never takes an answer: a connection checks against it
    and never completes (the attacker's ICE agent stays silent to unknown peers)."""
    restrict_host_addresses(["127.0.0.1"])  # loopback only, as every test here
    pc = RTCPeerConnection()
    pc.createDataChannel("RPC_RELIABLE")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def test_f6_half_open_offers_are_capped_and_reclaimed_within_the_setup_timeout(
    cluster: Cluster,
) -> None:
    # Enough registrations from one address for 150 identities.
    await cluster.start_signaling(
        extra="[limits]\nconnects_per_ip_per_sec = 1000\nconnect_burst = 1000\n"
    )
    connect_timeout = 4.0
    echo_id = await cluster.start_actor(
        "echo",
        "examples.echo:Echo",
        sections={"webrtc": {"host_addresses": ["127.0.0.1"], "connect_timeout": connect_timeout}},
    )
    pid = cluster.procs["echo"].popen.pid
    baseline = open_fds(pid)
    target = parse_id(echo_id)
    bait = await _offer()
    sdp = bait.localDescription.sdp
    # Each attacker holds a socket open: no cap on the session's connections.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        attackers = [await _join(http, cluster.url) for _ in range(150)]
        for a in attackers:
            env = SignalingEnvelope(envelope_version=2, envelope_id=os.urandom(8).hex())
            relay = ActrRelay(source=a.id, credential=a.ok.credential, target=target)
            relay.session_description.type = 0  # OFFER
            relay.session_description.sdp = sdp
            relay.session_description.sdp_exchange_id = "1"
            env.actr_relay.CopyFrom(relay)
            await a.ws.send_bytes(env.SerializeToString())
        # Answers come back for those the daemon took: at most its half-open cap. The
        # daemon's file descriptors are sampled meanwhile, while its connections exist.
        waits = [asyncio.ensure_future(receive_env(a.ws)) for a in attackers]
        peak = baseline

        def sample() -> bool:
            nonlocal peak
            peak = max(peak, open_fds(pid))
            return sum(w.done() for w in waits) >= 32

        await until(sample, 15)
        for w in waits:
            w.cancel()
        answered = sum(
            1
            for w in waits
            if w.done()
            and not w.cancelled()
            and w.exception() is None
            and w.result().actr_relay.HasField("session_description")
        )
        print(f"f6: fds baseline {baseline}, peak {peak}, answered {answered}")
        assert 0 < answered <= 32
        assert peak > baseline  # the connections it took were real, and held sockets
        # Given up after the connect timeout, with no further traffic.
        assert await until(lambda: open_fds(pid) <= baseline + 4, connect_timeout + 5), (
            baseline,
            open_fds(pid),
        )
        for a in attackers:
            await a.ws.close()
    await bait.close()
    async with cluster.client() as client:
        reply = await client.call(echo_id, "echo.v1.Echo.Say", SayRequest(text="ok"), SayReply)
        assert reply.text == "ok"
