"""`actr describe` and `actr call` with JSON and no code (issue 15): the types come
from the actor's ServiceSpec, fetched from the signaling server and compiled at run
time; errors print their code and exit 1, bad input exits 2 before anything is sent."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from examples.launch import ROOT
from tests.e2e.conftest import STATS_FOR_CLIENT, Cluster
from tests.e2e.test_cli import actr_cli, conn

pytestmark = pytest.mark.e2e

ORDER = {
    "customer": "ada",
    "items": [
        {"sku": "tea", "quantity": 2, "attachment": "aGVsbG8="},
        {"sku": "cup", "quantity": 101},
    ],
    "priority": "PRIORITY_HIGH",
    "ship_to": {"street": "1 Main St", "city": "Oslo"},
    "notes": {"door": "blue"},
    "tags": ["gift", "fragile"],
}


async def test_describe_lists_routes_types_and_fields(cluster: Cluster) -> None:
    await cluster.start_actor("echo", "examples.echo:Echo")
    await cluster.start_actor("orders", "examples.orders:Orders")
    done = await actr_cli("describe", "acme:echo:1.0", *conn(cluster))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "echo.v1.Echo.Say\n  request:  echo.v1.SayRequest\n  response: echo.v1.SayReply" in out
    assert (
        "message echo.v1.SayRequest {\n  optional string text = 1;\n  optional bytes blob = 2;"
        in out
    )

    done = await actr_cli("describe", "acme:orders:1.0", *conn(cluster))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "orders.v1.Orders.Place\n  request:  orders.v1.PlaceOrder" in out
    for line in (
        "  repeated orders.v1.Item items = 2;",
        "  orders.v1.Priority priority = 3;",
        "  map<string, string> notes = 5;",
        "  bytes attachment = 3;",
        "message orders.v1.OrderPlaced.Line {",
        "enum orders.v1.Priority {\n  PRIORITY_UNSPECIFIED = 0;",
    ):
        assert line in out, line

    done = await actr_cli("describe", "acme:nobody:1.0", *conn(cluster))
    assert done.returncode == 1 and "NOT_FOUND (10003)" in done.stderr


async def test_call_with_json_and_no_import(cluster: Cluster) -> None:
    echo_id = await cluster.start_actor("echo", "examples.echo:Echo", sections=STATS_FOR_CLIENT)
    await cluster.start_actor("orders", "examples.orders:Orders")
    done = await actr_cli(
        "call", "acme:echo:1.0", "echo.v1.Echo.Say", '{"text": "hi"}', *conn(cluster)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"text": "hi", "served_by": echo_id}

    # By id, the JSON on standard input, bytes as base64.
    piped = await _run_with_stdin(
        ["call", echo_id, "echo.v1.Echo.Say", "-", *conn(cluster)], '{"text": "in", "blob": "AAEC"}'
    )
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout) == {"text": "in", "blob": "AAEC", "served_by": echo_id}

    done = await actr_cli(
        "call", "acme:orders:1.0", "orders.v1.Orders.Place", json.dumps(ORDER), *conn(cluster)
    )
    assert done.returncode == 0, done.stderr
    placed = json.loads(done.stdout)
    assert placed["status"] == "STATUS_HELD"  # 101 cups: more than 100 of one item
    assert placed["order_id"] == "ada-1" and placed["total_quantity"] == 103
    assert placed["lines"][0] == {
        "sku": "tea",
        "quantity": 2,
        # sha256(b"hello")
        "attachment_sha256": "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
    }
    assert placed["ship_to"] == ORDER["ship_to"] and placed["notes"] == ORDER["notes"]
    assert placed["tags"] == ORDER["tags"] and placed["priority"] == "PRIORITY_HIGH"

    # The runtime's own route answers JSON; no spec names it.
    done = await actr_cli("call", echo_id, "actr.v1.Runtime.Stats", *conn(cluster))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["actor"] == echo_id


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        # Bad input: nothing is sent (exit 2).
        (["acme:echo:1.0", "echo.v1.Echo.Say", '{"text": '], 2, "the request is not JSON"),
        (["acme:echo:1.0", "echo.v1.Echo.Say", '{"txt": "hi"}'], 2, 'no field named "txt"'),
        (["acme:echo:1.0", "echo.v1.Echo.Say", '{"text": 5}'], 2, "does not fit echo.v1"),
        (["acme:orders:1.0", "orders.v1.Orders.Place", '{"priority": "URGENT"}'], 2, "URGENT"),
        (["acme:echo:1.0", "echo.v1.Echo.Nope", "{}"], 2, "has no route echo.v1.Echo.Nope"),
        (["acme:nobody:1.0", "x.v1.X.Y", "{}"], 2, "registered no service spec"),
        # Sent and refused (exit 1, the code and message).
        (["acme:echo:1.0", "echo.v1.Echo.Nope"], 1, "UNKNOWN_ROUTE (10006)"),
        (["acme:orders:1.0", "orders.v1.Orders.Place", "{}"], 1, "INVALID_ARGUMENT (10005)"),
        (["acme:orders:1.0", "actr.v1.Runtime.Stats"], 1, "PERMISSION_DENIED (10004)"),
    ],
)
async def test_errors_say_what_and_exit_nonzero(
    cluster: Cluster, args: list[str], code: int, message: str
) -> None:
    await cluster.start_actor("echo", "examples.echo:Echo")
    await cluster.start_actor("orders", "examples.orders:Orders")
    done = await actr_cli("call", *args, *conn(cluster))
    assert done.returncode == code, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


async def test_top_once_shows_a_daemons_counters(cluster: Cluster) -> None:
    echo_id = await cluster.start_actor("echo", "examples.echo:Echo", sections=STATS_FOR_CLIENT)
    done = await actr_cli("top", "acme:echo:1.0", "--once", *conn(cluster), env={"COLUMNS": "120"})
    assert done.returncode == 0, done.stderr
    assert f"actor {echo_id}" in done.stdout and "signaling up" in done.stdout
    assert "node.stats_answered" in done.stdout
    done = await actr_cli("top", "--once", *conn(cluster), env={"COLUMNS": "120"})
    assert done.returncode == 0 and "acme:echo:1.0" in done.stdout
    assert done.stdout.count("╭") == 1  # not itself: a client has no Stats


async def _run_with_stdin(args: list[str], text: str) -> subprocess.CompletedProcess[str]:
    import asyncio
    import os

    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "actr", *args],
        cwd=ROOT,
        env={**os.environ, "ACTR_REALM_SECRET": "dev-secret"},
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
