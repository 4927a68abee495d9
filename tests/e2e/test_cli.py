"""The `actr` command line against real daemons: answers, errors and exit codes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from examples.echo_pb2 import SayReply
from examples.launch import ROOT, write_actor_config
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e


async def actr_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``actr``; the realm secret comes from ACTR_REALM_SECRET (F14), unless
    ``env`` says otherwise."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "actr", *args],
        cwd=ROOT,
        env={**os.environ, "ACTR_REALM_SECRET": "dev-secret", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def conn(cluster: Cluster) -> list[str]:
    return ["--signaling", cluster.url, "--host-address", "127.0.0.1"]


async def test_call_prints_json_or_base64_and_errors_exit_1(cluster: Cluster) -> None:
    echo_id = await cluster.start_actor("echo", "examples.echo:Echo")
    typed = ["--import", "examples.echo_pb2", "--request-type", "echo.v1.SayRequest"]
    done = await actr_cli(
        "call",
        "acme:echo:1.0",
        "echo.v1.Echo.Say",
        *typed,
        "--response-type",
        "echo.v1.SayReply",
        "--json",
        '{"text": "hi"}',
        *conn(cluster),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"text": "hi", "served_by": echo_id}

    done = await actr_cli(
        "call", echo_id, "echo.v1.Echo.Say", *typed, "--json", '{"text": "raw"}', *conn(cluster)
    )
    assert done.returncode == 0, done.stderr
    reply = SayReply()
    reply.ParseFromString(base64.b64decode(done.stdout.strip()))
    assert reply.text == "raw"

    done = await actr_cli("call", "acme:echo:1.0", "echo.v1.Echo.Nope", *conn(cluster))
    assert done.returncode == 1
    assert "UNKNOWN_ROUTE (10006)" in done.stderr

    done = await actr_cli("discover", *conn(cluster))
    assert done.returncode == 0, done.stderr
    assert "acme:echo:1.0" in done.stdout.split()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["call", "acme:echo:1.0", "x.Y.Z", "--json", "{}"], "registered no service spec"),
        (["call", "acme:echo:1.0", "x.Y.Z", "--data-b64", "%%%"], "not base64"),
        (["call", "not a type", "x.Y.Z", "--timeout", "0"], "--timeout must be > 0"),
        (
            ["call", "acme:echo:1.0", "x.Y.Z", "--request-type", "no.Such", "--json", "{}"],
            "unknown message type",
        ),
    ],
)
async def test_bad_cli_usage_exits_2_with_a_message(
    cluster: Cluster, args: list[str], message: str
) -> None:
    done = await actr_cli(*args, *conn(cluster))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


async def test_call_to_malformed_target_is_invalid_argument(cluster: Cluster) -> None:
    done = await actr_cli("call", "not-a-type", "x.Y.Z", *conn(cluster))
    assert done.returncode == 1
    assert "INVALID_ARGUMENT" in done.stderr


async def test_run_with_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[actor]\nclass = "examples.echo:Echo"\ncolour = "blue"\n')
    done = await actr_cli("run", str(bad))
    assert done.returncode == 2
    assert "unknown keys: colour" in done.stderr
    done = await actr_cli("run", str(tmp_path / "missing.toml"))
    assert done.returncode == 2
    assert "not found" in done.stderr


async def test_run_aborts_when_on_start_fails(cluster: Cluster) -> None:
    cfg = write_actor_config(cluster.work, "bad", "tests.e2e.actors:BadStart", cluster.url)
    done = await actr_cli("run", str(cfg))
    assert done.returncode == 1
    assert "on_start raised RuntimeError: database is not there" in done.stderr


async def test_mailbox_stats_and_dlq_commands_on_a_mailbox_file(tmp_path: Path) -> None:
    from actr.mailbox import Mailbox
    from actr.protocol.actr_pb2 import Direction, RpcEnvelope

    env = RpcEnvelope(
        route_key="a.B.C", request_id="r1", timeout_ms=1000, direction=Direction.DIRECTION_REQUEST
    )
    box = await Mailbox.open(tmp_path / "mailbox.db")
    for rid in ("r1", "r2", "r3"):
        await box.enqueue(
            caller="1@1/a:c:1",
            request_id=rid,
            priority=1,
            payload_type=0,
            envelope=env.SerializeToString(),
        )
    r1, r2 = await box.dequeue(2)
    await box.dead_letter(r1, "stored envelope does not decode")
    await box.dead_letter(r2, "poison")
    await box.close()

    done = await actr_cli("mailbox", "stats", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "queued      1" in done.stdout and "dead        2" in done.stdout
    done = await actr_cli("dlq", "list", str(tmp_path / "mailbox.db"))
    header, *lines = done.stdout.strip().splitlines()
    assert header.split("\t")[:4] == ["seq", "failed_at", "caller", "request_id"]
    assert len(lines) == 2 and "a.B.C" in lines[0] and "poison" in lines[1]
    seq = lines[0].split("\t")[0]
    done = await actr_cli("dlq", "list", str(tmp_path), "--json", "--limit", "1")
    (listed,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert (str(listed["seq"]), listed["request_id"], listed["route_key"]) == (seq, "r1", "a.B.C")
    done = await actr_cli("dlq", "list", str(tmp_path), "--limit", "0")
    assert done.returncode == 2 and "must be at least 1" in done.stderr
    done = await actr_cli("dlq", "show", str(tmp_path), seq)
    assert json.loads(done.stdout)["request_id"] == "r1"
    done = await actr_cli("dlq", "show", str(tmp_path), "999999")
    assert done.returncode == 2 and "no such dead letter" in done.stderr
    done = await actr_cli("dlq", "replay", str(tmp_path), seq)
    assert done.stdout.strip() == "replayed 1"
    done = await actr_cli("dlq", "purge", str(tmp_path))
    assert done.returncode == 2 and "needs sequence numbers or --all" in done.stderr
    done = await actr_cli("dlq", "purge", str(tmp_path), "--all")
    assert done.stdout.strip() == "purged 1"
    done = await actr_cli("dlq", "list", str(tmp_path))
    assert (done.returncode, done.stdout, done.stderr.strip()) == (0, "", "no dead letters")
    done = await actr_cli("mailbox", "stats", str(tmp_path), "--json")
    stats = json.loads(done.stdout)
    assert (stats["queued"], stats["dead_letters"]) == (2, 0)
    done = await actr_cli("mailbox", "stats", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "no mailbox at" in done.stderr
