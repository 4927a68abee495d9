"""Hostile peers and operators' mistakes (issue 11) against an in-process server and the
sans-IO parts: F1 serials, F3 sizes, subscriptions and registrations per realm, F5
admission, F8 renewal chains, F11 prefix limits. The process tests with the README's figures are in
test_signaling_hostile.py."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import aiohttp
import pytest
from conftest import MakeServer
from signaling_kit import (
    TIMEOUT,
    Actor,
    Clock,
    acl,
    ask,
    join,
    no_frame_before_pong,
    open_socket,
    post_register,
    receive_env,
    register,
    renew,
    rule,
    wait_closed,
)

from actr.errors import ErrorCode
from actr.identity import id_text, parse_type
from actr.protocol.actr_pb2 import ActrType, ServiceSpec
from actr.protocol.signaling_pb2 import (
    ActrToSignaling,
    SubscribeActrUpRequest,
    UnregisterRequest,
)
from signaling.config import ConfigError, Limits
from signaling.config_limits import parse_limits
from signaling.inbound import clip, request_problem
from signaling.limits import AttemptLimiter, ConnectionGate, client_keys
from signaling.registry import LAPSE_SLACK_SECS
from signaling.runner import RunningServer
from signaling.serials import (
    BLOCK,
    SerialBook,
    SerialsInUse,
    SerialsLock,
    clock_floor,
    serial_file_for,
)

T0 = 1_800_000_000.0


def subscribe(actr_type: ActrType) -> ActrToSignaling:
    return ActrToSignaling(subscribe_actr_up_request=SubscribeActrUpRequest(target_type=actr_type))


# ---- F1: serials ----


async def test_f1_serials_start_above_the_clock_floor_and_the_high_water_mark(
    tmp_path: Path,
) -> None:
    path = serial_file_for(tmp_path / "signing.key")
    assert path == tmp_path / "signing.key.serials"
    book = SerialBook(path, T0)
    first = await book.next(1)
    assert first == clock_floor(T0)
    assert [await book.next(1) for _ in range(3)] == [first + 1, first + 2, first + 3]
    assert await book.next(7) == first  # each realm counts on its own
    # The mark is on disk before any serial under it is handed out.
    assert json.loads(path.read_text())["high_water"] == first + BLOCK
    # Past the reserved block, a new block is written first.
    for _ in range(BLOCK):
        await book.next(1)
    assert json.loads(path.read_text())["high_water"] > first + BLOCK

    # A restart whose clock went back an hour still continues above every serial out.
    again = SerialBook(path, T0 - 3600)
    assert await again.next(1) >= first + BLOCK + 4


def test_f1_serial_file_damaged_or_unwritable_refuses_to_start(tmp_path: Path) -> None:
    damaged = tmp_path / "signing.key.serials"
    damaged.write_text("not json")
    with pytest.raises(ConfigError, match="damaged"):
        SerialBook(damaged, T0)
    # A folder that is a file: unwritable even for root.
    (tmp_path / "file").write_text("")
    blocked = tmp_path / "file" / "signing.key.serials"
    with pytest.raises(ConfigError, match="serial file"):
        SerialBook(blocked, T0)


async def test_f1_without_a_key_file_each_boot_starts_at_its_clock_floor() -> None:
    assert await SerialBook(None, T0).next(1) == clock_floor(T0)
    assert await SerialBook(None, T0 + 1).next(1) == clock_floor(T0) + 65536


def test_f1_one_server_at_a_time_holds_a_serial_file(tmp_path: Path) -> None:
    path = tmp_path / "signing.key.serials"
    lock = SerialsLock.acquire(path)
    lock_file = tmp_path / "signing.key.serials.lock"
    assert lock_file.read_text() == f"{os.getpid()}\n"
    with pytest.raises(
        SerialsInUse, match=f"in use by another signaling server \\(pid {os.getpid()}\\)"
    ):
        SerialsLock.acquire(path)
    lock.release()
    assert not lock.held and lock_file.read_text() == ""
    SerialsLock.acquire(path).release()


# ---- F3: sizes and subscriptions ----


async def test_f3_registration_fields_over_their_limits_are_400(
    http: aiohttp.ClientSession, base: str, make_server: MakeServer
) -> None:
    status, answer = await post_register(http, base, "acme:" + "n" * 200 + ":1.0")
    assert status == 400 and answer.error.code == ErrorCode.INVALID_ARGUMENT
    assert "actr_type.name" in answer.error.message
    rules = [rule(1, "acme:client:1.0") for _ in range(65)]
    status, answer = await post_register(http, base, "acme:echo:1.0", acl_=acl(*rules))
    assert status == 400 and "65 rules" in answer.error.message
    big_rule = rule(1, "acme:" + "c" * 200 + ":1.0")
    status, answer = await post_register(http, base, "acme:echo:1.0", acl_=acl(big_rule))
    assert status == 400 and "acl.rules.from_type" in answer.error.message
    spec = ServiceSpec(name="s" * 2000, fingerprint="f")
    status, answer = await post_register(http, base, "acme:echo:1.0", spec=spec)
    assert status == 400 and "service_spec.name" in answer.error.message
    # The body bound covers the .proto sources of a spec.
    small = await make_server(limits=Limits(max_registration_bytes=4096))
    spec = ServiceSpec(name="s", fingerprint="f")
    spec.protobufs.add(package="p", content="x" * 8192, fingerprint="f")
    status, answer = await post_register(http, small.url, "acme:echo:1.0", spec=spec)
    assert status == 413
    async with http.get(base + "/stats") as r:
        rejects = (await r.json())["rejects"]
    assert rejects["register_field_too_large"] == 4


async def test_f3_oversized_request_fields_are_refused_and_not_kept(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    a = await join(http, base, "acme:client:1.0")
    big = ActrType(manufacturer="acme", name="n" * 129, version="1")
    answer = await ask(a, subscribe(big))
    assert answer.server_to_actr.error.code == ErrorCode.INVALID_ARGUMENT
    assert "target_type.name" in answer.server_to_actr.error.message
    long_reason = UnregisterRequest(actr_id=a.id, reason="r" * 5000)
    answer = await ask(a, ActrToSignaling(unregister_request=long_reason))
    assert answer.server_to_actr.error.code == ErrorCode.INVALID_ARGUMENT
    record = server.state.registry.get(a.key)
    assert record is not None and record.subscriptions == set()
    assert record.live  # the oversized unregister did nothing
    assert server.state.stats.rejects["field_too_large"] == 2


def test_f3_request_problem_covers_every_request_the_server_reads() -> None:
    limits = Limits()
    long_part = "x" * 129
    assert request_problem(subscribe(ActrType(manufacturer=long_part)), limits)
    body = ActrToSignaling()
    body.route_candidates_request.target_type.name = long_part
    assert request_problem(body, limits)
    body = ActrToSignaling()
    body.discovery_request.manufacturer = long_part
    assert request_problem(body, limits)
    body = ActrToSignaling()
    body.get_service_spec_request.name = "x" * 1025
    assert request_problem(body, limits)
    body = ActrToSignaling()
    body.error.code = 1
    body.error.message = "é" * 513  # 1,026 bytes in UTF-8
    assert request_problem(body, limits)
    assert request_problem(subscribe(ActrType(manufacturer="x" * 128)), limits) is None
    assert (
        request_problem(subscribe(ActrType(name=long_part)), Limits(max_type_part_bytes=0)) is None
    )
    assert clip("y" * 1000).endswith("(1000 chars)")


async def test_f3_subscriptions_capped_per_actor(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    server = await make_server(limits=Limits(max_subscriptions=3))
    a = await join(http, server.url, "acme:client:1.0")
    for i in range(3):
        answer = await ask(a, subscribe(parse_type(f"acme:t{i}:1.0")))
        assert answer.server_to_actr.subscribe_actr_up_response.HasField("success")
    # The same one again is not a new one.
    answer = await ask(a, subscribe(parse_type("acme:t0:1.0")))
    assert answer.server_to_actr.subscribe_actr_up_response.HasField("success")
    answer = await ask(a, subscribe(parse_type("acme:t3:1.0")))
    refused = answer.server_to_actr.subscribe_actr_up_response
    assert refused.error.code == ErrorCode.RESOURCE_EXHAUSTED
    assert server.state.stats.rejects["subscriptions_exceeded"] == 1
    assert len(server.state.registry.get(a.key).subscriptions) == 3  # type: ignore[union-attr]


async def test_f3_registrations_capped_per_realm_until_they_lapse(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    """A realm member within the rate limits cannot fill memory with registrations: a
    realm holds at most max_registrations_per_realm; past it 429 RESOURCE_EXHAUSTED,
    counted, until registrations lapse. Other realms keep their own room."""
    clock = Clock()
    server = await make_server(clock=clock, limits=Limits(max_registrations_per_realm=3))
    for _ in range(3):
        await register(http, server.url, "acme:echo:1.0")
    status, answer = await post_register(http, server.url, "acme:echo:1.0")
    assert status == 429 and answer.error.code == ErrorCode.RESOURCE_EXHAUSTED
    assert "realm 1 holds 3 registrations" in answer.error.message
    await register(http, server.url, "acme:echo:1.0", realm=2)
    state = server.state
    assert state.stats.rejects["register_realm_full"] == 1
    assert state.registry.realm_count(1) == 3 and state.registry.realm_count(2) == 1
    # Never connected, their credentials expire: forgotten a minute later, room again.
    clock.advance(state.authority.lifetime_secs + LAPSE_SLACK_SECS)
    state.hub.apply(state.dispatcher.sweep(clock()))
    assert state.registry.realm_count(1) == 0
    await register(http, server.url, "acme:echo:1.0")
    assert state.registry.realm_count(1) == 1


def test_f3_registrations_per_realm_config() -> None:
    assert Limits().max_registrations_per_realm == 100_000
    parsed = parse_limits({"max_registrations_per_realm": 0}, "t.toml")
    assert parsed.max_registrations_per_realm == 0  # no cap
    with pytest.raises(ConfigError, match="max_registrations_per_realm must not be negative"):
        parse_limits({"max_registrations_per_realm": -1}, "t.toml")


async def test_f3_subscriptions_survive_a_reconnect_within_the_grace_and_end_with_it(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    clock = Clock()
    server = await make_server(clock=clock, reconnect_grace_secs=30)
    base = server.url
    watcher = await join(http, base, "acme:client:1.0")
    await ask(watcher, subscribe(parse_type("acme:echo:1.0")))
    # A reconnect within the grace keeps the subscription (SIG-8) ...
    await watcher.ws.close()
    watcher = Actor(watcher.ok, await open_socket(http, base, watcher.key, watcher.ok.credential))
    echo = await join(http, base, "acme:echo:1.0")
    up = await receive_env(watcher.ws)
    assert up.server_to_actr.actr_up_event.actor_id == echo.id
    # ... a socket gone for longer than the grace takes it along.
    await watcher.ws.close()
    record = server.state.registry.get(watcher.key)
    assert record is not None
    async with asyncio.timeout(TIMEOUT):
        while record.live:  # noqa: ASYNC110 (until the server has read the close)
            await asyncio.sleep(0.01)
    clock.advance(31)
    server.state.hub.apply(server.state.dispatcher.sweep(clock.now))
    assert record.subscriptions == set()
    watcher = Actor(watcher.ok, await open_socket(http, base, watcher.key, watcher.ok.credential))
    await join(http, base, "acme:echo:1.0")
    await no_frame_before_pong(watcher)


# ---- F4: the outbox bound ----


async def test_f4_outbox_over_its_byte_bound_closes_1013_and_takes_the_actor_offline(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    server = await make_server(limits=Limits(max_outbox_bytes=2 * 1024 * 1024))
    a = await join(http, server.url, "acme:echo:1.0")
    conn = server.state.hub.get(a.key)
    assert conn is not None
    # Not started writing yet as far as this test cares: queue straight into the outbox.
    frame = b"\x00" * (900 * 1024)
    conn.send(frame)
    conn.send(frame)
    assert conn.queued_bytes <= 2 * len(frame)
    conn.send(frame)  # past 2 MiB
    assert await wait_closed(a.ws) == 1013
    assert server.state.stats.rejects["slow_consumer"] == 1
    record = server.state.registry.get(a.key)
    assert record is not None and not record.live


# ---- F5: admission before HTTP ----


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True when the server closes (or resets) the connection without answering."""
    async with asyncio.timeout(TIMEOUT):
        try:
            return await reader.read() == b""
        except ConnectionResetError:
            return True


