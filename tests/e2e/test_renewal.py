"""AIS-3 on the runtime side: a daemon renews its credential before it expires, by
itself, and so stays registered and reachable past the first credential's life."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

LIFETIME = 3  # seconds: the server closes a socket whose credential expired (1008)


async def test_ais3_daemon_renews_before_expiry_and_stays_reachable(cluster: Cluster) -> None:
    await cluster.start_signaling(extra=f"credential_lifetime_secs = {LIFETIME}\n")
    echo_id = await cluster.start_actor("echo", "examples.echo:Echo")
    log = cluster.work / "echo.log"
    # Two renewals, each at two thirds of the credential's remaining life.
    renewed = re.compile(r"credential_renewed actor=" + re.escape(echo_id))
    await asyncio.to_thread(_wait_for_line, log, renewed, 2, LIFETIME * 3)
    async with cluster.client() as client:
        r = await client.call(
            "acme:echo:1.0", "echo.v1.Echo.Say", SayRequest(text="still"), SayReply, timeout=10
        )
    assert (r.text, r.served_by) == ("still", echo_id)
    text = log.read_text()
    assert "identity_replaced" not in text and "signaling_down" not in text


def _wait_for_line(path: Path, pattern: re.Pattern[str], count: int, timeout: float) -> None:
    """The daemon's only sign is its log file: wait, bounded, for ``count`` matches."""
    deadline = time.monotonic() + timeout
    while len(pattern.findall(path.read_text())) < count:
        assert time.monotonic() < deadline, f"no {pattern.pattern!r} within {timeout}s"
        time.sleep(0.1)
