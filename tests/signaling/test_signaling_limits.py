"""Frames and attempts the server refuses, and that it survives them (PROTOCOL.md SIG-2,
SIG-9), and how it counts them (SIG-11)."""

from __future__ import annotations

import random

import aiohttp
import pytest
from conftest import MakeServer
from signaling_kit import (
    Actor,
    ask,
    envelope,
    join,
    open_socket,
    post_register,
    receive_env,
    register,
    relay,
    send,
    to_server,
    wait_closed,
)

from actr.errors import ErrorCode
from actr.identity import id_text
from actr.protocol.actr_pb2 import ErrorResponse
from actr.protocol.signaling_pb2 import ActrToSignaling, Ping, SignalingEnvelope
from signaling.config import Limits
from signaling.runner import RunningServer


async def _healthy(http: aiohttp.ClientSession, base: str, other: Actor) -> None:
    async with http.get(base + "/healthz") as r:
        assert r.status == 200
    # Other connections were not affected.
    answer = await ask(other, ActrToSignaling(ping=Ping()))
    assert answer.server_to_actr.HasField("pong")


async def test_sig2_text_frame_closes_1003(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    other = await join(http, base, "acme:echo:1.0")
    await a.ws.send_str("hello")
    assert await wait_closed(a.ws) == 1003
    await _healthy(http, base, other)
    assert server.state.stats.rejects["text_frame"] == 1


async def test_sig9_garbage_bytes_envelope_error_and_socket_kept(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    other = await join(http, base, "acme:echo:1.0")
    await a.ws.send_bytes(b"\xff\xff\xff\xff garbage \x00\x01")
    answer = await receive_env(a.ws)
    assert answer.envelope_version == 2
    assert answer.envelope_error.code == ErrorCode.DECODE_FAILURE
    # The same socket keeps working.
    assert (await ask(a, ActrToSignaling(ping=Ping()))).server_to_actr.HasField("pong")
    await _healthy(http, base, other)
    assert server.state.stats.rejects["decode_failure"] == 1


async def test_sig9_missing_required_fields_decode_failure_with_reply_for(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    env = envelope()
    env.actr_to_server.ping.CopyFrom(Ping())  # no source, no credential
    await a.ws.send_bytes(env.SerializePartialToString())
    answer = await receive_env(a.ws)
    assert answer.reply_for == env.envelope_id
    assert answer.envelope_error.code == ErrorCode.DECODE_FAILURE


async def test_sig9_frame_over_1mib_closes_1009(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    other = await join(http, base, "acme:echo:1.0")
    await a.ws.send_bytes(b"\x00" * (2 * 1024 * 1024))
    assert await wait_closed(a.ws) == 1009
    await _healthy(http, base, other)
    assert server.state.stats.rejects["frame_too_large"] == 1


async def test_sig2_envelope_without_flow_invalid_argument(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    env = envelope()
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.reply_for == env.envelope_id
    assert answer.envelope_error.code == ErrorCode.INVALID_ARGUMENT


async def test_sig2_server_to_actr_from_client_invalid_argument(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    env = envelope()
    env.server_to_actr.target.CopyFrom(a.id)
    env.server_to_actr.pong.seq = 1
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.reply_for == env.envelope_id
    assert answer.envelope_error.code == ErrorCode.INVALID_ARGUMENT


async def test_sig2_peer_to_server_not_implemented(http: aiohttp.ClientSession, base: str) -> None:
    a = await join(http, base, "acme:echo:1.0")
    env = envelope()
    env.peer_to_server.SetInParent()
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.reply_for == env.envelope_id
    assert answer.envelope_error.code == ErrorCode.NOT_IMPLEMENTED


async def test_sig2_client_envelope_error_is_not_answered(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    env: SignalingEnvelope = envelope()
    env.envelope_error.CopyFrom(ErrorResponse(code=10008, message="could not decode yours"))
    await send(a.ws, env)
    # The next frame a gets is the pong, not an answer to its error.
    answer = await ask(a, ActrToSignaling(ping=Ping()))
    assert answer.server_to_actr.HasField("pong")


async def test_sig11_stats_count_connections_and_rejects(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    await a.ws.send_bytes(b"\xff\xff")
    await receive_env(a.ws)
    async with http.get(base + "/stats") as r:
        stats = await r.json()
    assert stats["connections"] == 1
    assert stats["registered_actors"] == 1
    assert stats["rejects"] == {"decode_failure": 1}


async def test_sig9_flood_rate_limited_while_other_connections_keep_working(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    server = await make_server(
        limits=Limits(messages_per_sec=20, message_burst=10, flood_tolerance=200)
    )
    base = server.url
    flooder = await join(http, base, "acme:flood:1.0")
    caller = await join(http, base, "acme:client:1.0")
    callee = await join(http, base, "acme:echo:1.0")
    frames = [to_server(flooder, ActrToSignaling(ping=Ping())) for _ in range(100)]
    for env in frames:
        await send(flooder.ws, env)
    # While the flood is queued, the others' pings and relays go through untouched.
    await _healthy(http, base, caller)
    sent = relay(caller, callee.id)
    await send(caller.ws, sent)
    got = await receive_env(callee.ws)
    assert got.envelope_id == sent.envelope_id
    # Each flood frame is answered: a pong, or RESOURCE_EXHAUSTED with its reply_for.
    answers = [await receive_env(flooder.ws) for _ in frames]
    assert [a.reply_for for a in answers] == [e.envelope_id for e in frames]
    limited = [a for a in answers if a.HasField("envelope_error")]
    assert all(a.envelope_error.code == ErrorCode.RESOURCE_EXHAUSTED for a in limited)
    # 10 of burst, plus what 20/s refilled meanwhile (a slow machine refills more).
    assert 50 <= len(limited) <= 90
    # Under the tolerance: the socket stays, and is served again once the rate allows.
    assert not flooder.ws.closed
    assert server.state.stats.rejects["rate_limited"] == len(limited)


async def test_sig9_sustained_flood_closes_1008(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    server = await make_server(
        limits=Limits(messages_per_sec=20, message_burst=10, flood_tolerance=50)
    )
    base = server.url
    flooder = await join(http, base, "acme:flood:1.0")
    other = await join(http, base, "acme:client:1.0")
    frame = to_server(flooder, ActrToSignaling(ping=Ping())).SerializeToString()
    for _ in range(200):
        await flooder.ws.send_bytes(frame)
    assert await wait_closed(flooder.ws) == 1008
    await _healthy(http, base, other)
    assert server.state.stats.rejects["flood_closed"] == 1
    assert server.state.stats.rejects["rate_limited"] >= 50


async def test_sig9_connection_attempts_rate_limited_per_ip_429(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    # A slow refill: the 4 attempts below happen well within one token's time.
    server = await make_server(limits=Limits(connects_per_ip_per_sec=0.01, connect_burst=3))
    base = server.url
    a = await register(http, base, "acme:echo:1.0")  # 1
    ws = await open_socket(http, base, id_text(a.actr_id), a.credential)  # 2
    await register(http, base, "acme:echo:1.0")  # 3
    status, answer = await post_register(http, base, "acme:echo:1.0")
    assert status == 429
    assert answer.error.code == ErrorCode.RESOURCE_EXHAUSTED
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await open_socket(http, base, id_text(a.actr_id), a.credential)
    assert info.value.status == 429
    # The open socket is not affected.
    assert (await ask(Actor(a, ws), ActrToSignaling(ping=Ping()))).server_to_actr.HasField("pong")
    rejects = server.state.stats.rejects
    assert rejects["register_rate_limited"] == 1 and rejects["ws_rate_limited"] == 1


async def test_sig9_random_bytes_each_answered_and_server_healthy(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    other = await join(http, base, "acme:echo:1.0")
    rng = random.Random(5)
    for _ in range(200):
        await a.ws.send_bytes(rng.randbytes(rng.randrange(1, 4096)))
        answer = await receive_env(a.ws)
        # Whatever the bytes happened to decode to, the answer is an error, never a crash.
        assert answer.HasField("envelope_error") or answer.server_to_actr.HasField("error")
    assert not a.ws.closed
    await _healthy(http, base, other)
    assert sum(server.state.stats.rejects.values()) == 200


async def test_sig11_metrics_prometheus_text(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    b = await join(http, base, "acme:echo:1.0")
    await a.ws.send_bytes(b"\xff\xff")
    await receive_env(a.ws)
    await send(a.ws, relay(a, b.id))
    await receive_env(b.ws)
    async with http.get(base + "/metrics") as r:
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain")
        text = await r.text()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }

    def sample(name: str) -> float:
        (value,) = [v for k, v in samples.items() if k.split("{")[0] == name]
        return value

    assert sample("signaling_connections") == 2
    assert sample("signaling_registered_actors") == 2
    assert sample("signaling_live_actors") == 2
    assert sample("signaling_relays_total") == 1
    assert sample("signaling_registrations_total") == 2
    (reject,) = [k for k in samples if k.startswith("signaling_rejects_total{")]
    assert 'reason="decode_failure"' in reject and samples[reject] == 1
