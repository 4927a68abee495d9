"""The server as a process: ``python -m signaling`` (PROTOCOL.md SIG-11)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"signaling listening on (http://127\.0\.0\.1:(\d+))\n")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.mark.e2e
async def test_sig11_process_prints_listening_line_and_serves_healthz() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signaling",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        m = LINE.fullmatch(line)
        assert m is not None, line
        assert int(m.group(2)) > 0
        async with (
            aiohttp.ClientSession() as http,
            http.get(m.group(1) + "/healthz") as r,
        ):
            assert r.status == 200
            assert await r.text() == "ok"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
    assert code == 0
    assert proc.stdout is not None
    assert await proc.stdout.read() == b""  # exactly one line on stdout


@pytest.mark.e2e
async def test_cli_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "signaling.toml"
    bad.write_text("port = 'eighty'\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signaling",
        "--config",
        str(bad),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2
    assert out == b""
    assert b"port must be an integer" in err
    assert b"Traceback" not in err