async def test_f5_header_timeout_closes_a_connection_that_drips_its_headers(
    make_server: MakeServer,
) -> None:
    server = await make_server(limits=Limits(header_timeout_secs=0.3))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    assert await _closed_by_server(reader)
    writer.close()
    assert server.state.stats.rejects["header_timeout"] == 1
    # A request sent in time is served on the same kind of connection.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    writer.close()
    assert server.state.stats.rejects["header_timeout"] == 1


async def test_f5_connections_over_the_per_address_cap_are_dropped_before_http(
    make_server: MakeServer,
) -> None:
    server = await make_server(limits=Limits(max_connections_per_ip=2))
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await _closed_by_server(reader)
    writer.close()
    assert server.state.stats.rejects["tcp_per_ip"] == 1
    # Another address of the same /24 has its own count.
    reader2, writer2 = await asyncio.open_connection(
        "127.0.0.1", server.port, local_addr=("127.0.0.2", 0)
    )
    writer2.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader2.read(), TIMEOUT)).endswith(b"ok")
    for _, w in [*held, (reader2, writer2)]:
        w.close()


def test_f5_gate_counts_per_address_and_per_prefix() -> None:
    gate = ConnectionGate(per_ip=2, per_prefix=3)
    assert gate.admit("10.0.0.1") is None
    assert gate.admit("10.0.0.1") is None
    assert gate.admit("10.0.0.1") == "per_ip"
    assert gate.admit("::ffff:10.0.0.2") is None  # an IPv4-mapped address is the IPv4 one
    assert gate.admit("10.0.0.3") == "per_prefix"
    assert gate.admit("10.0.1.3") is None  # another /24
    gate.release("10.0.0.1")
    assert gate.admit("10.0.0.3") is None
    v6 = ConnectionGate(per_ip=10, per_prefix=2)
    assert v6.admit("2001:db8::1") is None
    assert v6.admit("2001:db8::ffff:2") is None
    assert v6.admit("2001:db8::3:3") == "per_prefix"  # the same /64
    assert v6.admit("2001:db8:0:1::3") is None
    assert ConnectionGate(0, 0).admit("10.0.0.1") is None
    assert client_keys("2001:db8::1%eth0") == ("2001:db8::1", "2001:db8::/64")


