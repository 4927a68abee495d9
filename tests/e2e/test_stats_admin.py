"""F13 with real processes: a daemon answers actr.v1.Runtime.Stats only to callers its
[admin] stats_from names, within stats_per_sec, and a client node answers it to nobody."""

from __future__ import annotations

import pytest

from actr.errors import PermissionDenied, ResourceExhausted, TimedOut
from actr.identity import id_text
from actr.node import STATS_ROUTE
from tests.e2e.conftest import Cluster, runtime_stats

pytestmark = pytest.mark.e2e

WORKER = "acme:worker:1.0"


async def test_f13_stats_only_for_admins_rate_limited_never_from_a_client(
    cluster: Cluster,
) -> None:
    worker_id = await cluster.start_actor(
        "worker",
        "tests.e2e.actors:Worker",
        sections={
            "admin": {"stats_from": ["acme:ops:1.0"], "stats_per_sec": 0.01, "stats_burst": 3}
        },
    )
    async with cluster.client() as anyone, cluster.client(actr_type="acme:ops:1.0") as ops:
        # Admitted by the worker's ACL (same realm), but not an admin.
        with pytest.raises(PermissionDenied):
            await runtime_stats(anyone, WORKER)
        answered = [await runtime_stats(ops, worker_id) for _ in range(3)]
        assert [s["actor"] for s in answered] == [worker_id] * 3
        with pytest.raises(ResourceExhausted):
            await runtime_stats(ops, worker_id)
        # A client node hosts no actor: it takes no connection it did not ask for (F6),
        # so nobody reaches its Stats; the caller gives up at its deadline.
        with pytest.raises(TimedOut):
            await ops.call_raw(id_text(anyone.actr_id), STATS_ROUTE, b"", timeout=3)
        refused = anyone.transport.counters
        assert refused["offer_refused_acl"] + refused["assignment_refused_acl"] >= 1
