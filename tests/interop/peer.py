"""A node of the real Rust actr runtime as a test peer: actr's published napi module,
run by node through tests/interop/driver.js (one process per node), set up by
scripts/interop.sh. The driver speaks JSON lines: commands on its stdin, answers on
its stdout; actr's own log lines go to a log file beside the node's configs."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

DRIVER = Path(__file__).with_name("driver.js")
PREFIX = "@interop "
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def interop_cache() -> Path:
    return Path(os.environ.get("ACTR_INTEROP_CACHE", "/var/cache/actr-interop"))


@dataclass(frozen=True)
class Install:
    """What scripts/interop.sh set up (its peer.json)."""

    actr_version: str
    command: list[str]  # the loader (where the system glibc is too old), then node
    module: Path


def need_actr_peer() -> Install:
    """The installed peer; a skip without it (a failure with ACTR_REQUIRE_SERVICES=1)."""
    peer_json = interop_cache() / "peer.json"
    why = ""
    if shutil.which("node") is None:
        why = "node is not installed"
    elif not peer_json.exists():
        why = f"{peer_json} is missing"
    else:
        info: dict[str, Any] = json.loads(peer_json.read_text())
        launcher = [str(a) for a in info["launcher"]]
        node = str(info["node"])
        module = Path(info["module"])
        missing = [p for p in [node, *launcher[:1], str(module)] if not Path(p).exists()]
        if missing:
            why = f"{', '.join(missing)} missing"
        else:
            return Install(str(info["actr_version"]), [*launcher, node], module)
    why = f"the real actr peer is not set up ({why}; run scripts/interop.sh)"
    if os.environ.get("ACTR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{why}, and ACTR_REQUIRE_SERVICES=1")
    pytest.skip(why)


class PeerError(Exception):
    """A command the actr node answered with an error."""

    def __init__(self, op: str, error: dict[str, Any]) -> None:
        self.name: str | None = error.get("name")  # actr's ActrError variant
        self.code: int | None = error.get("code")  # the wire code of that variant
        self.kind: str | None = error.get("kind")
        self.message: str = str(error.get("message", ""))
        super().__init__(f"{op}: {self.name} ({self.code}): {self.message}")


class ActrPeer:
    """One actr node (an ActrNode of the published module), registered with our
    signaling server at ``signaling_url`` (http://host:port) as ``actr_type``."""

    def __init__(
        self,
        install: Install,
        workdir: Path,
        signaling_url: str,
        *,
        name: str = "actr-node",
        actr_type: str = "rust:interop:1.0",
        realm: int = 1,
        realm_secret: str = "dev-secret",
    ) -> None:
        manufacturer, type_name, version = actr_type.split(":")
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        # What ActrNode.fromFile reads: the manifest, and actr.toml beside it.
        manifest = self.dir / "manifest.toml"
        manifest.write_text(
            "edition = 1\nexports = []\n\n[package]\n"
            f'name = "{type_name}"\nmanufacturer = "{manufacturer}"\nversion = "{version}"\n'
        )
        ws_url = re.sub(r"^http", "ws", signaling_url.rstrip("/"))
        (self.dir / "actr.toml").write_text(
            "edition = 1\n\n"
            f'[signaling]\nurl = "{ws_url}/signaling/ws"\n\n'
            f'[ais_endpoint]\nurl = "{signaling_url.rstrip("/")}/ais"\n\n'
            f'[deployment]\nrealm_id = {realm}\nrealm_secret = "{realm_secret}"\n\n'
            # actr 0.5.9 refuses to start without a trust anchor for packages; this
            # node runs no package, and dev_only is its anchor for that case.
            '[hyper.trust]\nkind = "dev_only"\n'
        )
        self.log_path = self.dir / "actr-node.log"
        self._log: IO[str] = open(self.log_path, "a")  # noqa: SIM115
        self.popen = subprocess.Popen(
            [*install.command, str(DRIVER), str(install.module), str(manifest)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.dir,
            text=True,
            bufsize=1,
            env={**os.environ, "NO_COLOR": "1"},
        )
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pump_done = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        self.actor_id = ""

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        try:
            for line in self.popen.stdout:
                if line.startswith(PREFIX):
                    self._answers.put(json.loads(line[len(PREFIX) :]))
                else:
                    self._log.write(ANSI.sub("", line))
                    self._log.flush()
        finally:
            self._pump_done.set()

    def log_text(self) -> str:
        """The node's log so far: every line it printed before its newest answer."""
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _next(self, what: str, deadline: float) -> dict[str, Any]:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"actr node: no answer to {what}\n{self.log_tail()}")
            try:
                return self._answers.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.popen.poll() is not None and self._pump_done.is_set():
                    raise RuntimeError(
                        f"actr node exited with {self.popen.returncode} before answering "
                        f"{what}\n{self.log_tail()}"
                    ) from None

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Waits until the node registered and started; returns its id (ID-1 text)."""
        msg = self._next("start", time.monotonic() + timeout)
        if msg.get("event") != "ready":
            raise RuntimeError(f"actr node did not start: {msg}\n{self.log_tail()}")
        self.actor_id = str(msg["actor"])
        return self.actor_id

    def request(self, op: str, timeout: float, **fields: Any) -> Any:
        with self._lock:
            assert self.popen.stdin is not None
            cmd_id = next(self._ids)
            self.popen.stdin.write(json.dumps({"id": cmd_id, "op": op, **fields}) + "\n")
            self.popen.stdin.flush()
            deadline = time.monotonic() + timeout
            while True:
                msg = self._next(op, deadline)
                if msg.get("id") != cmd_id:
                    continue  # an answer to a command that timed out here before
                if msg["ok"]:
                    return msg["result"]
                raise PeerError(op, msg["error"])

    def discover(self, actr_type: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        ids: list[str] = self.request("discover", timeout, type=actr_type, count=count)
        return ids

    def call(
        self,
        target: str,
        route: str,
        payload: bytes,
        *,
        payload_type: int = 0,
        timeout: float = 10.0,
    ) -> bytes:
        """An RPC from the actr node; ``timeout`` is actr's deadline for it (the wait
        here is a little longer, so actr's own timeout is what a slow call shows)."""
        answer: str = self.request(
            "call",
            timeout + 5,
            target=target,
            route=route,
            payload_type=payload_type,
            payload=base64.b64encode(payload).decode(),
            timeout_ms=int(timeout * 1000),
        )
        return base64.b64decode(answer)

    def tell(
        self, target: str, route: str, payload: bytes, *, payload_type: int = 0, timeout: float = 10
    ) -> None:
        self.request(
            "tell",
            timeout,
            target=target,
            route=route,
            payload_type=payload_type,
            payload=base64.b64encode(payload).decode(),
        )

    def stop(self, timeout: float = 10.0) -> int:
        """Shuts the node down (it unregisters); killed if it does not exit in time."""
        if self.popen.poll() is None:
            # A node past answering (dead, hung) is ended by the steps below.
            with contextlib.suppress(OSError, TimeoutError, RuntimeError, PeerError):
                self.request("shutdown", timeout)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.terminate()
                try:
                    self.popen.wait(5)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait()
        if self.popen.stdin is not None:
            self.popen.stdin.close()
        self._pump_done.wait(5)
        self._log.close()
        return self.popen.returncode
