"""X-STR-3/4: a grant or reset that crosses its stream's end on the wire is late,
not forged: counted apart (``late_control``), never as hostile input."""

from __future__ import annotations

from actr.stream_core import StreamCore
from actr.stream_credit import grant_frame, reset_frame


def test_a_grant_after_the_stream_ended_is_late_not_unknown() -> None:
    core = StreamCore()
    out = core.out.open("peer", "s1", controls=True, window=1 << 20, latency_first=False)
    core.out.close(out)  # the sender ended it
    core.receive("peer", grant_frame("s1", 2 << 20), 1.0)
    core.receive("peer", reset_frame("s1", 10102, "closed", from_receiver=True), 1.0)
    assert core.drops["late_control"] == 2
    assert core.drops["grant_unknown_stream"] == core.drops["forged_reset"] == 0


def test_a_grant_for_a_stream_never_sent_is_still_unknown() -> None:
    core = StreamCore()
    core.receive("peer", grant_frame("never", 2 << 20), 1.0)
    core.receive("other", grant_frame("s1", 1), 1.0)
    assert core.drops["grant_unknown_stream"] == 2
    assert core.drops["late_control"] == 0
