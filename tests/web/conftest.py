"""Browser tests (issue 15): Debian's headless Chromium driven by playwright-core from
web/node_modules (scripts/web.sh --setup installs both), against a signaling server
and an echo daemon run as processes. Skipped when chromium, node or the npm packages
are missing; with ACTR_REQUIRE_SERVICES=1 (CI) they fail instead."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from actr.protocol.actr_pb2 import ActrType, Realm, RegisterRequest, RegisterResponse
from actr.wire import PROTOBUF_CONTENT_TYPE, REALM_SECRET_HEADER, REGISTER_PATH
from examples.launch import LISTEN_RE, ROOT, Proc, _ready, start_actor, write_actor_config

DRIVER = Path(__file__).resolve().parent / "browser.mjs"
PLAYWRIGHT = ROOT / "web" / "node_modules" / "playwright-core"


def need_browser() -> tuple[str, str]:
    """(node, chromium) paths; a skip (a failure with ACTR_REQUIRE_SERVICES=1) if missing."""
    node, chromium = shutil.which("node"), shutil.which("chromium")
    missing = [
        what
        for what, ok in (
            ("node", node),
            ("chromium", chromium),
            ("web/node_modules (npm ci)", PLAYWRIGHT.is_dir()),
        )
        if not ok
    ]
    if missing:
        why = f"{', '.join(missing)} missing (scripts/web.sh --setup installs them)"
        if os.environ.get("ACTR_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{why}, and ACTR_REQUIRE_SERVICES=1")
        pytest.skip(why)
    assert node is not None and chromium is not None
    return node, chromium


@dataclass
class Site:
    """A signaling server with the console on, and its secrets (to grep for)."""

    work: Path
    url: str = ""
    realm_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    procs: list[Proc] = field(default_factory=list)

    def start(self) -> None:
        cfg = self.work / "signaling.toml"
        cfg.write_text(f'[realms]\n1 = "{self.realm_secret}"\n')
        proc = Proc(
            "signaling",
            [
                sys.executable,
                "-m",
                "signaling",
                "--config",
                str(cfg),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ],
            env={"ACTR_CONSOLE_TOKEN": self.token},
            log_path=self.work / "signaling.log",
        )
        self.procs.append(proc)
        self.url = _ready(proc, LISTEN_RE)

    def start_echo(self) -> str:
        cfg = write_actor_config(
            self.work,
            "echo",
            "examples.echo:Echo",
            self.url,
            secret=self.realm_secret,
            sections={"admin": {"stats_from": ["actr:console:*"]}},
        )
        proc, actor_id = start_actor(self.work, "echo", cfg)
        self.procs.append(proc)
        return actor_id

    def register(self, type_text: str = "acme:web:1.0") -> str:
        """What an application's backend does for its page: register with the realm
        secret, hand the page the RegisterOk (base64) and nothing else."""
        manufacturer, name, version = type_text.split(":")
        body = RegisterRequest(
            actr_type=ActrType(manufacturer=manufacturer, name=name, version=version),
            realm=Realm(realm_id=1),
        )
        req = urllib.request.Request(
            self.url + REGISTER_PATH,
            data=body.SerializeToString(),
            headers={REALM_SECRET_HEADER: self.realm_secret, "Content-Type": PROTOBUF_CONTENT_TYPE},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            answer = RegisterResponse.FromString(resp.read())
        return base64.b64encode(answer.success.SerializeToString()).decode()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    s = Site(tmp_path)
    await asyncio.to_thread(s.start)
    try:
        yield s
    finally:
        await asyncio.to_thread(s.stop)


async def drive(mode: str, config: dict[str, Any]) -> dict[str, Any]:
    node, chromium = need_browser()
    env = {**os.environ, "BROWSER_CONFIG": json.dumps({**config, "chromium": chromium})}
    done = await asyncio.to_thread(
        subprocess.run,
        [node, str(DRIVER), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert "failure" not in result, result
    return result
