"""The node's one timer: it fires the cores' expire(now) at their earliest deadline."""

from __future__ import annotations

import asyncio

from actr.pending import PendingTable
from actr.timer import Timer


async def test_timer_fires_each_deadline_in_order_and_rearms_for_earlier_ones() -> None:
    loop = asyncio.get_running_loop()
    table: PendingTable[None] = PendingTable()
    fired: list[tuple[str, float]] = []
    both = asyncio.Event()

    def expire(now: float) -> None:
        fired.extend((e.request_id, now) for e in table.expire(now))
        if len(fired) == 2:
            both.set()

    timer = Timer()
    timer.watch(table.next_deadline, expire)
    start = loop.time()
    table.add("late", "p", start + 0.2, None)
    timer.poke(start + 0.2)
    table.add("early", "p", start + 0.05, None)
    timer.poke(start + 0.05)  # earlier: re-armed
    table.add("later", "p", start + 5.0, None)
    timer.poke(start + 5.0)  # later than armed: nothing to do
    await asyncio.wait_for(both.wait(), 5)
    assert [name for name, _ in fired] == ["early", "late"]
    assert fired[0][1] >= start + 0.05 and fired[1][1] >= start + 0.2
    assert table.next_deadline() == start + 5.0
    timer.close()
    timer.poke(start)  # closed: never fires again
    assert len(table) == 1


async def test_a_deadline_removed_before_it_fires_expires_nothing() -> None:
    loop = asyncio.get_running_loop()
    table: PendingTable[None] = PendingTable()
    calls: list[float] = []
    fired = asyncio.Event()

    def expire(now: float) -> None:
        calls.append(now)
        table.expire(now)
        fired.set()

    timer = Timer()
    timer.watch(table.next_deadline, expire)
    table.add("answered", "p", loop.time() + 0.05, None)
    timer.poke(loop.time() + 0.05)
    table.remove("answered")  # the answer came first
    table.add("open", "p", loop.time() + 0.1, None)
    timer.poke(loop.time() + 0.1)
    await asyncio.wait_for(fired.wait(), 5)
    # Woken for "answered", the timer found nothing due and re-armed for "open".
    assert len(calls) == 1 and len(table) == 0
    timer.close()
