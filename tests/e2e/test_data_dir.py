"""A running daemon's data directory, with real processes: a second daemon on it refuses
to start (issue 10), the mailbox tools still work beside the first, and its files are
owner-only (F10)."""

from __future__ import annotations

import stat

import pytest

from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster
from tests.e2e.test_cli import actr_cli

pytestmark = pytest.mark.e2e


async def test_second_daemon_on_one_data_dir_exits_naming_the_dir_and_holder(
    cluster: Cluster,
) -> None:
    echo_id = await cluster.start_actor("echo", "examples.echo:Echo")
    first = cluster.procs["echo"]
    data = cluster.work / "echo"

    second = await actr_cli("run", str(cluster.configs["echo"]))
    assert second.returncode == 1, second.stderr
    assert f"data directory {data} is in use by another daemon" in second.stderr
    assert f"pid {first.popen.pid}" in second.stderr
    assert "Traceback" not in second.stderr

    # The tools read (and change) the running daemon's mailbox without its lock.
    stats = await actr_cli("mailbox", "stats", str(data), "--json")
    assert stats.returncode == 0, stats.stderr
    listed = await actr_cli("dlq", "list", str(cluster.configs["echo"]))
    assert listed.returncode == 0, listed.stderr

    # The first daemon kept its identity and serves on.
    assert first.popen.poll() is None
    async with cluster.client() as client:
        reply = await client.call(
            "acme:echo:1.0", "echo.v1.Echo.Say", SayRequest(text="still"), SayReply, timeout=10
        )
    assert reply.served_by == echo_id

    # F10: with the test's umask (usually 022) the daemon's files are owner-only still.
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.iterdir()] if p.is_file()}
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert {"mailbox.db", "mailbox.db-wal", "mailbox.db-shm", "identity.pb"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes

    # Once the first daemon stopped, the directory is free again.
    assert first.stop() == 0
    await cluster.start_actor("echo", "examples.echo:Echo")
    assert cluster.ids["echo"] == echo_id  # same ActrId, resumed from identity.pb
