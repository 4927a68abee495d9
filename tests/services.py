"""The real services some tests run (redis-server, coturn), each its own instance on a
free loopback port, started with examples.launch.Proc and waited for by its ready line."""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from examples.launch import Proc


def need_binary(name: str) -> str:
    """The binary's path; a skip (or, with ACTR_REQUIRE_SERVICES=1, a failure) without it."""
    path = shutil.which(name)
    if path is None:
        why = f"{name} is not installed (scripts/services.sh installs it)"
        if os.environ.get("ACTR_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{why}, and ACTR_REQUIRE_SERVICES=1")
        pytest.skip(why)
    return path


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis() -> tuple[Proc, str]:
    """A redis-server without persistence; returns it and its redis:// url."""
    port = free_port()
    proc = Proc(
        "redis-server",
        [
            need_binary("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
    proc.wait_for(re.compile("Ready to accept connections"), 20)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_turnserver(workdir: Path, secret: str) -> tuple[Proc, int]:
    """coturn with use-auth-secret (AIS-4), relaying on loopback; returns it and its port."""
    port = free_port(socket.SOCK_DGRAM)
    proc = Proc(
        "turnserver",
        [
            need_binary("turnserver"),
            "-n",  # no config file
            "--listening-ip=127.0.0.1",
            f"--listening-port={port}",
            "--relay-ip=127.0.0.1",
            "--allow-loopback-peers",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            "--realm=actr",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-software-attribute",
            # Its own database and pidfile, not the system's.
            f"--userdb={workdir / 'turndb'}",
            f"--pidfile={workdir / 'turnserver.pid'}",
            "--log-file=stdout",
            "--simple-log",
        ],
    )
    proc.wait_for(re.compile("Total General servers"), 20)
    return proc, port
