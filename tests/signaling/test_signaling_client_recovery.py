"""The runtime's signaling client against a real server: it rides out rate limiting at
start (HTTP 429, retried with jittered backoff until its start timeout) and asks for
its actr_up subscriptions again after a reconnect the server forgot them across."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiohttp
import pytest
from conftest import MakeServer
from signaling_kit import REALMS, TIMEOUT, join, post_register

from actr.errors import RateLimited
from actr.identity import id_text, parse_type
from actr.protocol.actr_pb2 import ActrId, ActrType
from actr.signaling_client import SignalingClient
from actr.signaling_registration import retry_after
from actr.signaling_socket import retry_rate_limited
from signaling.config import Config


def client(url: str, actr_type: str = "acme:client:1.0", **kw: object) -> SignalingClient:
    return SignalingClient(
        url,
        realm=1,
        realm_secret=REALMS[1],
        actr_type=parse_type(actr_type),
        **kw,  # type: ignore[arg-type]
    )


async def test_many_clients_started_at_once_all_get_through_a_rate_limit(
    make_server: MakeServer, config: Config
) -> None:
    # 2 attempts in a burst, 10 a second after: 12 clients (register + socket each) hit 429.
    limits = replace(config.limits, connects_per_ip_per_sec=10.0, connect_burst=2)
    server = await make_server(limits=limits)
    clients = [client(server.url, start_timeout=20.0) for _ in range(12)]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.start() for c in clients)), 30)
        assert all(c.connected.is_set() for c in clients)
        assert len({id_text(c.actr_id) for c in clients}) == 12
        rejects = server.state.stats.rejects
        assert rejects["register_rate_limited"] + rejects["ws_rate_limited"] > 0
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_a_client_gives_up_at_its_start_timeout(
    make_server: MakeServer, config: Config
) -> None:
    limits = replace(config.limits, connects_per_ip_per_sec=0.01, connect_burst=2)
    server = await make_server(limits=limits)
    first = client(server.url)
    await first.start()  # takes the two attempts the bucket had
    late = client(server.url, start_timeout=0.5)
    try:
        with pytest.raises(RateLimited):
            await late.start()
    finally:
        await late.close()
        await first.close()


async def test_retry_honours_retry_after_and_stops_at_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    tries: list[float] = []

    async def twice_limited() -> str:
        tries.append(loop.time())
        if len(tries) < 3:
            raise RateLimited("429", retry_after=0.05)
        return "in"

    assert await retry_rate_limited(twice_limited, 5.0) == "in"
    assert len(tries) == 3 and tries[1] - tries[0] >= 0.05 and tries[2] - tries[1] >= 0.05

    async def always_limited() -> str:
        raise RateLimited("429", retry_after=10.0)

    with pytest.raises(RateLimited):
        await retry_rate_limited(always_limited, 1.0)  # the wait would pass the deadline
    assert retry_after("3") == 3.0 and retry_after("soon") is None and retry_after(None) is None


async def test_subscriptions_are_asked_again_after_a_reconnect(
    make_server: MakeServer, http: object
) -> None:
    # No grace: the server drops a closed socket's subscriptions at once (F3).
    server = await make_server(reconnect_grace_secs=0.0)
    watcher = client(server.url)
    ups: asyncio.Queue[ActrId] = asyncio.Queue()
    watcher.on_presence = lambda kind, actor: ups.put_nowait(actor) if kind == "up" else None
    await watcher.start()
    asked_again = asyncio.Event()
    send_subscribe = watcher._send_subscribe

    async def noting(actr_type: ActrType) -> None:
        await send_subscribe(actr_type)
        asked_again.set()

    try:
        await watcher.subscribe(parse_type("acme:echo:1.0"))
        watcher._send_subscribe = noting  # type: ignore[method-assign]
        # The server drops the socket; the client reconnects by itself (SIG-8).
        conn = server.state.hub.get(id_text(watcher.actr_id))
        assert conn is not None
        conn.close(1001, "going away")
        await asyncio.wait_for(watcher.disconnected.wait(), TIMEOUT)
        await asyncio.wait_for(watcher.connected.wait(), TIMEOUT)
        # Answered by the server: subscribed again before the echo actor comes up.
        await asyncio.wait_for(asked_again.wait(), TIMEOUT)
        echo = await join(http, server.url, "acme:echo:1.0")  # type: ignore[arg-type]
        assert await asyncio.wait_for(ups.get(), TIMEOUT) == echo.id
    finally:
        await watcher.close()


async def test_429s_say_when_to_come_back(
    make_server: MakeServer, config: Config, http: aiohttp.ClientSession
) -> None:
    limits = replace(config.limits, connects_per_ip_per_sec=0.5, connect_burst=1)
    server = await make_server(limits=limits)
    assert (await post_register(http, server.url, "acme:echo:1.0"))[0] == 200
    status, _ = await post_register(http, server.url, "acme:echo:1.0")
    assert status == 429
    async with http.get(server.url + "/signaling/ws") as resp:
        assert resp.status == 429
        # One token every 2 s: come back in 2 (whole seconds, at least 1).
        assert resp.headers["Retry-After"] == "2"
    async with http.post(server.url + "/ais/register", data=b"") as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "2"
