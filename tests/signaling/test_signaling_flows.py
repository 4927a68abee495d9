"""Requests on the signaling socket (PROTOCOL.md SIG-2 .. SIG-4, SIG-7, ACL-1, ACL-2)."""

from __future__ import annotations

import time

import aiohttp
import pytest
from conftest import MakeServer
from signaling_kit import (
    Actor,
    Clock,
    acl,
    ask,
    join,
    no_frame_before_pong,
    open_socket,
    receive_env,
    register,
    renew,
    rule,
    send,
    to_server,
    wait_closed,
)

from actr.errors import ErrorCode
from actr.identity import id_text, parse_type
from actr.protocol.actr_pb2 import AIdCredential
from actr.protocol.signaling_pb2 import (
    ActrToSignaling,
    DiscoveryRequest,
    Ping,
    RouteCandidatesRequest,
    SignalingEnvelope,
    SubscribeActrUpRequest,
    UnregisterRequest,
    UnsubscribeActrUpRequest,
)
from signaling.runner import RunningServer

ALLOW, DENY = 1, 0


def candidates_request(actr_type: str, count: int = 0) -> ActrToSignaling:
    req = RouteCandidatesRequest(target_type=parse_type(actr_type))
    if count:
        req.criteria.candidate_count = count
    return ActrToSignaling(route_candidates_request=req)


async def candidates(actor: Actor, actr_type: str, count: int = 0) -> list[str]:
    answer = await ask(actor, candidates_request(actr_type, count))
    rc = answer.server_to_actr.route_candidates_response
    assert rc.WhichOneof("result") == "success"
    return [id_text(c) for c in rc.success.candidates]


async def ping(actor: Actor, backlog: float) -> None:
    answer = await ask(actor, ActrToSignaling(ping=Ping(availability=1, mailbox_backlog=backlog)))
    assert answer.server_to_actr.HasField("pong")


async def test_sig4_ping_pong_with_reply_for(http: aiohttp.ClientSession, base: str) -> None:
    a = await join(http, base, "acme:echo:1.0")
    env = to_server(a, ActrToSignaling(ping=Ping(availability=1, mailbox_backlog=3.0)))
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.envelope_version == 2
    assert answer.reply_for == env.envelope_id
    assert len(answer.envelope_id) == 32 and answer.envelope_id != env.envelope_id
    assert answer.server_to_actr.target == a.id
    pong = answer.server_to_actr.pong
    assert pong.seq == 1
    assert pong.suggest_interval_secs == 10
    second = await ask(a, ActrToSignaling(ping=Ping()))
    assert second.server_to_actr.pong.seq == 2
    assert second.envelope_id != answer.envelope_id


async def test_sig7_route_candidates_live_actors_of_the_type_only(
    http: aiohttp.ClientSession, base: str
) -> None:
    caller = await join(http, base, "acme:client:1.0")
    e1 = await join(http, base, "acme:echo:1.0")
    e2 = await join(http, base, "acme:echo:1.0")
    await join(http, base, "acme:echo:2.0")  # other version: another type
    await join(http, base, "acme:other:1.0")
    # Registered but never connected: not live.
    await register(http, base, "acme:echo:1.0")
    assert sorted(await candidates(caller, "acme:echo:1.0")) == sorted([e1.key, e2.key])
    # The requester itself is never a candidate.
    e3 = await join(http, base, "acme:echo:1.0")
    assert e3.key not in await candidates(e3, "acme:echo:1.0")
    # Offline once its socket closed.
    await e1.ws.close()
    assert e1.key not in await candidates(caller, "acme:echo:1.0")


async def test_sig7_route_candidates_lowest_backlog_first_and_capped(
    http: aiohttp.ClientSession, base: str
) -> None:
    caller = await join(http, base, "acme:client:1.0")
    busy = await join(http, base, "acme:echo:1.0")
    idle = await join(http, base, "acme:echo:1.0")
    mid = await join(http, base, "acme:echo:1.0")
    await ping(busy, 50.0)
    await ping(idle, 0.0)
    await ping(mid, 7.0)
    assert await candidates(caller, "acme:echo:1.0") == [idle.key, mid.key, busy.key]
    assert await candidates(caller, "acme:echo:1.0", count=2) == [idle.key, mid.key]


async def test_acl1_route_candidates_respect_deny(http: aiohttp.ClientSession, base: str) -> None:
    caller = await join(http, base, "acme:client:1.0")
    open_ = await join(http, base, "acme:echo:1.0")
    closed = await join(
        http,
        base,
        "acme:echo:1.0",
        acl_=acl(rule(DENY, "acme:client:1.0"), rule(ALLOW, "acme:client:1.0")),
    )
    found = await candidates(caller, "acme:echo:1.0")
    assert open_.key in found
    assert closed.key not in found


