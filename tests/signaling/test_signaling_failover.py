"""Two signaling processes on one real redis-server, actor daemons on each (PROTOCOL.md
SIG-10, SIG-8): a call across nodes is answered, and when one node is killed its actors
move to the other with the same ActrId."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

import actr
from actr.identity import parse_type
from examples.echo_pb2 import SayReply, SayRequest
from examples.launch import ROOT, start_actor, start_signaling, write_actor_config

pytestmark = pytest.mark.e2e

ECHO = "acme:echo:1.0"
SAY = "echo.v1.Echo.Say"
DOWN = re.compile(r"signaling up=False")
UP = re.compile(r"signaling up=True")


def _node_config(redis_url: str, key: Path) -> str:
    return f'redis_url = "{redis_url}"\nsigning_key_file = "{key}"\nheartbeat_interval_secs = 2\n'


async def test_sig10_call_across_nodes_and_failover_keeps_actr_id(
    redis_url: str, tmp_path: Path
) -> None:
    key = tmp_path / "signing.key"
    extra = _node_config(redis_url, key)
    sig_a, url_a = await asyncio.to_thread(start_signaling, tmp_path, name="sig-a", extra=extra)
    sig_b, url_b = await asyncio.to_thread(start_signaling, tmp_path, name="sig-b", extra=extra)
    procs = [sig_a, sig_b]
    try:
        cfg = write_actor_config(
            tmp_path,
            "echo",
            "reporting_echo:ReportingEcho",
            url_a,
            sections={
                "actor": {"pythonpath": [str(ROOT), str(ROOT / "tests" / "signaling")]},
                # Registers on a (the first), fails over to b (SIG-8).
                "signaling": {"urls": [url_a, url_b]},
            },
        )
        echo, echo_id = await asyncio.to_thread(start_actor, tmp_path, "echo", cfg)
        procs.append(echo)
        # A client registered on node b calls the daemon registered on node a.
        async with actr.connect(
            url_b, realm_secret="dev-secret", host_addresses=["127.0.0.1"]
        ) as client:
            await _seen_from(client, ECHO)
            reply = await client.call(ECHO, SAY, SayRequest(text="across"), SayReply, timeout=15)
            assert (reply.text, reply.served_by) == ("across", echo_id)

            sig_a.kill()
            await asyncio.to_thread(echo.wait_for, DOWN, 30)
            await asyncio.to_thread(echo.wait_for, UP, 60)
            # The established peer connection did not need signaling at all.
            reply = await client.call(ECHO, SAY, SayRequest(text="still"), SayReply, timeout=15)
            assert reply.served_by == echo_id

        # A newcomer on b reaches the daemon through b alone: it moved there, same ActrId.
        async with actr.connect(
            url_b, realm_secret="dev-secret", host_addresses=["127.0.0.1"]
        ) as fresh:
            reply = await fresh.call(ECHO, SAY, SayRequest(text="after"), SayReply, timeout=15)
            assert (reply.text, reply.served_by) == ("after", echo_id)
        log = (tmp_path / "echo.log").read_text()
        assert "identity_replaced" not in log
        assert f"signaling_up actor={echo_id} url={url_b}" in log
    finally:
        for p in reversed(procs):
            p.stop()


async def _seen_from(client: actr.Node, actr_type: str, timeout: float = 10.0) -> None:
    """Waits until the client's node lists ``actr_type`` live: node a's news of the
    daemon reaches node b through Redis a moment after the daemon is ready."""
    wanted = parse_type(actr_type)
    for _ in range(int(timeout / 0.05)):
        if await client.signaling.route_candidates(wanted):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{actr_type} never became live on the client's node")
