"""Calls under failure (ENV-3, DC-6, ACL-1/2, ENV-7), with real daemons in real processes."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from actr.errors import NotFound, TimedOut, Unavailable
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import STATS_FOR_CLIENT, Cluster, runtime_stats
from tests.e2e.pending_probe import PendingProbe

pytestmark = pytest.mark.e2e

WORKER = "acme:worker:1.0"
WORK = "worker.v1.Worker.Work"
RAN = "worker.v1.Worker.Ran"


async def test_env3_caller_deadline_fires_timed_out_while_callee_sleeps(cluster: Cluster) -> None:
    await cluster.start_actor("worker", "tests.e2e.actors:Worker")
    async with cluster.client() as client:
        start = time.monotonic()
        with pytest.raises(TimedOut):
            await client.call(WORKER, WORK, SayRequest(text="slow:3"), SayReply, timeout=1.0)
        elapsed = time.monotonic() - start
        assert 0.9 <= elapsed < 2.0
        assert len(client.pending) == 0


async def test_env3_request_expired_in_mailbox_is_answered_timed_out_not_run(
    cluster: Cluster,
) -> None:
    await cluster.start_actor("worker", "tests.e2e.actors:Worker", sections=STATS_FOR_CLIENT)
    async with cluster.client() as client:
        await client.call(WORKER, WORK, SayRequest(text="warm:0"), SayReply)
        # As with a peer that does not speak X-CALL-1 (the Rust actr): the cancelled
        # call is not told to the worker, which answers late.
        peer = client.calls.ready_peer(WORKER)
        assert peer is not None
        peer.features = frozenset()
        probe = PendingProbe(client)
        first = asyncio.create_task(
            client.call(WORKER, WORK, SayRequest(text="first:1.5"), SayReply, timeout=10)
        )
        await probe.wait_for(1)  # the connection is up: "first" is sent as it is registered
        # "late" waits behind "first" (one handler at a time) longer than its deadline.
        with pytest.raises(TimedOut):
            await client.call(WORKER, WORK, SayRequest(text="late:0"), SayReply, timeout=0.5)
        assert (await first).text == "first"
        ran = await client.call(WORKER, RAN, SayRequest(), SayReply)
        assert ran.text.split("\n") == ["warm", "first"]
        stats = await runtime_stats(client, WORKER)
        assert stats["node"]["expired_in_mailbox"] == 1
        # Its TIMED_OUT answer came after the caller gave up: dropped and counted.
        assert client.pending.counters["unknown_response"] == 1


async def test_dc6_killed_callee_fails_pending_calls_fast_then_reconnects(
    cluster: Cluster,
) -> None:
    worker_id = await cluster.start_actor("worker", "tests.e2e.actors:Worker")
    async with cluster.client(consent_interval=0.5, consent_failures=3) as client:
        await client.call(WORKER, WORK, SayRequest(text="warm:0"), SayReply)
        # As with a peer that does not speak X-CALL-1 (the Rust actr): the cancelled
        # call is not told to the worker, which answers late.
        peer = client.calls.ready_peer(WORKER)
        assert peer is not None
        peer.features = frozenset()
        probe = PendingProbe(client)
        calls = [
            asyncio.create_task(
                client.call(WORKER, WORK, SayRequest(text=f"p{i}:2"), SayReply, timeout=60)
            )
            for i in range(3)
        ]
        await probe.wait_for(3)  # the connection is up: each is sent as it is registered
        assert len(client.pending) == 3
        start = time.monotonic()
        cluster.procs["worker"].kill()
        results = await asyncio.gather(*calls, return_exceptions=True)
        elapsed = time.monotonic() - start
        assert all(isinstance(r, Unavailable) for r in results), results
        assert elapsed < 15, f"pending calls failed only after {elapsed:.1f}s (deadline 60s)"

        # The daemon comes back with its ActrId (resumed from its data dir).
        again = await cluster.start_actor("worker", "tests.e2e.actors:Worker")
        assert again == worker_id
        reply = await client.call(WORKER, WORK, SayRequest(text="after:0"), SayReply, timeout=30)
        assert reply.text == "after"
        assert client.transport.counters["peers_opened"] >= 2


async def test_acl1_refused_caller_is_refused_and_handler_never_runs(
    cluster: Cluster,
) -> None:
    guarded_id = await cluster.start_actor("guarded", "tests.e2e.actors:Guarded")
    async with (
        cluster.client(actr_type="acme:trusted:1.0") as trusted,
        cluster.client(actr_type="acme:stranger:1.0") as stranger,
    ):
        # The server refuses the connection (ACL-2); F12: refused reads as absent.
        with pytest.raises(NotFound):
            await stranger.call(guarded_id, "guarded.v1.Guarded.Touch", SayRequest(), SayReply)
        reply = await trusted.call(guarded_id, "guarded.v1.Guarded.Touch", SayRequest(), SayReply)
        # The stranger's call never ran the handler: the trusted call is the first.
        assert reply.text == "touched 1"


async def test_env7_caller_and_handler_spans_share_one_trace(cluster: Cluster) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    await cluster.start_actor(
        "echo", "examples.echo:Echo", sections={"telemetry": {"exporter": "console"}}
    )
    async with cluster.client() as client:
        await client.call("acme:echo:1.0", "echo.v1.Echo.Say", SayRequest(text="t"), SayReply)
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("actr.call")]
    assert spans, "no caller span recorded"
    ctx = spans[-1].get_span_context()
    assert ctx is not None
    trace_hex = f"0x{ctx.trace_id:032x}"
    proc = cluster.procs["echo"]
    # The daemon's console exporter prints its spans; the handler's carries our trace id.
    await asyncio.to_thread(proc.wait_for, re.compile(re.escape(trace_hex)), 10)
    text = "\n".join(proc.output)
    assert '"name": "actr.handle echo.v1.Echo.Say"' in text
    assert f'"parent_id": "0x{ctx.span_id:016x}"' in text


async def test_sigterm_during_load_leaves_no_accepted_request_unanswered_or_unqueued(
    cluster: Cluster,
) -> None:
    side = cluster.work / "side.txt"
    env = {"ACTR_TEST_SIDE_FILE": str(side)}
    await cluster.start_actor("worker", "tests.e2e.actors:Worker", env=env)
    ids = [f"r{i:04d}" for i in range(300)]
    answered: dict[str, str] = {}
    fifty = asyncio.Event()
    async with cluster.client() as client:
        sem = asyncio.Semaphore(64)

        async def one(label: str) -> None:
            async with sem:
                try:
                    r = await client.call(
                        WORKER,
                        WORK,
                        SayRequest(text=f"{label}:0.01"),
                        SayReply,
                        timeout=20,
                        request_id=label,
                    )
                    answered[label] = r.text
                    if len(answered) >= 50:
                        fifty.set()
                except (Unavailable, TimedOut, NotFound):
                    pass  # refused while stopping, connection gone, or actor gone

        load = asyncio.gather(*(one(i) for i in ids))
        await asyncio.wait_for(fifty.wait(), 30)
        proc = cluster.procs["worker"]
        proc.popen.send_signal(signal.SIGTERM)
        await load
        code = await asyncio.to_thread(proc.popen.wait, 30)
        assert code == 0, "the daemon did not exit cleanly on SIGTERM"

        # Back up: everything not answered is retried with the same request id; what
        # was accepted before the stop runs from the queue or is answered from the store.
        await cluster.start_actor("worker", "tests.e2e.actors:Worker", env=env)
        for label in ids:
            if label not in answered:
                r = await client.call(
                    WORKER,
                    WORK,
                    SayRequest(text=f"{label}:0"),
                    SayReply,
                    timeout=30,
                    request_id=label,
                )
                answered[label] = r.text
    assert answered == {label: label for label in ids}
    runs = side.read_text().split()
    assert sorted(runs) == sorted(ids), "a request ran twice or never"


async def test_cancelled_call_leaves_the_pending_table_and_its_late_answer_is_counted(
    cluster: Cluster,
) -> None:
    await cluster.start_actor("worker", "tests.e2e.actors:Worker")
    async with cluster.client() as client:
        await client.call(WORKER, WORK, SayRequest(text="warm:0"), SayReply)
        # As with a peer that does not speak X-CALL-1 (the Rust actr): the cancelled
        # call is not told to the worker, which answers late.
        peer = client.calls.ready_peer(WORKER)
        assert peer is not None
        peer.features = frozenset()
        probe = PendingProbe(client)
        task = asyncio.create_task(
            client.call(WORKER, WORK, SayRequest(text="slow:0.5"), SayReply, timeout=10)
        )
        await probe.wait_for(1)  # the connection is up: "slow" is sent as it is registered
        assert len(client.pending) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(client.pending) == 0
        # The worker still answers "slow" (it ran); the answer finds no caller.
        ran = await client.call(WORKER, RAN, SayRequest(), SayReply)
        assert ran.text.split("\n") == ["warm", "slow"]
        assert client.pending.counters["unknown_response"] == 1
