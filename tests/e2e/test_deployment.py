"""Issue 16: the topology of deploy/compose.yaml as local processes, run from deploy/'s own
configs with only addresses and paths made local: redis-server, coturn with the shared
secret, two signaling nodes on that Redis (their config written by the compose file's own
start script), the echo actor direct and force_relay'd, each with its [admin] endpoint.
A client on the second node calls both actors, registered on the first."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

import actr
from actr.errors import NotFound
from examples.echo_pb2 import SayReply, SayRequest
from examples.launch import LISTEN_RE, ROOT, Proc, start_actor
from tests.deploy_kit import DEPLOY, compose_services, dump, load, run_start_script
from tests.e2e.ops_kit import get, scrape, value
from tests.services import free_port, start_redis, start_turnserver

pytestmark = pytest.mark.e2e

SAY = "echo.v1.Echo.Say"
REALM_SECRET = "local-realm-secret-of-some-length"
TURN_SECRET = "local-turn-secret-of-some-length"
ENV = {"ACTR_REALM_SECRET": REALM_SECRET}


def start_node(tmp: Path, name: str, config: Path) -> tuple[Proc, str]:
    local = ["--host", "127.0.0.1", "--port", "0"]
    proc = Proc(
        name,
        [sys.executable, "-m", "signaling", "--config", str(config), *local],
        env=ENV,
        log_path=tmp / f"{name}.log",
    )
    try:
        return proc, proc.wait_for(LISTEN_RE).group(1)
    except BaseException:
        proc.stop()
        raise


async def test_the_compose_topology_as_local_processes(tmp_path: Path) -> None:
    services = compose_services()
    assert set(services) == {"redis", "coturn", "signaling-a", "signaling-b", "echo", "echo-relay"}
    assert "/etc/actr/actor.toml" in services["echo"]
    assert "/etc/actr/actor-relay.toml" in services["echo-relay"]
    assert load("actor.toml")["webrtc"]["force_relay"] is False
    assert load("actor-relay.toml")["webrtc"]["force_relay"] is True

    procs: list[Proc] = []
    try:
        redis, redis_url = await asyncio.to_thread(start_redis)
        procs.append(redis)
        turn, turn_port = await asyncio.to_thread(start_turnserver, tmp_path, TURN_SECRET)
        procs.append(turn)

        # The config each signaling node runs with: what the compose file's start script
        # writes from deploy/signaling-cluster.toml, with local Redis, key and coturn.
        shutil.copy(DEPLOY / "signaling-cluster.toml", tmp_path)
        node = run_start_script(tmp_path, tmp_path / "generated.toml", TURN_SECRET)
        assert node["turn"]["secret"] == TURN_SECRET
        node["redis_url"] = redis_url
        node["signing_key_file"] = str(tmp_path / "key" / "signing.key")
        node["turn"]["urls"] = [f"turn:127.0.0.1:{turn_port}"]
        (tmp_path / "signaling.toml").write_text(dump(node))
        urls = []
        for name in ("signaling-a", "signaling-b"):  # b after a: a writes the shared key
            proc, url = await asyncio.to_thread(
                start_node, tmp_path, name, tmp_path / "signaling.toml"
            )
            procs.append(proc)
            urls.append(url)

        ids, admins = {}, {}
        for name, file in (("echo", "actor.toml"), ("echo-relay", "actor-relay.toml")):
            cfg = load(file)
            cfg["actor"] |= {"pythonpath": [str(ROOT)], "data_dir": str(tmp_path / name)}
            cfg["signaling"]["urls"] = urls
            cfg["webrtc"]["host_addresses"] = ["127.0.0.1"]
            port = free_port()
            cfg["admin"]["listen"] = f"127.0.0.1:{port}"
            admins[name] = f"http://127.0.0.1:{port}"
            path = tmp_path / f"{name}.toml"
            path.write_text(dump(cfg))
            proc, ids[name] = await asyncio.to_thread(start_actor, tmp_path, name, path, ENV)
            procs.append(proc)

        async with (
            aiohttp.ClientSession() as http,
            actr.connect(
                urls[1], realm_secret=REALM_SECRET, host_addresses=["127.0.0.1"]
            ) as client,
        ):
            for name, actor_id in ids.items():
                r = await _call_once_known(client, actor_id, name)
                assert (r.text, r.served_by) == (name, actor_id)
            pairs = {key: p["selected_pair"] for key, p in client.stats()["peers"].items()}
            assert "relay" in pairs[ids["echo-relay"]]  # its side offers relayed candidates only
            for url in urls:
                assert (await get(http, url + "/healthz"))[0] == 200
            for admin in admins.values():
                assert await get(http, admin + "/healthz") == (200, "ok\n")
                metrics = await scrape(http, admin)
                assert value(metrics, "actr_calls_total", route=SAY, code="OK") == 1
                assert value(metrics, "actr_signaling_connected") == 1
    finally:
        for p in reversed(procs):
            await asyncio.to_thread(p.stop)


async def _call_once_known(client: actr.Node, actor_id: str, text: str) -> SayReply:
    """The actors registered on the first node; the second hears of them through Redis
    a moment after they are ready, and answers NOT_FOUND until then."""
    for _ in range(200):
        try:
            return await client.call(actor_id, SAY, SayRequest(text=text), SayReply, timeout=30)
        except NotFound:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{actor_id} never became reachable from the second node")
