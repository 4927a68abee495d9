"""The pending table (ENV-2, DC-6), time passed in."""

from __future__ import annotations

import pytest

from actr.errors import InvalidArgument, ResourceExhausted
from actr.pending import PendingTable


def test_env2_answer_resolves_only_from_the_asked_peer() -> None:
    t: PendingTable[str] = PendingTable()
    t.add("r1", "peer-a", deadline=10.0, waiter="w1")
    assert t.resolve("r1", "peer-b") is None
    assert t.counters["response_from_wrong_peer"] == 1
    entry = t.resolve("r1", "peer-a")
    assert entry is not None and entry.waiter == "w1"
    assert t.resolve("r1", "peer-a") is None  # a duplicate answer
    assert t.counters["unknown_response"] == 1


def test_cap_and_duplicate_ids() -> None:
    t: PendingTable[int] = PendingTable(max_pending=2)
    t.add("a", "p", 1.0, 1)
    with pytest.raises(InvalidArgument):
        t.add("a", "p", 1.0, 1)
    t.add("b", "p", 1.0, 2)
    with pytest.raises(ResourceExhausted):
        t.add("c", "p", 1.0, 3)
    assert t.counters["rejected_full"] == 1


def test_dc6_failing_a_peer_takes_only_its_calls() -> None:
    t: PendingTable[int] = PendingTable()
    for i, peer in enumerate(["a", "b", "a"]):
        t.add(f"r{i}", peer, 100.0, i)
    assert sorted(e.request_id for e in t.fail_peer("a")) == ["r0", "r2"]
    assert len(t) == 1


def test_deadlines_expire_in_order_of_time_passed_in() -> None:
    t: PendingTable[int] = PendingTable()
    t.add("early", "p", 5.0, 0)
    t.add("late", "p", 9.0, 1)
    assert t.next_deadline() == 5.0
    assert [e.request_id for e in t.expire(6.0)] == ["early"]
    assert t.next_deadline() == 9.0
    assert t.remove("late") is not None and len(t) == 0