async def test_acl1_no_acl_admits_own_realm_only(http: aiohttp.ClientSession, base: str) -> None:
    server_side = await join(http, base, "acme:echo:1.0", realm=1)
    same = await join(http, base, "acme:client:1.0", realm=1)
    other = await join(http, base, "acme:client:1.0", realm=2)
    assert await candidates(same, "acme:echo:1.0") == [server_side.key]
    assert await candidates(other, "acme:echo:1.0") == []


async def test_acl1_allow_rule_admits_another_realm(http: aiohttp.ClientSession, base: str) -> None:
    target = await join(
        http, base, "acme:echo:1.0", realm=1, acl_=acl(rule(ALLOW, "acme:client:1.0", realm_id=2))
    )
    other = await join(http, base, "acme:client:1.0", realm=2)
    stranger = await join(http, base, "acme:stranger:1.0", realm=2)
    assert await candidates(other, "acme:echo:1.0") == [target.key]
    assert await candidates(stranger, "acme:echo:1.0") == []


async def test_sig4_discovery_lists_live_types(http: aiohttp.ClientSession, base: str) -> None:
    caller = await join(http, base, "acme:client:1.0")
    # Keep the actors referenced: a collected client socket closes.
    others = [
        await join(http, base, "acme:echo:1.0"),
        await join(http, base, "acme:echo:1.0"),
        await join(http, base, "other:thing:1.0"),
        await join(http, base, "acme:hidden:1.0", realm=2),  # another realm, default ACL
    ]

    async def types(req: DiscoveryRequest) -> list[str]:
        answer = await ask(caller, ActrToSignaling(discovery_request=req))
        ok = answer.server_to_actr.discovery_response.success
        return [
            f"{e.actr_type.manufacturer}:{e.actr_type.name}:{e.actr_type.version}"
            for e in ok.entries
        ]

    assert await types(DiscoveryRequest()) == [
        "acme:client:1.0",
        "acme:echo:1.0",
        "other:thing:1.0",
    ]
    assert await types(DiscoveryRequest(manufacturer="other")) == ["other:thing:1.0"]
    assert await types(DiscoveryRequest(limit=1)) == ["acme:client:1.0"]
    assert all(not o.ws.closed for o in others)


def subscribe_request(actr_type: str) -> ActrToSignaling:
    return ActrToSignaling(
        subscribe_actr_up_request=SubscribeActrUpRequest(target_type=parse_type(actr_type))
    )


