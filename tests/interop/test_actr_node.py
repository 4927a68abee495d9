"""Interop with the real Rust actr runtime (actr's published Node.js module, a
client-only actr node): our signaling server and echo daemon as separate processes,
the actr node registers with our server, discovers the echo actor and calls it; and
our client calls the actr node. Each in both orders of the two sides' keys, since the
side with the larger (realm, serial, manufacturer, name) offers (PROTOCOL.md SIG-6)
and our server hands out serials in registration order.

Needs scripts/interop.sh (node, actr's module, and a glibc >= 2.39 userland for it);
skipped without it, failed instead with ACTR_REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

import actr
from actr.errors import NotImplementedByPeer
from actr.identity import id_text, parse_id
from examples.echo_pb2 import SayReply, SayRequest
from examples.launch import Proc, start_actor, start_signaling, write_actor_config
from tests.interop.actors import NOTE_ROUTE, READ_ROUTE
from tests.interop.peer import ActrPeer, Install, PeerError, need_actr_peer

pytestmark = pytest.mark.e2e

ECHO_TYPE = "acme:echo:1.0"
SAY = "echo.v1.Echo.Say"
RPC_SIGNAL = 1  # PayloadType


def key(actor_id: str) -> tuple[int, int, str, str]:
    """SIG-6's order of two actors: the larger one offers."""
    a = parse_id(actor_id)
    return (a.realm.realm_id, a.serial_number, a.type.manufacturer, a.type.name)


@pytest.fixture(scope="session")
def install() -> Install:
    """What scripts/interop.sh set up; every test here skips (or fails) without it."""
    return need_actr_peer()


@dataclass
class Deployment:
    order: str
    url: str
    echo_id: str
    peer: ActrPeer


@pytest.fixture(scope="module", params=["actr_key_larger", "actr_key_smaller"])
def deployment(
    request: pytest.FixtureRequest, install: Install, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Our signaling server, our echo daemon and an actr node; the one of the two that
    registers second gets the larger serial."""
    order: str = request.param
    work = tmp_path_factory.mktemp(order)
    procs: list[Proc] = []
    peer: ActrPeer | None = None
    try:
        sig, url = start_signaling(work)
        procs.append(sig)
        echo_cfg = write_actor_config(
            work,
            "echo",
            "tests.interop.actors:RecordingEcho",
            url,
            # Read waits for a tell that may be handled after it: they must overlap.
            sections={"actor": {"max_concurrent_handlers": 4}},
        )
        if order == "actr_key_larger":
            echo, echo_id = start_actor(work, "echo", echo_cfg)
            procs.append(echo)
            peer = ActrPeer(install, work, url)
            peer_id = peer.wait_ready()
            assert key(peer_id) > key(echo_id)
        else:
            peer = ActrPeer(install, work, url)
            peer_id = peer.wait_ready()
            echo, echo_id = start_actor(work, "echo", echo_cfg)
            procs.append(echo)
            assert key(peer_id) < key(echo_id)
        yield Deployment(order, url, echo_id, peer)
        assert peer.popen.poll() is None, f"the actr node died:\n{peer.log_tail()}"
        for p in procs:
            assert p.popen.poll() is None, f"{p.name} died during the tests"
    finally:
        if peer is not None:
            peer.stop()
        for p in reversed(procs):
            p.stop()


def test_actr_node_discovers_echo(deployment: Deployment) -> None:
    assert deployment.peer.discover(ECHO_TYPE, 1) == [deployment.echo_id]


def test_small_call_answered_and_decoded(deployment: Deployment) -> None:
    # The first call sets up the connection. actr waits 5 s for a role assignment and
    # retries after 15 s when none comes, so a 10 s deadline fails without SIG-6.
    raw = deployment.peer.call(
        deployment.echo_id, SAY, SayRequest(text="hello from actr").SerializeToString()
    )
    reply = SayReply.FromString(raw)
    assert reply.text == "hello from actr"
    assert reply.served_by == deployment.echo_id


def test_300_kb_call_intact(deployment: Deployment) -> None:
    blob = random.Random(300).randbytes(300 * 1024)
    req = SayRequest(text="big", blob=blob)
    raw = deployment.peer.call(deployment.echo_id, SAY, req.SerializeToString(), timeout=20)
    reply = SayReply.FromString(raw)
    assert reply.text == "big"
    assert len(reply.blob) == len(blob)
    assert reply.blob == blob


def test_unknown_route_answered_with_its_code(deployment: Deployment) -> None:
    with pytest.raises(PeerError) as e:
        deployment.peer.call(deployment.echo_id, "echo.v1.Echo.Nope", b"")
    assert (e.value.name, e.value.code) == ("UnknownRoute", 10006)
    assert "echo.v1.Echo.Nope" in e.value.message  # our runtime's text, over the wire


def test_call_on_rpc_signal(deployment: Deployment) -> None:
    # actr 0.5.9 logs each send with its lane; the lines before an answer are in the
    # log by the time the answer is read (one stdout, read in order).
    sent_on_signal = "[channel=WebRTC] RpcSignal ("
    before = deployment.peer.log_text().count(sent_on_signal)
    raw = deployment.peer.call(
        deployment.echo_id,
        SAY,
        SayRequest(text="urgent").SerializeToString(),
        payload_type=RPC_SIGNAL,
    )
    reply = SayReply.FromString(raw)
    assert (reply.text, reply.served_by) == ("urgent", deployment.echo_id)
    assert deployment.peer.log_text().count(sent_on_signal) > before


def test_tell_handled_by_echo(deployment: Deployment) -> None:
    text = f"tell from actr ({deployment.order})"
    deployment.peer.tell(deployment.echo_id, NOTE_ROUTE, SayRequest(text=text).SerializeToString())
    # Read answers once the Note handler ran, with the caller it saw.
    raw = deployment.peer.call(
        deployment.echo_id, READ_ROUTE, SayRequest(text=text).SerializeToString()
    )
    reply = SayReply.FromString(raw)
    assert (reply.text, reply.served_by) == (text, deployment.peer.actor_id)


@pytest.fixture
async def signaling(install: Install, tmp_path: Path) -> AsyncIterator[str]:
    proc, url = await asyncio.to_thread(start_signaling, tmp_path)
    try:
        yield url
    finally:
        await asyncio.to_thread(proc.stop)


@pytest.mark.parametrize("order", ["ours_key_smaller", "ours_key_larger"])
async def test_our_client_calls_actr_node(
    order: str, install: Install, signaling: str, tmp_path: Path
) -> None:
    """The actr node hosts no services, so it answers NOT_IMPLEMENTED (10009): an answer
    from it at all means the connection our client asked for came up."""
    async with AsyncExitStack() as stack:

        async def our_client() -> actr.Node:
            client = actr.connect(
                signaling, realm_secret="dev-secret", host_addresses=["127.0.0.1"]
            )
            return await stack.enter_async_context(client)

        if order == "ours_key_smaller":
            client = await our_client()
        peer = ActrPeer(install, tmp_path, signaling)
        stack.push_async_callback(asyncio.to_thread, peer.stop)
        peer_id = await asyncio.to_thread(peer.wait_ready)
        if order == "ours_key_larger":
            client = await our_client()
        client_id = id_text(client.actr_id)
        assert (key(client_id) < key(peer_id)) == (order == "ours_key_smaller")

        with pytest.raises(NotImplementedByPeer) as e:
            await client.call_raw(
                peer_id, SAY, SayRequest(text="hi").SerializeToString(), timeout=10
            )
        assert e.value.raw_code == 10009
