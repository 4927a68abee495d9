"""Reading a config, or using a wire constant or a sans-IO core, loads no WebRTC,
HTTP or SQLite stack: each import runs in a fresh interpreter, which then lists
the heavy modules it holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
HEAVY = ("aiortc", "aioice", "aiohttp", "aiosqlite")


def heavy_after(statement: str) -> list[str]:
    probe = f"import sys\n{statement}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize(
    "statement",
    [
        "import actr.config",
        "from actr.transport import TransportConfig",
        "import actr.wire",
        "import actr.signaling_session",
    ],
)
def test_light_modules_load_no_heavy_stack(statement: str) -> None:
    assert heavy_after(statement) == []


def test_the_runtime_still_loads_on_first_use() -> None:
    assert set(heavy_after("import actr\nactr.Node")) >= {"aiortc", "aiohttp"}
    assert "aiortc" in heavy_after("from actr.transport import Transport")
