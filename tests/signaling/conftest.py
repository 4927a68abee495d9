"""Fixtures: a real signaling server on a free loopback port, and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from signaling_kit import REALMS

from signaling.app import create_app
from signaling.config import Config
from signaling.runner import RunningServer, start_server


@pytest.fixture
def config() -> Config:
    return Config(host="127.0.0.1", port=0, realms=dict(REALMS))


@pytest.fixture
async def server(config: Config) -> AsyncIterator[RunningServer]:
    running = await start_server(config, create_app(config))
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def base(server: RunningServer) -> str:
    return server.url
