"""Fixtures: real signaling servers on free loopback ports, an HTTP client, a real redis-server."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from signaling_kit import REALMS, Clock, free_port, need_binary

from signaling.app import create_app
from signaling.config import Config
from signaling.runner import RunningServer, start_server

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


def _end(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real redis-server of its own on a free port, no persistence."""
    binary = need_binary("redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "Ready to accept connections" in line:
                break
        else:
            raise RuntimeError("redis-server exited: " + "".join(seen[-5:]))
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _end(proc)


TURN_SECRET = "turn-test-secret"


@pytest.fixture
def turn_port(tmp_path: Path) -> Iterator[int]:
    """A real coturn on a free loopback port, use-auth-secret with TURN_SECRET (AIS-4)."""
    binary = need_binary("turnserver")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "-n",  # no config file
            "--listening-ip=127.0.0.1",
            f"--listening-port={port}",
            "--relay-ip=127.0.0.1",
            "--allow-loopback-peers",
            "--use-auth-secret",
            f"--static-auth-secret={TURN_SECRET}",
            "--realm=actr",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-software-attribute",
            f"--userdb={tmp_path / 'turndb'}",
            f"--pidfile={tmp_path / 'turnserver.pid'}",
            "--log-file=stdout",
            "--simple-log",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "Total General servers" in line:
                break
        else:
            raise RuntimeError("turnserver exited: " + "".join(seen[-5:]))
        # Keep draining its log so a full pipe never stalls it.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield port
    finally:
        _end(proc)
