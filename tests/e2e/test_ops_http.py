"""Issue 16: a daemon's operator endpoint ([admin] listen) while it works and fails.

/metrics scraped while calls run shows the counters moving; /healthz turns 503
when the signaling server is gone past [admin] signaling_grace, or when the
mailbox cannot write (the disk-full fault of tests/unit/test_mailbox_faults.py),
and 200 again after; the daemon's JSON log lines name the actor."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiohttp
import pytest

import actr
from actr.admin import AdminConfig
from actr.config import NodeConfig, SignalingConfig
from actr.errors import Unavailable
from actr.node import Node
from examples.echo import Echo
from examples.echo_pb2 import SayReply, SayRequest
from examples.launch import ROOT, start_actor, start_signaling, write_actor_config
from tests.e2e.ops_kit import get, scrape, value, wait_until
from tests.services import free_port

pytestmark = pytest.mark.e2e

ECHO = "acme:echo:1.0"
SAY = "echo.v1.Echo.Say"
DOWN = re.compile(r"signaling up=False")
UP = re.compile(r"signaling up=True")
CALLS = 30


async def test_metrics_move_while_calls_run_and_healthz_follows_signaling(tmp_path: Path) -> None:
    sig, url = await asyncio.to_thread(start_signaling, tmp_path)
    sig_port = int(url.rsplit(":", 1)[1])
    port = free_port()
    admin = f"http://127.0.0.1:{port}"
    cfg = write_actor_config(
        tmp_path,
        "echo",
        "reporting_echo:ReportingEcho",
        url,
        sections={
            "actor": {"pythonpath": [str(ROOT), str(ROOT / "tests" / "signaling")]},
            "admin": {"listen": f"127.0.0.1:{port}", "signaling_grace": 1.0},
            "logging": {"format": "json"},
        },
    )
    echo, echo_id = await asyncio.to_thread(start_actor, tmp_path, "echo", cfg)
    procs = [echo, sig]
    try:
        async with (
            aiohttp.ClientSession() as http,
            actr.connect(url, realm_secret="dev-secret", host_addresses=["127.0.0.1"]) as client,
        ):
            assert await get(http, admin + "/healthz") == (200, "ok\n")
            assert await get(http, admin + "/readyz") == (200, "ok\n")
            before = await scrape(http, admin)
            ok = {"route": SAY, "code": "OK"}
            assert value(before, "actr_signaling_connected") == 1
            assert value(before, "actr_signaling_registered") == 1

            done = 0
            progressed = asyncio.Event()

            async def calls() -> None:
                nonlocal done
                for i in range(CALLS):
                    r = await client.call(ECHO, SAY, SayRequest(text=f"{i}"), SayReply, timeout=15)
                    assert r.text == f"{i}"
                    done += 1
                    progressed.set()

            caller = asyncio.create_task(calls())
            seen: list[float] = []
            while not caller.done():
                await asyncio.wait(
                    [caller, asyncio.create_task(progressed.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                progressed.clear()
                if caller.done():
                    break
                seen.append(value(await scrape(http, admin), "actr_calls_total", **ok))
            await caller
            after = await scrape(http, admin)

            # Scraped while the calls ran: the counter moved between scrapes, never back.
            assert len(seen) >= 2, seen
            assert seen == sorted(seen) and seen[0] < seen[-1], seen
            assert value(after, "actr_calls_total", **ok) - value(
                before, "actr_calls_total", **ok
            ) == float(CALLS)
            durations = value(after, "actr_handler_duration_seconds_count", route=SAY)
            assert durations - value(
                before, "actr_handler_duration_seconds_count", route=SAY
            ) == float(CALLS)
            assert value(after, "actr_peers", state="connected") >= 1
            assert ("actr_mailbox_messages", frozenset()) in after
            assert ("actr_mailbox_dead_letters", frozenset()) in after
            assert value(after, "actr_handlers_running") == 0

            # The signaling server goes: within the grace nothing is wrong; past it, 503.
            sig.kill()
            await asyncio.to_thread(echo.wait_for, DOWN, 30)
            status, body = await get(http, admin + "/readyz")
            assert (status, body) == (503, "signaling socket down\n")

            async def unhealthy() -> bool:
                status, body = await get(http, admin + "/healthz")
                return status == 503 and "signaling server out of reach" in body

            await wait_until(unhealthy, 15, "/healthz 503 past the signaling grace")
            down = await scrape(http, admin)
            assert value(down, "actr_signaling_connected") == 0
            assert value(down, "actr_signaling_down_seconds") >= 1.0

            # It comes back (on the same port): healthy again at once.
            sig, _ = await asyncio.to_thread(start_signaling, tmp_path, port=sig_port)
            procs.append(sig)
            await asyncio.to_thread(echo.wait_for, UP, 60)
            assert await get(http, admin + "/healthz") == (200, "ok\n")
            assert await get(http, admin + "/readyz") == (200, "ok\n")
            assert value(await scrape(http, admin), "actr_signaling_reconnects_total") >= 1
    finally:
        for p in procs:
            p.stop()

    # [logging] format = "json": every line one object; once registered, each names it.
    lines = [json.loads(line) for line in (tmp_path / "echo.log").read_text().splitlines()]
    started = [e for e in lines if e["event"] == "node_started"]
    assert started and started[0]["actor"] == echo_id
    assert all("actor" in e for e in lines[lines.index(started[0]) :])


async def test_healthz_503_while_the_mailbox_cannot_write(tmp_path: Path) -> None:
    """An in-process daemon (its mailbox's own connection is where the fault is made)
    behind a real signaling server, called by a client over WebRTC."""
    sig, url = await asyncio.to_thread(start_signaling, tmp_path)
    port = free_port()
    admin = f"http://127.0.0.1:{port}"
    cfg = NodeConfig(
        data_dir=tmp_path / "echo",
        signaling=SignalingConfig(url=url, realm_secret="dev-secret"),
        admin=AdminConfig(listen=f"127.0.0.1:{port}"),
    )
    cfg.transport.host_addresses = ["127.0.0.1"]
    node = Node(cfg, Echo())
    await node.start()
    assert node.ops is not None and node.mailbox is not None
    node.ops.mailbox_check_every = 0  # each /healthz looks again
    db = node.mailbox.connection
    big = SayRequest(text="x" * 200_000)  # more than the pages left on the "full disk"
    try:
        async with (
            aiohttp.ClientSession() as http,
            actr.connect(url, realm_secret="dev-secret", host_addresses=["127.0.0.1"]) as client,
        ):
            await client.call(ECHO, SAY, SayRequest(text="warm"), SayReply, timeout=15)
            assert await get(http, admin + "/healthz") == (200, "ok\n")

            ((pages,),) = await db.execute("PRAGMA page_count")
            await db.execute(f"PRAGMA max_page_count={pages + 2}")
            with pytest.raises(Unavailable, match="mailbox failed"):
                await client.call(ECHO, SAY, big, SayReply, timeout=15)
            status, body = await get(http, admin + "/healthz")
            assert status == 503 and body.startswith("mailbox full: room for "), body
            # Only the mailbox is wrong: still registered and connected.
            assert await get(http, admin + "/readyz") == (200, "ok\n")
            failed = await scrape(http, admin)
            assert (
                value(
                    failed, "actr_runtime_events_total", layer="node", event="refused_mailbox_error"
                )
                == 1
            )

            await db.execute("PRAGMA max_page_count=1073741823")
            assert await get(http, admin + "/healthz") == (200, "ok\n")
            r = await client.call(ECHO, SAY, big, SayReply, timeout=15)
            assert r.text == big.text
    finally:
        await node.stop()
        sig.stop()
