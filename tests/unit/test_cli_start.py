"""CLI start-up (issue 15): each command loads what it uses when it runs, so
``actr --help`` and bad arguments load none of the runtime, and a client node (what
``actr call`` makes) loads neither the operators' HTTP server nor the tracing SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
RUNTIME = ("aiortc", "aiohttp", "aiosqlite", "google.protobuf", "actr.node", "rich")


def loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_help_and_the_parser_load_no_runtime() -> None:
    loaded = loaded_after(
        "from actr import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "try:\n    cli.main(['call'])\nexcept SystemExit:\n    pass"
    )
    assert loaded.isdisjoint(RUNTIME), loaded & set(RUNTIME)


def test_a_client_node_loads_no_ops_server_nor_tracing_sdk() -> None:
    loaded = loaded_after("import actr.client")
    assert "aiortc" in loaded  # it does need WebRTC
    unwanted = {"actr.ops_http", "actr.metrics", "opentelemetry.sdk", "prometheus_client"}
    assert loaded.isdisjoint(unwanted), loaded & unwanted


def test_the_cli_client_type_is_the_runtimes() -> None:
    from actr.cli_connect import CLIENT_TYPE
    from actr.node import CLIENT_TYPE as RUNTIME_CLIENT_TYPE

    assert CLIENT_TYPE == RUNTIME_CLIENT_TYPE
