"""Several server processes as one deployment through a real redis-server (PROTOCOL.md SIG-10).

Two servers in this process share one Redis and one signing key, as two nodes
behind a load balancer would; each test's Redis is its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from conftest import MakeServer
from signaling_kit import (
    REALMS,
    TIMEOUT,
    Actor,
    acl,
    ask,
    join,
    no_frame_before_pong,
    open_socket,
    receive_env,
    register,
    relay,
    renew,
    rule,
    send,
    wait_closed,
)

from actr.errors import ErrorCode
from actr.identity import id_text, parse_type
from actr.protocol.signaling_pb2 import (
    ActrToSignaling,
    Ping,
    RouteCandidatesRequest,
    SignalingEnvelope,
    SubscribeActrUpRequest,
)
from examples.launch import start_signaling
from signaling.cluster import ClusterConflict
from signaling.runner import RunningServer
from signaling.serials import clock_floor

DENY = 0


TwoNodes = Callable[..., Awaitable[tuple[RunningServer, RunningServer]]]


@pytest.fixture
def two_nodes(redis_url: str, make_server: MakeServer, tmp_path: Path) -> TwoNodes:
    """Nodes "a" and "b" on one Redis with one signing key (set up after Redis, so
    closed before it)."""

    async def make(**overrides: object) -> tuple[RunningServer, RunningServer]:
        key = tmp_path / "signing.key"
        a = await make_server(node="a", redis_url=redis_url, signing_key_file=key, **overrides)
        b = await make_server(node="b", redis_url=redis_url, signing_key_file=key, **overrides)
        return a, b

    return make


async def _live_on(server: RunningServer, key: str) -> None:
    """Wait until ``server`` sees ``key`` live (an event from the other node applied)."""
    registry = server.state.registry
    assert server.state.cluster is not None

    def live() -> bool:
        record = registry.get(key)
        return record is not None and record.live

    await server.state.cluster.settled(live, TIMEOUT)


async def _candidates(actor: Actor, actr_type: str) -> list[str]:
    answer = await ask(
        actor,
        ActrToSignaling(
            route_candidates_request=RouteCandidatesRequest(target_type=parse_type(actr_type))
        ),
    )
    return [id_text(c) for c in answer.server_to_actr.route_candidates_response.success.candidates]


async def test_sig10_serials_unique_across_nodes(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, b = await two_nodes()
    serials = []
    for i in range(10):
        ok = await register(http, (a if i % 2 else b).url, "acme:echo:1.0")
        serials.append(ok.actr_id.serial_number)
    # INCR across nodes, raised to the clock's floor (F1): increasing, never repeated.
    assert serials == sorted(set(serials)) and len(serials) == 10
    assert serials[0] >= clock_floor(time.time() - 60)
    # Another realm counts on its own.
    other = await register(http, a.url, "acme:echo:1.0", realm=2)
    assert other.actr_id.serial_number >= clock_floor(time.time() - 60)


async def test_sig10_candidates_and_relay_between_actors_on_two_nodes(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, b = await two_nodes()
    caller = await join(http, a.url, "acme:client:1.0")
    echo = await join(http, b.url, "acme:echo:1.0")
    await _live_on(a, echo.key)
    await _live_on(b, caller.key)
    assert await _candidates(caller, "acme:echo:1.0") == [echo.key]
    # SIG-5 across nodes: the very bytes arrive, both ways.
    sent = relay(caller, echo.id)
    await send(caller.ws, sent)
    got = await receive_env(echo.ws)
    assert got.SerializeToString() == sent.SerializeToString()
    back = relay(echo, caller.id, candidate="candidate:2 1 udp 1 127.0.0.1 9 typ host")
    await send(echo.ws, back)
    assert (await receive_env(caller.ws)).envelope_id == back.envelope_id
    assert a.state.stats.relays_forwarded == 1 and b.state.stats.relays_received == 1
    assert b.state.stats.relays_forwarded == 1 and a.state.stats.relays_received == 1


async def test_sig10_acl_and_not_found_enforced_for_actors_on_another_node(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, b = await two_nodes()
    caller = await join(http, a.url, "acme:client:1.0")
    guarded = await join(
        http, b.url, "acme:vault:1.0", acl_=acl(rule(DENY, "acme:client:1.0", realm_id=1))
    )
    await _live_on(a, guarded.key)
    assert await _candidates(caller, "acme:vault:1.0") == []
    sent = relay(caller, guarded.id)
    await send(caller.ws, sent)
    answer = await receive_env(caller.ws)
    assert answer.reply_for == sent.envelope_id
    # F12: a refusal reads like an absence.
    assert answer.server_to_actr.error.code == ErrorCode.NOT_FOUND
    gone = relay(caller, guarded.id)
    gone.actr_relay.target.serial_number = 999
    await send(caller.ws, gone)
    answer = await receive_env(caller.ws)
    assert answer.server_to_actr.error.code == ErrorCode.NOT_FOUND
    await no_frame_before_pong(guarded)  # nothing reached it


async def test_sig10_presence_events_reach_subscribers_on_another_node(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, b = await two_nodes(reconnect_grace_secs=0.2)
    watcher = await join(http, a.url, "acme:client:1.0")
    sub = SubscribeActrUpRequest(target_type=parse_type("acme:echo:1.0"))
    await ask(watcher, ActrToSignaling(subscribe_actr_up_request=sub))
    echo = await join(http, b.url, "acme:echo:1.0")
    up = await receive_env(watcher.ws)
    assert up.server_to_actr.actr_up_event.actor_id == echo.id
    await echo.ws.close()
    down = await receive_env(watcher.ws)
    assert down.server_to_actr.actr_down_event.actor_id == echo.id
    await no_frame_before_pong(watcher)  # exactly one of each


async def test_sig10_actor_moves_to_another_node_with_its_id(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, b = await two_nodes()
    watcher = await join(http, a.url, "acme:client:1.0")
    sub = SubscribeActrUpRequest(target_type=parse_type("acme:echo:1.0"))
    await ask(watcher, ActrToSignaling(subscribe_actr_up_request=sub))
    echo = await join(http, a.url, "acme:echo:1.0")
    assert (await receive_env(watcher.ws)).server_to_actr.HasField("actr_up_event")
    # The same credential opens a socket on node b (SIG-8 failover); a's socket is closed.
    ws_b = await open_socket(http, b.url, echo.key, echo.ok.credential)
    assert await wait_closed(echo.ws) == 1000
    record = a.state.registry.get(echo.key)
    assert record is not None and record.node == "b"
    assert await _candidates(watcher, "acme:echo:1.0") == [echo.key]
    await no_frame_before_pong(watcher)  # a move is neither down nor up
    # Renewal answers on either node, for the same id.
    status, renewed = await renew(http, b.url, echo.id, echo.ok.renewal_token)
    assert status == 200 and renewed.success.actr_id == echo.id
    status, again = await renew(http, a.url, echo.id, renewed.success.renewal_token)
    assert status == 200 and again.success.actr_id == echo.id
    moved = Actor(renewed.success, ws_b)
    await no_frame_before_pong(moved)  # still served on b


async def test_sig10_socket_on_a_node_that_has_not_heard_of_the_actor_yet(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, b = await two_nodes()
    ok = await register(http, a.url, "acme:echo:1.0")
    # Straight to b, before b may have applied a's announcement: b reads Redis.
    ws = await open_socket(http, b.url, id_text(ok.actr_id), ok.credential)
    assert not ws.closed
    await ws.close()


async def test_sig10_healthz_and_ping_with_redis(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, _ = await two_nodes()
    async with http.get(a.url + "/healthz") as r:
        assert r.status == 200
    actor = await join(http, a.url, "acme:echo:1.0")
    assert (await ask(actor, ActrToSignaling(ping=Ping()))).server_to_actr.HasField("pong")


async def test_sig10_killed_node_actors_announced_down_by_the_others(
    http: aiohttp.ClientSession, redis_url: str, make_server: MakeServer, tmp_path: Path
) -> None:
    key = tmp_path / "signing.key"
    extra = f'redis_url = "{redis_url}"\nsigning_key_file = "{key}"\nheartbeat_interval_secs = 1\n'
    # Node a is a process of its own, so it can die without a word.
    proc_a, url_a = await asyncio.to_thread(
        start_signaling, tmp_path, secret=REALMS[1], name="sig-a", extra=extra
    )
    try:
        b = await make_server(
            node="b",
            redis_url=redis_url,
            signing_key_file=key,
            # b checks other nodes every 3 s; its watcher may be silent for 9 s.
            heartbeat_interval_secs=3,
            reconnect_grace_secs=0.5,
        )
        watcher = await join(http, b.url, "acme:client:1.0")
        sub = SubscribeActrUpRequest(target_type=parse_type("acme:echo:1.0"))
        await ask(watcher, ActrToSignaling(subscribe_actr_up_request=sub))
        echo = await join(http, url_a, "acme:echo:1.0")
        up = await receive_env(watcher.ws)
        assert up.server_to_actr.actr_up_event.actor_id == echo.id
        await ask(echo, ActrToSignaling(ping=Ping()))
        proc_a.kill()
        # a's liveness key lapses (3 intervals), b takes its actors offline, and after
        # the grace its subscribers hear of it.
        msg = await watcher.ws.receive(timeout=8)
        assert msg.type is aiohttp.WSMsgType.BINARY, msg
        down = SignalingEnvelope()
        down.ParseFromString(msg.data)
        assert down.server_to_actr.actr_down_event.actor_id == echo.id
        assert await _candidates(watcher, "acme:echo:1.0") == []
    finally:
        proc_a.kill()


async def test_f8_token_reuse_seen_on_one_node_closes_the_socket_on_the_other(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, b = await two_nodes()
    victim = await join(http, a.url, "acme:echo:1.0")
    await _live_on(b, victim.key)
    status, answer = await renew(http, b.url, victim.id, victim.ok.renewal_token)
    assert status == 200
    status, _ = await renew(http, b.url, victim.id, answer.success.renewal_token)
    assert status == 200
    # The first token comes back after its successor was used: the chain is revoked
    # everywhere, and node a closes the socket it holds for that actor.
    status, _ = await renew(http, b.url, victim.id, victim.ok.renewal_token)
    assert status == 401
    assert await wait_closed(victim.ws) == 1008
    assert b.state.stats.rejects["renew_token_reused"] == 1
    assert a.state.stats.rejects["socket_chain_revoked"] == 1
    status, _ = await renew(http, a.url, victim.id, answer.success.renewal_token)
    assert status == 401


async def test_f8_a_renewal_stored_meanwhile_by_another_node_wins(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, _ = await two_nodes()
    ok = await register(http, a.url, "acme:echo:1.0")
    cluster = a.state.cluster
    assert cluster is not None
    record = await cluster.fetch(id_text(ok.actr_id))
    assert record is not None
    # Two renewals read the same tokens; the one stored second finds them changed.
    with pytest.raises(ClusterConflict):
        await cluster.store(record, expect_tokens=b"\x00" * 32)
    await cluster.store(record, expect_tokens=b"".join(record.token_hashes))


async def test_f1_serial_counter_lost_by_redis_restarts_above_the_floor(
    http: aiohttp.ClientSession, two_nodes: TwoNodes
) -> None:
    a, _ = await two_nodes()
    first = await register(http, a.url, "acme:echo:1.0")
    cluster = a.state.cluster
    assert cluster is not None
    await cluster._redis.delete("actr:serial:1")  # a Redis that lost its data
    again = await register(http, a.url, "acme:echo:1.0")
    assert again.actr_id.serial_number >= clock_floor(time.time() - 60)
    assert again.actr_id.serial_number > first.actr_id.serial_number
