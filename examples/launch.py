"""Start the parts of a deployment as separate processes and wait for them to be ready.

Used by examples/demo.py and the end-to-end tests. Readiness is read from each
process's stdout (``signaling listening on ...``, ``actor ready id=...``), never
guessed with sleeps.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTEN_RE = re.compile(r"signaling listening on (http://\S+)")
READY_RE = re.compile(r"actor ready id=(\S+)")


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.name = name
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.popen = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=ROOT,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.output.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no line matching {pattern.pattern!r}")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.popen.poll() is not None:
                    code = self.popen.returncode
                    raise RuntimeError(
                        f"{self.name} exited with {code} before {pattern.pattern!r}"
                    ) from None
                continue
            m = pattern.search(line)
            if m:
                return m

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def start_signaling(
    workdir: Path,
    secret: str = "dev-secret",
    name: str = "signaling",
    port: int = 0,
    extra: str = "",
) -> tuple[Proc, str]:
    """Starts ``python -m signaling``; ``extra`` is top-level TOML placed before [realms]."""
    cfg = workdir / f"{name}.toml"
    cfg.write_text(extra + f'\n[realms]\n1 = "{secret}"\n')
    proc = Proc(
        name,
        [
            sys.executable,
            "-m",
            "signaling",
            "--config",
            str(cfg),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        log_path=workdir / f"{name}.log",
    )
    return proc, _ready(proc, LISTEN_RE)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def write_actor_config(
    workdir: Path,
    name: str,
    actor_class: str,
    url: str,
    secret: str = "dev-secret",
    extra: str = "",
    sections: dict[str, dict[str, object]] | None = None,
) -> Path:
    """Writes an actr.toml for a daemon on loopback. ``sections`` adds or overrides
    keys per section (e.g. {"actor": {"max_concurrent_handlers": 4}}); ``extra`` is
    raw TOML appended at the end (for sections not written here)."""
    config: dict[str, dict[str, object]] = {
        "actor": {
            "class": actor_class,
            "pythonpath": [str(ROOT)],
            "data_dir": str(workdir / name),
        },
        "signaling": {"url": url, "realm": 1, "realm_secret": secret},
        "webrtc": {"host_addresses": ["127.0.0.1"]},
    }
    for section, keys in (sections or {}).items():
        config.setdefault(section, {}).update(keys)
    text = "\n".join(
        f"[{section}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in keys.items())
        for section, keys in config.items()
    )
    cfg = workdir / f"{name}.toml"
    cfg.write_text(text + "\n" + extra)
    return cfg


def start_actor(
    workdir: Path, name: str, config: Path, env: dict[str, str] | None = None
) -> tuple[Proc, str]:
    proc = Proc(
        name,
        [sys.executable, "-m", "actr", "--log-level", "INFO", "run", str(config)],
        env=env,
        log_path=workdir / f"{name}.log",
    )
    return proc, _ready(proc, READY_RE)


def _ready(proc: Proc, pattern: re.Pattern[str]) -> str:
    """The first group of the ready line; a process that never prints it is stopped."""
    try:
        return proc.wait_for(pattern).group(1)
    except BaseException:
        proc.stop()
        raise
