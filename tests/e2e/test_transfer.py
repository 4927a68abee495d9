"""Large transfers (actr/transfer.py) between processes: a file sent as a stream
with its size and SHA-256 arrives whole; when the receiver is killed midway and
comes back, the sender resumes from what the receiver holds, not from 0."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actr.transfer import file_source, send_file
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

SIZE = 24 * 1024 * 1024
FAST_CONSENT = {"webrtc": {"consent_interval": 0.5, "consent_failures": 3}}


def _write_random(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


async def test_send_file_arrives_whole(cluster: Cluster, tmp_path: Path) -> None:
    dest = tmp_path / "received"
    target = await cluster.start_actor(
        "files", "tests.e2e.stream_actors:Files", env={"ACTR_TEST_TRANSFER_DIR": str(dest)}
    )
    src = tmp_path / "report.bin"
    digest = await asyncio.to_thread(_write_random, src, 5 * 1024 * 1024 + 17)
    async with cluster.client() as client:
        done = await send_file(client, target, src)
        again = await send_file(client, target, src)  # committed already: nothing sent
    assert (done.size, done.sha256, done.name) == (src.stat().st_size, digest, "report.bin")
    assert again.sha256 == digest
    assert (dest / "report.bin").read_bytes() == src.read_bytes()


async def test_send_file_resumes_after_the_receiver_restarts(
    cluster: Cluster, tmp_path: Path
) -> None:
    dest = tmp_path / "received"
    env = {"ACTR_TEST_TRANSFER_DIR": str(dest)}
    target = await cluster.start_actor(
        "files", "tests.e2e.stream_actors:Files", env=env, sections=FAST_CONSENT
    )
    src = tmp_path / "big.bin"
    digest = await asyncio.to_thread(_write_random, src, SIZE)
    starts: list[int] = []
    restarted: list[asyncio.Task[str]] = []
    read = file_source(src)

    async def source(offset: int) -> AsyncIterator[bytes]:
        starts.append(offset)
        seen = offset
        async for block in read(offset):
            yield block
            seen += len(block)
            if not restarted and seen >= SIZE // 3:
                # The receiver dies a third of the way in, and comes back.
                cluster.procs["files"].kill()
                restarted.append(asyncio.create_task(cluster.start_actor("files", "", env=env)))

    async with cluster.client(consent_interval=0.5, consent_failures=3) as client:
        done = await asyncio.wait_for(
            send_file(client, target, source, transfer_id="big1", name="big.bin", attempts=8),
            120,
        )
        assert await restarted[0] == target  # the same ActrId, from its data dir
    assert (done.size, done.sha256) == (SIZE, digest)
    assert hashlib.sha256((dest / "big.bin").read_bytes()).hexdigest() == digest
    resumed = [s for s in starts if s > 0]
    assert resumed, starts  # a Put went on from the receiver's offset, not from 0
    assert resumed[0] >= SIZE // 8
