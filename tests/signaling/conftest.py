"""Fixtures: real signaling servers on free loopback ports, an HTTP client, a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from signaling_kit import REALMS, Clock

from signaling.app import create_app
from signaling.config import Config
from signaling.runner import RunningServer, start_server
from tests.services import start_redis, start_turnserver

MakeServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
def config() -> Config:
    return Config(host="127.0.0.1", port=0, realms=dict(REALMS))


@pytest.fixture
async def make_server(config: Config) -> AsyncIterator[MakeServer]:
    """``await make_server(clock=..., **config_overrides)``: another server, closed at the end."""
    running: list[RunningServer] = []

    async def make(
        clock: Clock | None = None, node: str | None = None, **overrides: Any
    ) -> RunningServer:
        cfg = replace(config, **overrides)
        kwargs: dict[str, Any] = {"node": node}
        if clock is not None:
            kwargs["clock"] = clock
        server = await start_server(cfg, create_app(cfg, **kwargs))
        running.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(running):
            await server.close()


@pytest.fixture
async def server(make_server: MakeServer) -> RunningServer:
    return await make_server()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def base(server: RunningServer) -> str:
    return server.url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real redis-server of its own on a free port, no persistence."""
    proc, url = start_redis()
    try:
        yield url
    finally:
        proc.stop()


TURN_SECRET = "turn-test-secret"


@pytest.fixture
def turn_port(tmp_path: Path) -> Iterator[int]:
    """A real coturn on a free loopback port, use-auth-secret with TURN_SECRET (AIS-4)."""
    proc, port = start_turnserver(tmp_path, TURN_SECRET)
    try:
        yield port
    finally:
        proc.stop()
