"""Relay of SDP/ICE between actors (PROTOCOL.md SIG-5, SIG-3, ACL-2)."""

from __future__ import annotations

import aiohttp
from signaling_kit import (
    Actor,
    acl,
    ask,
    envelope,
    join,
    receive_bytes,
    receive_env,
    relay,
    rule,
    send,
)

from actr.errors import ErrorCode
from actr.protocol.actr_pb2 import ActrId
from actr.protocol.signaling_pb2 import ActrRelay, ActrToSignaling, Ping, SignalingEnvelope
from actr.protocol.webrtc_pb2 import RoleNegotiation, SessionDescription
from signaling.runner import RunningServer

ALLOW, DENY = 1, 0


async def test_sig5_relay_delivered_unchanged(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    a = await join(http, base, "acme:client:1.0")
    b = await join(http, base, "acme:echo:1.0")
    env = relay(a, b.id)
    env.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    raw = env.SerializeToString()
    await a.ws.send_bytes(raw)
    assert await receive_bytes(b.ws) == raw
    # And the other way, with a different payload kind.
    back = envelope()
    back.actr_relay.source.CopyFrom(b.id)
    back.actr_relay.credential.CopyFrom(b.ok.credential)
    back.actr_relay.target.CopyFrom(a.id)
    back.actr_relay.session_description.CopyFrom(
        SessionDescription(type=SessionDescription.OFFER, sdp="v=0", sdp_exchange_id="1")
    )
    await send(b.ws, back)
    assert await receive_bytes(a.ws) == back.SerializeToString()
    assert server.state.stats.relays == 2


async def test_sig5_relay_keeps_fields_the_server_does_not_know(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:client:1.0")
    b = await join(http, base, "acme:echo:1.0")
    # Field 99 (varint 7) inside ActrRelay: unknown to this server, forwarded as is.
    relay_bytes = relay(a, b.id).actr_relay.SerializeToString() + b"\x98\x06\x07"
    head = envelope()
    raw = head.SerializeToString() + b"\x6a" + _varint(len(relay_bytes)) + relay_bytes
    await a.ws.send_bytes(raw)
    assert await receive_bytes(b.ws) == raw


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


async def test_sig5_relay_unknown_target_not_found(http: aiohttp.ClientSession, base: str) -> None:
    a = await join(http, base, "acme:client:1.0")
    nobody = ActrId()
    nobody.CopyFrom(a.id)
    nobody.serial_number = 999
    env = relay(a, nobody)
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.reply_for == env.envelope_id
    assert answer.server_to_actr.target == a.id
    assert answer.server_to_actr.error.code == ErrorCode.NOT_FOUND


async def test_sig5_relay_to_offline_actor_not_found(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:client:1.0")
    b = await join(http, base, "acme:echo:1.0")
    await b.ws.close()
    env = relay(a, b.id)
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.server_to_actr.error.code == ErrorCode.NOT_FOUND


async def test_sig5_relay_target_with_wrong_type_not_found(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:client:1.0")
    b = await join(http, base, "acme:echo:1.0")
    wrong = ActrId()
    wrong.CopyFrom(b.id)
    wrong.type.version = "9.9"
    await send(a.ws, relay(a, wrong))
    answer = await receive_env(a.ws)
    assert answer.server_to_actr.error.code == ErrorCode.NOT_FOUND


async def test_acl2_relay_denied_by_target_acl(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    a = await join(http, base, "acme:client:1.0")
    b = await join(http, base, "acme:echo:1.0", acl_=acl(rule(DENY, "acme:client:1.0")))
    env = relay(a, b.id)
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.reply_for == env.envelope_id
    # F12: refused looks like absent, so the answer is no liveness oracle.
    assert answer.server_to_actr.error.code == ErrorCode.NOT_FOUND
    assert server.state.stats.rejects["relay_denied"] == 1


async def test_acl2_relay_across_realms_needs_allow(http: aiohttp.ClientSession, base: str) -> None:
    stranger = await join(http, base, "acme:client:1.0", realm=2)
    plain = await join(http, base, "acme:echo:1.0", realm=1)
    await send(stranger.ws, relay(stranger, plain.id))
    answer = await receive_env(stranger.ws)
    assert answer.server_to_actr.error.code == ErrorCode.NOT_FOUND

    open_ = await join(
        http, base, "acme:echo:1.0", realm=1, acl_=acl(rule(ALLOW, "acme:client:1.0", realm_id=2))
    )
    env = relay(stranger, open_.id)
    await send(stranger.ws, env)
    assert await receive_bytes(open_.ws) == env.SerializeToString()
    # The caller's default ACL admits its own realm only: the callee cannot relay
    # to it until the caller asks the server for a connection (SIG-6, F9)...
    reply = relay(open_, stranger.id)
    await send(open_.ws, reply)
    assert (await receive_env(open_.ws)).server_to_actr.error.code == ErrorCode.NOT_FOUND
    await send(stranger.ws, negotiation(stranger, open_.id))
    assert (await receive_env(stranger.ws)).actr_relay.HasField("role_assignment")
    assert (await receive_env(open_.ws)).actr_relay.HasField("role_assignment")
    # ...then its answer reaches the caller, or no connection could form.
    reply = relay(open_, stranger.id)
    await send(open_.ws, reply)
    assert await receive_bytes(stranger.ws) == reply.SerializeToString()


def negotiation(source: Actor, target: ActrId) -> SignalingEnvelope:
    env = envelope()
    r = ActrRelay(source=source.id, credential=source.ok.credential, target=target)
    r.role_negotiation.CopyFrom(
        RoleNegotiation(realm_id=source.id.realm.realm_id, **{"from": source.id, "to": target})
    )
    env.actr_relay.CopyFrom(r)
    return env


async def test_sig6_server_assigns_roles_to_both_sockets(
    http: aiohttp.ClientSession, base: str
) -> None:
    small = await join(http, base, "acme:client:1.0")
    large = await join(http, base, "acme:echo:1.0")
    for asker, peer in ((small, large), (large, small)):
        sent = negotiation(asker, peer.id)
        await send(asker.ws, sent)
        mine = await receive_env(asker.ws)
        theirs = await receive_env(peer.ws)
        assert mine.reply_for == sent.envelope_id
        assert mine.actr_relay.role_assignment.is_offerer == (asker is large)
        assert theirs.actr_relay.role_assignment.is_offerer == (peer is large)
        for env in (mine, theirs):
            assert env.actr_relay.source == asker.id and env.actr_relay.target == peer.id


async def test_sig6_webrtc_role_answer_on_the_socket(
    http: aiohttp.ClientSession, base: str
) -> None:
    small = await join(http, base, "acme:client:1.0")
    large = await join(http, base, "acme:echo:1.0", webrtc_role="answer")
    await send(small.ws, negotiation(small, large.id))
    assert (await receive_env(small.ws)).actr_relay.role_assignment.is_offerer
    assert not (await receive_env(large.ws)).actr_relay.role_assignment.is_offerer


async def test_sig3_relay_with_foreign_source_unauthenticated_and_not_delivered(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:client:1.0")
    b = await join(http, base, "acme:echo:1.0")
    c = await join(http, base, "acme:echo:1.0")
    spoofed = relay(a, b.id, candidate="spoofed")
    spoofed.actr_relay.source.CopyFrom(c.id)  # a speaks for c, with its own credential
    await send(a.ws, spoofed)
    answer = await receive_env(a.ws)
    assert answer.reply_for == spoofed.envelope_id
    assert answer.server_to_actr.error.code == ErrorCode.UNAUTHENTICATED
    # The socket serves frames in order: the first thing b gets is the honest relay.
    honest = relay(a, b.id, candidate="honest")
    await send(a.ws, honest)
    got = await receive_env(b.ws)
    assert got.actr_relay.ice_candidate.candidate == "honest"


async def test_sig3_relay_with_foreign_credential_unauthenticated(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:client:1.0")
    b = await join(http, base, "acme:echo:1.0")
    env = relay(a, b.id)
    env.actr_relay.credential.CopyFrom(b.ok.credential)
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.server_to_actr.error.code == ErrorCode.UNAUTHENTICATED
    # b received nothing: its next frame is the answer to its own ping.
    pong = await ask(b, ActrToSignaling(ping=Ping()))
    assert pong.server_to_actr.HasField("pong")
