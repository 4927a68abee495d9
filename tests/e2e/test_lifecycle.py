"""Lifecycle hooks in a real daemon: start, ready, peer up, error, stop (on SIGTERM)."""

from __future__ import annotations

import asyncio

import pytest

from actr.errors import ApplicationError
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e


async def test_lifecycle_hooks_run_in_order(cluster: Cluster) -> None:
    side = cluster.work / "hooks.txt"
    await cluster.start_actor(
        "hooked", "tests.e2e.actors:Hooked", env={"ACTR_TEST_SIDE_FILE": str(side)}
    )
    async with cluster.client() as client:
        with pytest.raises(ApplicationError, match="KeyError"):
            await client.call(
                "acme:hooked:1.0",
                "hooked.v1.Hooked.Fail",
                SayRequest(),
                SayReply,
                request_id="req-1",
            )
        me = client.stats()["actor"]
    assert await asyncio.to_thread(cluster.procs["hooked"].stop) == 0
    lines = side.read_text().splitlines()
    assert lines[:2] == ["start", "ready"]
    assert f"peer up {me}" in lines
    assert "error KeyError req-1" in lines
    assert lines[-1] == "stop"