async def test_sig7_actr_up_and_down_events_to_subscribers(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    server = await make_server(reconnect_grace_secs=0.3)
    base = server.url
    watcher = await join(http, base, "acme:client:1.0")
    answer = await ask(watcher, subscribe_request("acme:echo:1.0"))
    assert answer.server_to_actr.HasField("subscribe_actr_up_response")
    echo = await join(http, base, "acme:echo:1.0")
    up = await receive_env(watcher.ws)
    assert up.server_to_actr.target == watcher.id
    assert up.server_to_actr.actr_up_event.actor_id == echo.id
    closed_at = time.monotonic()
    await echo.ws.close()
    down = await receive_env(watcher.ws)
    # SIG-7: announced only once the reconnect grace ran out.
    assert time.monotonic() - closed_at >= 0.25
    assert down.server_to_actr.actr_down_event.actor_id == echo.id

    await ask(
        watcher,
        ActrToSignaling(
            unsubscribe_actr_up_request=UnsubscribeActrUpRequest(
                target_type=parse_type("acme:echo:1.0")
            )
        ),
    )
    echo_again = await join(http, base, "acme:echo:1.0")
    assert not echo_again.ws.closed
    # No event after unsubscribing: the next frame is the answer to this ping.
    await no_frame_before_pong(watcher)


async def test_sig7_closed_socket_not_a_candidate_and_reconnect_within_grace_is_silent(
    http: aiohttp.ClientSession, base: str
) -> None:
    watcher = await join(http, base, "acme:client:1.0")
    await ask(watcher, subscribe_request("acme:echo:1.0"))
    echo = await join(http, base, "acme:echo:1.0")
    assert (await receive_env(watcher.ws)).server_to_actr.HasField("actr_up_event")
    assert await candidates(watcher, "acme:echo:1.0") == [echo.key]
    await echo.ws.close()
    # Not live the moment its socket closed: no route leads to it ...
    assert await candidates(watcher, "acme:echo:1.0") == []
    # ... and it comes back with the same id and credential within the grace (SIG-8).
    ws = await open_socket(http, base, echo.key, echo.ok.credential)
    back = Actor(echo.ok, ws)
    assert await candidates(watcher, "acme:echo:1.0") == [echo.key]
    await no_frame_before_pong(back)
    # Subscribers heard neither a down nor a second up.
    await no_frame_before_pong(watcher)


async def test_sig7_heartbeat_expiry_closes_and_announces_down(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    clock = Clock()
    server = await make_server(clock=clock, heartbeat_interval_secs=10)
    base = server.url
    watcher = await join(http, base, "acme:client:1.0")
    await ask(watcher, subscribe_request("acme:echo:1.0"))
    echo = await join(http, base, "acme:echo:1.0")
    assert (await receive_env(watcher.ws)).server_to_actr.HasField("actr_up_event")
    clock.advance(25)
    await ping(watcher, 0)  # the watcher keeps pinging, echo never does
    clock.advance(6)  # echo silent for 31 s > 3 intervals; the sweeper runs every second
    down = await receive_env(watcher.ws)
    assert down.server_to_actr.actr_down_event.actor_id == echo.id
    assert await wait_closed(echo.ws) == 1001
    assert await candidates(watcher, "acme:echo:1.0") == []
    assert server.state.stats.presence_expired == 1
    assert server.state.registry.get(echo.key) is not None  # still registered, may return


async def test_sig3_unregister_announces_down_at_once_and_identity_stays_renewable(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    watcher = await join(http, base, "acme:client:1.0")
    await ask(watcher, subscribe_request("acme:echo:1.0"))
    a = await join(http, base, "acme:echo:1.0")
    assert (await receive_env(watcher.ws)).server_to_actr.HasField("actr_up_event")
    answer = await ask(
        a, ActrToSignaling(unregister_request=UnregisterRequest(actr_id=a.id, reason="bye"))
    )
    assert answer.server_to_actr.HasField("unregister_response")
    assert await wait_closed(a.ws) == 1000
    # Down at once, not after the 30 s grace.
    down = await receive_env(watcher.ws)
    assert down.server_to_actr.actr_down_event.actor_id == a.id
    assert await candidates(watcher, "acme:echo:1.0") == []
    # SIG-7 / F15: it stays down; its old credential opens no socket.
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await open_socket(http, base, a.key, a.ok.credential)
    assert refused.value.status == 401
    assert server.state.stats.rejects["ws_revoked"] == 1
    # A restarted daemon resumes the same ActrId with its renewal token (AIS-3) ...
    status, renewed = await renew(http, base, a.id, a.ok.renewal_token)
    assert status == 200 and renewed.success.actr_id == a.id
    ws = await open_socket(http, base, a.key, renewed.success.credential)
    assert not ws.closed
    up = await receive_env(watcher.ws)
    assert up.server_to_actr.actr_up_event.actor_id == a.id
    # ... and a new registration never reuses its serial (ID-2).
    again = await register(http, base, "acme:echo:1.0")
    assert again.actr_id.serial_number > a.id.serial_number


async def test_sig3_source_of_another_actor_is_unauthenticated(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    b = await join(http, base, "acme:echo:1.0")
    env = to_server(a, ActrToSignaling(ping=Ping()))
    env.actr_to_server.source.CopyFrom(b.id)
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.reply_for == env.envelope_id
    assert answer.server_to_actr.target == a.id
    assert answer.server_to_actr.error.code == ErrorCode.UNAUTHENTICATED


async def test_sig3_credential_of_another_actor_is_unauthenticated(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    b = await join(http, base, "acme:echo:1.0")
    env = to_server(a, ActrToSignaling(ping=Ping()))
    env.actr_to_server.credential.CopyFrom(b.ok.credential)
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.server_to_actr.error.code == ErrorCode.UNAUTHENTICATED


async def test_sig3_forged_credential_is_unauthenticated(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await join(http, base, "acme:echo:1.0")
    env = to_server(a, ActrToSignaling(ping=Ping()))
    forged = AIdCredential()
    forged.CopyFrom(a.ok.credential)
    forged.signature = bytes(64)
    env.actr_to_server.credential.CopyFrom(forged)
    await send(a.ws, env)
    answer = await receive_env(a.ws)
    assert answer.server_to_actr.error.code == ErrorCode.UNAUTHENTICATED
    # The socket stays usable for honest requests.
    assert (await ask(a, ActrToSignaling(ping=Ping()))).server_to_actr.HasField("pong")


async def test_sig3_any_valid_credential_of_own_actor_accepted(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    """A credential renewed after the socket opened is accepted alongside the first one."""
    a = await join(http, base, "acme:echo:1.0")
    newer = server.state.authority.issue(a.id, now=time.time())
    env = to_server(a, ActrToSignaling(ping=Ping()))
    env.actr_to_server.credential.CopyFrom(newer)
    await send(a.ws, env)
    answer: SignalingEnvelope = await receive_env(a.ws)
    assert answer.server_to_actr.HasField("pong")
