"""The signaling server's sans-IO core loads nothing that does I/O (STYLE.md).

Checked at run time, in a fresh interpreter: importing the core modules (the
dispatcher and everything it delegates to, the registry, events, limits) must
load neither asyncio, aiohttp nor redis, nor any signaling module outside the
core (those read files, hold sockets or talk to Redis). The import graph's
cycles and sizes are checked for the whole project in tests/test_architecture.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CORE = (
    "signaling.actions",
    "signaling.actr_to_server",
    "signaling.config_limits",
    "signaling.config_values",
    "signaling.credentials",
    "signaling.dispatcher",
    "signaling.envelopes",
    "signaling.events",
    "signaling.inbound",
    "signaling.limits",
    "signaling.presence",
    "signaling.presence_index",
    "signaling.record",
    "signaling.registry",
    "signaling.relay",
    "signaling.stats",
    "signaling.subscriptions",
    "signaling.turn",
)
IO = ("asyncio", "aiohttp", "redis", "uvloop", "aiortc", "aioice", "aiosqlite", "sqlite3")
# What the server shares with the runtime: leaves that load no runtime.
SHARED = ("actr", "actr.acl", "actr.errors", "actr.identity", "actr.protocol", "actr.wire")


def test_the_core_loads_no_io_and_no_server_module() -> None:
    probe = (
        "import importlib, json, sys\n"
        f"for name in {CORE!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(out.stdout))
    assert not {m for m in loaded if m.split(".")[0] in IO}
    allowed = {"signaling", *CORE, *SHARED}
    outside = {
        m
        for m in loaded
        if m.split(".")[0] in ("signaling", "actr")
        and m not in allowed
        and not m.startswith("actr.protocol.")
    }
    assert not outside, f"the core loads modules outside it: {sorted(outside)}"
