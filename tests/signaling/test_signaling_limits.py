"""Frames the server refuses, and that it survives them (PROTOCOL.md SIG-2, SIG-9)."""

from __future__ import annotations

import aiohttp
from signaling_kit import Actor, ask, envelope, join, receive_env, send, wait_closed

from actr.errors import ErrorCode
from actr.protocol.actr_pb2 import ErrorResponse
from actr.protocol.signaling_pb2 import ActrToSignaling, Ping, SignalingEnvelope
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