# ---- F8: renewal-token chains ----


async def test_f8_a_stolen_token_renewed_twice_loses_the_id_when_the_victim_renews(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    victim = await join(http, base, "acme:echo:1.0")
    stolen = victim.ok.renewal_token
    status, answer = await renew(http, base, victim.id, stolen)  # the victim renews
    assert status == 200
    victim_token = answer.success.renewal_token
    # The attacker, with the token the victim renewed on, renews twice.
    status, answer = await renew(http, base, victim.id, stolen)
    assert status == 200
    status, answer = await renew(http, base, victim.id, answer.success.renewal_token)
    assert status == 200
    attacker = answer.success
    # The victim's token was spent by the attacker's renewal: it comes back, so two parties
    # hold the chain. Neither keeps the id.
    status, refused = await renew(http, base, victim.id, victim_token)
    assert status == 401 and refused.error.code == ErrorCode.UNAUTHENTICATED
    status, _ = await renew(http, base, victim.id, attacker.renewal_token)
    assert status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await open_socket(http, base, victim.key, attacker.credential)
    assert info.value.status == 401
    assert await wait_closed(victim.ws) == 1008  # its socket may be the attacker's
    assert server.state.stats.rejects["renew_token_reused"] == 2
    assert server.state.stats.rejects["socket_chain_revoked"] == 1


async def test_f8_a_token_used_after_its_successor_was_used_revokes_the_chain(
    http: aiohttp.ClientSession, base: str
) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    status, second = await renew(http, base, ok.actr_id, ok.renewal_token)
    assert status == 200
    status, third = await renew(http, base, ok.actr_id, second.success.renewal_token)
    assert status == 200
    status, _ = await renew(http, base, ok.actr_id, ok.renewal_token)
    assert status == 401
    status, _ = await renew(http, base, ok.actr_id, third.success.renewal_token)
    assert status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await open_socket(http, base, id_text(ok.actr_id), third.success.credential)


# ---- F11: attempt limits per prefix ----


async def test_f11_neighbouring_addresses_share_the_prefix_bucket(
    make_server: MakeServer,
) -> None:
    server = await make_server(
        limits=Limits(
            connects_per_ip_per_sec=0.01,
            connect_burst=3,
            connects_per_prefix_per_sec=0.01,
            connect_prefix_burst=5,
        )
    )
    statuses = []
    for last in range(10, 17):
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.0.{last}", 0))
        async with aiohttp.ClientSession(connector=connector) as http:
            status, _ = await post_register(http, server.url, "acme:echo:1.0")
            statuses.append(status)
    assert statuses == [200] * 5 + [429] * 2
    assert server.state.stats.rejects["register_prefix_rate_limited"] == 2


def test_f11_attempt_limiter_takes_from_both_buckets_only_when_both_have_one() -> None:
    limiter = AttemptLimiter(0.001, 2, 0.001, 3)
    assert limiter.allow("192.0.2.1", 0.0) and limiter.allow("192.0.2.1", 0.0)
    assert not limiter.allow("192.0.2.1", 0.0) and limiter.refused_by == "ip"
    assert limiter.allow("192.0.2.2", 0.0)  # the prefix's third
    assert not limiter.allow("192.0.2.3", 0.0) and limiter.refused_by == "prefix"
    assert limiter.allow("198.51.100.1", 0.0)  # another /24
    off = AttemptLimiter(0, 1, 0, 1)
    assert all(off.allow("192.0.2.1", 0.0) for _ in range(100))
