"""F14 with real processes: the realm secret never goes on a command line, and a daemon
with a placeholder secret does not start against a signaling server off loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from examples.launch import write_actor_config
from tests.e2e.conftest import Cluster
from tests.e2e.test_cli import actr_cli, conn

pytestmark = pytest.mark.e2e

SAY = ["acme:echo:1.0", "echo.v1.Echo.Say", "--import", "examples.echo_pb2"]
TYPED = ["--request-type", "echo.v1.SayRequest", "--response-type", "echo.v1.SayReply"]


async def test_f14_call_refuses_a_secret_on_the_command_line(cluster: Cluster) -> None:
    await cluster.start_actor("echo", "examples.echo:Echo")
    done = await actr_cli("call", *SAY, "--realm-secret", "dev-secret", *conn(cluster))
    assert done.returncode == 2
    assert "--realm-secret is not accepted" in done.stderr
    assert "ACTR_REALM_SECRET" in done.stderr and "--realm-secret-file" in done.stderr
    assert "Traceback" not in done.stderr


async def test_f14_call_reads_the_secret_from_a_file_or_the_environment(
    cluster: Cluster, tmp_path: Path
) -> None:
    echo_id = await cluster.start_actor("echo", "examples.echo:Echo")
    secret = tmp_path / "realm.secret"
    secret.write_text("dev-secret\n")
    secret.chmod(0o600)
    args = ["call", *SAY, *TYPED, "--json", '{"text": "f"}', *conn(cluster)]
    done = await actr_cli(*args, "--realm-secret-file", str(secret), env={"ACTR_REALM_SECRET": ""})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"text": "f", "served_by": echo_id}
    done = await actr_cli(*args)  # ACTR_REALM_SECRET=dev-secret
    assert done.returncode == 0, done.stderr
    done = await actr_cli(*args, env={"ACTR_REALM_SECRET": ""})
    assert done.returncode == 2 and "no realm secret" in done.stderr


async def test_f14_daemon_with_a_placeholder_secret_refuses_a_remote_server(
    tmp_path: Path,
) -> None:
    # 0.0.0.0 is not loopback to the check (and reaches only this machine otherwise).
    cfg = write_actor_config(
        tmp_path, "echo", "examples.echo:Echo", "http://0.0.0.0:9", secret="change-me"
    )
    done = await actr_cli("run", str(cfg))
    assert done.returncode == 2, done.stderr
    assert "the realm secret is a placeholder" in done.stderr
    assert "http://0.0.0.0:9, which is not on loopback" in done.stderr
    assert not (tmp_path / "echo").exists()  # refused before the data directory
