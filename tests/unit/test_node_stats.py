"""F13: the runtime's Stats route (EXT-1) is answered only to callers an admin pattern
admits, within a rate, and never by a client node."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from actr.actor import Actor
from actr.admin import AdminConfig, AdminGate, CallerPattern, TokenBucket
from actr.config import ConfigError, NodeConfig, from_dict
from actr.identity import id_text, parse_id
from actr.node import STATS_ROUTE, Node
from actr.protocol.actr_pb2 import Direction, PayloadType, RegisterOk, RpcEnvelope
from examples.echo import Echo
from tests.e2e.actors import Guarded

OWNER = parse_id("5@1/acme:echo:1.0")
OPS = parse_id("9@1/acme:ops:1.0")
PEER = parse_id("8@1/acme:caller:1.0")


class StatsProbe:
    """A node fed Stats requests through its inbound path, answers captured."""

    def __init__(self, actor: Actor | None, admin: AdminConfig | None = None) -> None:
        cfg = NodeConfig(admin=admin or AdminConfig())
        self.node = Node(cfg, actor)
        self.node.signaling.registration = RegisterOk(actr_id=OWNER)
        self.answers: asyncio.Queue[RpcEnvelope] = asyncio.Queue()

        async def capture(caller: str, ptype: int, data: bytes) -> None:
            reply = RpcEnvelope()
            reply.ParseFromString(data)
            self.answers.put_nowait(reply)

        self.node.inbound.answer = capture  # type: ignore[method-assign]
        self.n = 0

    async def ask(self, caller: str) -> RpcEnvelope:
        self.n += 1
        env = RpcEnvelope(
            route_key=STATS_ROUTE,
            request_id=f"r{self.n}",
            timeout_ms=5000,
            direction=Direction.DIRECTION_REQUEST,
            payload=b"",
        )
        remote = parse_id(caller)
        peer = SimpleNamespace(remote=remote, key=id_text(remote))
        self.node._on_message(peer, PayloadType.RPC_RELIABLE, env.SerializeToString())  # type: ignore[arg-type]
        return await asyncio.wait_for(self.answers.get(), 5)


def admin(*patterns: str, rate: float = 1000.0, burst: int = 1000) -> AdminConfig:
    return AdminConfig(tuple(CallerPattern.parse(p) for p in patterns), rate, burst)


async def test_f13_by_default_no_remote_caller_reads_stats() -> None:
    probe = StatsProbe(Echo())
    reply = await probe.ask(id_text(PEER))  # the actor's ACL admits it (same realm)
    assert reply.error.code == 10004 and not reply.HasField("payload")
    assert probe.node.stats()["node"]["stats_refused_permission_denied"] == 1


async def test_f13_stats_go_to_callers_stats_from_names_only() -> None:
    probe = StatsProbe(Echo(), admin("acme:ops:*"))
    reply = await probe.ask(id_text(OPS))
    assert json.loads(reply.payload)["actor"] == id_text(OWNER)
    assert (await probe.ask(id_text(PEER))).error.code == 10004
    # No realm in the pattern: the actor's own realm only.
    assert (await probe.ask("9@2/acme:ops:1.0")).error.code == 10004
    assert probe.node.stats()["node"]["stats_answered"] == 1


async def test_f13_the_actor_acl_still_applies_to_stats() -> None:
    probe = StatsProbe(Guarded(), admin("*/acme:*:*"))
    assert (await probe.ask("7@1/acme:stranger:1.0")).error.code == 10004  # Guarded's ACL
    assert (await probe.ask("8@2/acme:trusted:1.0")).HasField("payload")


async def test_f13_stats_are_rate_limited() -> None:
    probe = StatsProbe(Echo(), admin("acme:ops:1.0", rate=0.001, burst=3))
    codes = [(await probe.ask(id_text(OPS))).error.code for _ in range(5)]
    assert codes == [0, 0, 0, 10101, 10101]  # RESOURCE_EXHAUSTED past the burst
    assert probe.node.stats()["node"]["stats_refused_resource_exhausted"] == 2


async def test_f13_a_client_node_never_answers_stats() -> None:
    probe = StatsProbe(None, admin("*/*:*:*"))
    reply = await probe.ask(id_text(OPS))
    assert reply.error.code == 10009  # NOT_IMPLEMENTED: it hosts no actor
    assert not reply.HasField("payload")


def test_caller_patterns() -> None:
    assert CallerPattern.parse("acme:ops:*").matches(OWNER, OPS)
    assert not CallerPattern.parse("acme:ops:2.0").matches(OWNER, OPS)
    assert CallerPattern.parse("1/acme:ops:1.0").matches(OWNER, OPS)
    assert not CallerPattern.parse("2/acme:ops:1.0").matches(OWNER, OPS)
    assert CallerPattern.parse("*/*:*:*").matches(OWNER, parse_id("1@9/x:y:z"))
    for bad in ("acme:ops", "acme:ops:1.0:x", "x/acme:ops:1", "acme:o p:1", "", "acme:*x:1"):
        with pytest.raises(ValueError):
            CallerPattern.parse(bad)


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=2)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert bucket.take(10.0) and bucket.take(10.0) and not bucket.take(10.0)  # capped at burst
    gate = AdminGate(admin("acme:ops:1.0", rate=1.0, burst=1))
    assert gate.refusal(OWNER, OPS, 0.0) is None
    assert gate.refusal(OWNER, OPS, 0.1) is not None
    assert gate.refusal(OWNER, OPS, 1.2) is None


def test_admin_config_keys(tmp_path: Path) -> None:
    cfg = from_dict(
        {"admin": {"stats_from": ["acme:ops:*"], "stats_per_sec": 2, "stats_burst": 4}}, tmp_path
    )
    assert [p.text for p in cfg.admin.stats_from] == ["acme:ops:*"]
    assert (cfg.admin.stats_per_sec, cfg.admin.stats_burst) == (2.0, 4)
    default = from_dict({}, tmp_path).admin
    assert (default.stats_from, default.stats_per_sec, default.stats_burst) == ((), 1.0, 5)
    for bad, msg in (
        ({"stats_from": ["acme:ops"]}, "stats_from"),
        ({"stats_from": "acme:ops:*"}, "stats_from"),
        ({"stats_per_sec": 0}, "stats_per_sec"),
        ({"stats_burst": 0}, "stats_burst"),
        ({"stats_to": []}, "unknown keys"),
    ):
        with pytest.raises(ConfigError, match=msg):
            from_dict({"admin": bad}, tmp_path)
