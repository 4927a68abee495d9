"""signaling/limits.py on its own, time passed in: token bucket, flood guard, attempt
limiter (SIG-9). The server's limits in a process: test_signaling_limits.py."""

from __future__ import annotations

from signaling.limits import AttemptLimiter, FloodGuard, TokenBucket, Verdict


def test_sig9_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.05)
    assert bucket.take(0.1)
    assert TokenBucket(rate=0, burst=0, now=0.0).take(0.0)  # 0: no limit


def test_sig9_flood_guard_refuses_then_closes_a_sustained_flood() -> None:
    guard = FloodGuard(rate=10, burst=5, tolerance=20, now=0.0)
    verdicts = [guard.check(0.0) for _ in range(26)]
    assert verdicts[:5] == [Verdict.ADMIT] * 5
    assert verdicts[5:25] == [Verdict.REFUSE] * 20
    assert verdicts[25] is Verdict.CLOSE
    # A burst that stays under the tolerance only costs refusals.
    calm = FloodGuard(rate=10, burst=5, tolerance=20, now=0.0)
    assert [calm.check(0.0) for _ in range(10)].count(Verdict.CLOSE) == 0
    assert calm.check(1.0) is Verdict.ADMIT


def test_sig9_attempt_limiter_per_address_and_bounded() -> None:
    limiter = AttemptLimiter(rate=1, burst=2, max_tracked=3)
    assert [limiter.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", 0.0)  # another address has its own bucket
    for addr in ("c", "d", "e"):
        limiter.allow(addr, 0.0)
    assert len(limiter) == 3
    assert limiter.allow("a", 0.0)  # forgotten, so full again
