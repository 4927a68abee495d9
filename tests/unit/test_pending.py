"""The pending-call table: ENV-2 (responses match pending request ids), DC-6 (a failed
peer fails its calls at once), deadlines and the cap; time is passed in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.errors import ErrorCode, InvalidArgument, ResourceExhausted
from actr.pending import PendingTable


def test_env2_response_resolves_the_matching_request_once() -> None:
    t: PendingTable[str] = PendingTable()
    t.add("r1", "peerA", 10.0, "w1")
    t.add("r2", "peerA", 10.0, "w2")
    entry = t.resolve("r1", "peerA")
    assert entry is not None and entry.waiter == "w1" and entry.request_id == "r1"
    assert len(t) == 1
    # A duplicate of the same response is unknown now.
    assert t.resolve("r1", "peerA") is None
    assert t.counters["unknown_response"] == 1


def test_env2_unknown_or_forged_response_is_counted_not_raised() -> None:
    t: PendingTable[str] = PendingTable()
    assert t.resolve("never-sent", "peerA") is None
    assert t.counters["unknown_response"] == 1
    assert len(t) == 0


def test_env2_dc2_response_from_another_peer_does_not_resolve() -> None:
    t: PendingTable[str] = PendingTable()
    t.add("r1", "peerA", 10.0, "w1")
    assert t.resolve("r1", "peerB") is None
    assert t.counters["response_from_wrong_peer"] == 1
    assert len(t) == 1
    entry = t.resolve("r1", "peerA")  # the right peer still can
    assert entry is not None and entry.waiter == "w1"


def test_env2_late_response_after_remove_counts_as_unknown() -> None:
    t: PendingTable[str] = PendingTable()
    t.add("r1", "peerA", 10.0, "w1")
    removed = t.remove("r1")
    assert removed is not None and removed.waiter == "w1"
    assert t.remove("r1") is None
    assert t.resolve("r1", "peerA") is None
    assert t.counters["unknown_response"] == 1


def test_env6_request_id_already_pending_is_refused() -> None:
    t: PendingTable[str] = PendingTable()
    t.add("r1", "peerA", 10.0, "w1")
    with pytest.raises(InvalidArgument) as info:
        t.add("r1", "peerB", 20.0, "w2")
    assert info.value.code == ErrorCode.INVALID_ARGUMENT
    assert t.resolve("r1", "peerA").waiter == "w1"  # type: ignore[union-attr]


def test_dc6_failed_peer_fails_all_its_calls_at_once() -> None:
    t: PendingTable[str] = PendingTable()
    t.add("a1", "peerA", 100.0, "wa1")
    t.add("b1", "peerB", 100.0, "wb1")
    t.add("a2", "peerA", 200.0, "wa2")
    gone = t.fail_peer("peerA")
    assert sorted(e.request_id for e in gone) == ["a1", "a2"]
    assert len(t) == 1
    assert t.fail_peer("peerA") == []
    assert t.resolve("a1", "peerA") is None
    assert t.resolve("b1", "peerB") is not None


def test_fail_peer_all_takes_everything() -> None:
    t: PendingTable[int] = PendingTable()
    for i in range(5):
        t.add(f"r{i}", f"p{i % 2}", 1.0, i)
    assert sorted(e.waiter for e in t.fail_peer_all()) == [0, 1, 2, 3, 4]
    assert len(t) == 0


def test_deadlines_expire_at_or_after_the_deadline() -> None:
    t: PendingTable[str] = PendingTable()
    t.add("r1", "p", 5.0, "w1")
    t.add("r2", "p", 7.0, "w2")
    assert t.next_deadline() == 5.0
    assert t.expire(4.999) == []
    assert [e.request_id for e in t.expire(5.0)] == ["r1"]
    assert t.counters["expired"] == 1
    assert t.next_deadline() == 7.0
    assert [e.request_id for e in t.expire(100.0)] == ["r2"]
    assert t.next_deadline() is None
    assert t.counters["expired"] == 2


def test_cap_refuses_with_resource_exhausted_and_frees_on_resolve() -> None:
    t: PendingTable[str] = PendingTable(max_pending=2)
    t.add("r1", "p", 1.0, "w")
    t.add("r2", "p", 1.0, "w")
    with pytest.raises(ResourceExhausted) as info:
        t.add("r3", "p", 1.0, "w")
    assert info.value.code == ErrorCode.RESOURCE_EXHAUSTED
    assert t.counters["rejected_full"] == 1
    assert len(t) == 2
    t.resolve("r1", "p")
    t.add("r3", "p", 1.0, "w")
    assert len(t) == 2


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 9), st.integers(0, 2), st.integers(0, 20)),
        st.tuples(st.just("resolve"), st.integers(0, 9), st.integers(0, 2)),
        st.tuples(st.just("remove"), st.integers(0, 9)),
        st.tuples(st.just("fail_peer"), st.integers(0, 2)),
        st.tuples(st.just("expire"), st.integers(0, 20)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_table_agrees_with_a_model(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """Any sequence of operations: the table behaves like a dict of (peer, deadline),
    never holds more than max_pending, and never raises except on add."""
    t: PendingTable[int] = PendingTable(max_pending=5)
    model: dict[str, tuple[str, float]] = {}
    for op in ops:
        kind = op[0]
        if kind == "add":
            rid, peer, deadline = f"r{op[1]}", f"p{op[2]}", float(op[3])
            if len(model) >= 5:
                with pytest.raises(ResourceExhausted):
                    t.add(rid, peer, deadline, 0)
            elif rid in model:
                with pytest.raises(InvalidArgument):
                    t.add(rid, peer, deadline, 0)
            else:
                t.add(rid, peer, deadline, 0)
                model[rid] = (peer, deadline)
        elif kind == "resolve":
            rid, peer = f"r{op[1]}", f"p{op[2]}"
            got = t.resolve(rid, peer)
            if rid in model and model[rid][0] == peer:
                assert got is not None and got.request_id == rid
                del model[rid]
            else:
                assert got is None
        elif kind == "remove":
            rid = f"r{op[1]}"
            assert (t.remove(rid) is not None) == (model.pop(rid, None) is not None)
        elif kind == "fail_peer":
            peer = f"p{op[1]}"
            gone = {e.request_id for e in t.fail_peer(peer)}
            assert gone == {r for r, (p, _) in model.items() if p == peer}
            model = {r: v for r, v in model.items() if r not in gone}
        else:
            now = float(op[1])
            gone = {e.request_id for e in t.expire(now)}
            assert gone == {r for r, (_, d) in model.items() if d <= now}
            model = {r: v for r, v in model.items() if r not in gone}
        assert len(t) == len(model) <= 5
        assert t.next_deadline() == min((d for _, d in model.values()), default=None)
