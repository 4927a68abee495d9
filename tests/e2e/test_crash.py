"""MBX-1..3 and ENV-6 under SIGKILL: 2,000 requests, the daemon killed at random points
and restarted; every request answered, every effect exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from actr.errors import ActrError
from actr.mailbox import Mailbox
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

LEDGER = "acme:ledger:1.0"
RECORD = "ledger.v1.Ledger.Record"
TOTAL = 2000
KILLS = 3


async def test_mbx3_sigkill_under_load_loses_nothing_and_runs_nothing_twice(
    cluster: Cluster,
) -> None:
    side = cluster.work / "side.txt"
    env = {"ACTR_TEST_SIDE_FILE": str(side)}
    await cluster.start_actor("ledger", "tests.e2e.actors:Ledger", env=env)
    rnd = random.Random()
    ids = [f"req-{i:05d}" for i in range(TOTAL)]
    answers: dict[str, str] = {}
    attempts: Counter[str] = Counter()
    # Kill after a random number of answers in each third of the run.
    kill_at = sorted(
        rnd.randrange(k * TOTAL // (KILLS + 1), (k + 1) * TOTAL // (KILLS + 1))
        for k in range(1, KILLS + 1)
    )
    next_kill = asyncio.Event()
    kills = 0

    async with cluster.client(
        consent_interval=0.5, consent_failures=3, connect_timeout=5
    ) as client:
        sem = asyncio.Semaphore(64)

        async def one(i: int, rid: str) -> None:
            async with sem:
                while True:
                    attempts[rid] += 1
                    try:
                        reply = await client.call(
                            LEDGER,
                            RECORD,
                            SayRequest(text=rid),
                            SayReply,
                            timeout=5,
                            request_id=rid,
                            signal=i % 4 == 0,
                        )
                        break
                    except ActrError:
                        # Down or restarting: the same request id again, until answered.
                        await asyncio.sleep(0.2)
                assert rid not in answers
                answers[rid] = reply.text
                if kills < KILLS and len(answers) >= kill_at[kills]:
                    next_kill.set()

        async def killer() -> None:
            nonlocal kills
            while kills < KILLS:
                await next_kill.wait()
                next_kill.clear()
                # A random moment inside the current stretch of work.
                await asyncio.sleep(rnd.uniform(0, 0.05))
                cluster.procs["ledger"].kill()
                kills += 1
                await cluster.start_actor("ledger", "tests.e2e.actors:Ledger", env=env)

        kill_task = asyncio.create_task(killer())
        await asyncio.wait_for(asyncio.gather(*(one(i, rid) for i, rid in enumerate(ids))), 240)
        await asyncio.wait_for(kill_task, 60)

    effects = Counter(side.read_text().split())
    twice = {rid: n for rid, n in effects.items() if n > 1}
    missing = set(ids) - set(effects)
    print(
        f"requests={TOTAL} answered={len(answers)} kills={kills} "
        f"retries={sum(attempts.values()) - TOTAL} effects={sum(effects.values())} "
        f"missing={len(missing)} duplicated={len(twice)}"
    )
    assert kills == KILLS
    # What the daemon's mailbox holds once it stopped (its last acks committed):
    # nothing left over, nothing dead-lettered.
    assert await asyncio.to_thread(cluster.procs["ledger"].stop) == 0
    box = await Mailbox.open(cluster.work / "ledger" / "mailbox.db", recover=False)
    stats = await box.stats()
    await box.close()
    assert (stats.queued, stats.in_flight, stats.dead_letters) == (0, 0, 0), stats
    assert answers == {rid: rid for rid in ids}
    assert not missing, f"lost: {sorted(missing)[:5]}"
    assert not twice, f"run twice: {list(twice.items())[:5]}"
    assert set(effects) == set(ids)
