"""A deployment per test: a signaling server and actor daemons as real processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import actr
from actr.node import CLIENT_TYPE, STATS_ROUTE
from examples.launch import Proc, start_actor, start_signaling, write_actor_config


class Cluster:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.url = ""
        self.procs: dict[str, Proc] = {}
        self.configs: dict[str, Path] = {}
        self.ids: dict[str, str] = {}

    async def start_signaling(self, extra: str = "") -> None:
        """Starts (or restarts, with new settings) the signaling server."""
        if "signaling" in self.procs:
            await asyncio.to_thread(self.procs["signaling"].stop)
        proc, self.url = await asyncio.to_thread(start_signaling, self.work, extra=extra)
        self.procs["signaling"] = proc

    async def start_actor(
        self,
        name: str,
        actor_class: str,
        extra: str = "",
        env: dict[str, str] | None = None,
        sections: dict[str, dict[str, object]] | None = None,
    ) -> str:
        if name not in self.configs:
            self.configs[name] = write_actor_config(
                self.work, name, actor_class, self.url, extra=extra, sections=sections
            )
        proc, actor_id = await asyncio.to_thread(
            start_actor, self.work, name, self.configs[name], env
        )
        self.procs[name] = proc
        self.ids[name] = actor_id
        return actor_id

    def client(self, **kwargs: Any) -> actr.Node:
        return actr.connect(
            self.url, realm_secret="dev-secret", host_addresses=["127.0.0.1"], **kwargs
        )

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()


# Daemon config that lets the test's client (of the default type) read Stats (F13).
STATS_FOR_CLIENT: dict[str, dict[str, object]] = {"admin": {"stats_from": [CLIENT_TYPE]}}


async def runtime_stats(client: actr.Node, target: str) -> dict[str, Any]:
    raw = await client.call_raw(target, STATS_ROUTE, b"", timeout=10)
    stats: dict[str, Any] = json.loads(raw)
    return stats


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    await c.start_signaling()
    try:
        yield c
    finally:
        await asyncio.to_thread(c.stop_all)
