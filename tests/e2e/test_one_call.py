"""End to end: signaling server, two actor daemons and a caller, each a separate OS
process on loopback, talking over real aiortc data channels."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.launch import ROOT, Proc, start_actor, start_signaling, write_actor_config

pytestmark = pytest.mark.e2e


class Deployment:
    def __init__(self, url: str, echo_id: str, front_id: str) -> None:
        self.url = url
        self.echo_id = echo_id
        self.front_id = front_id

    def run(self, scenario: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "tests.e2e.caller", self.url, scenario],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    work: Path = tmp_path_factory.mktemp("e2e")
    procs: list[Proc] = []
    try:
        sig, url = start_signaling(work)
        procs.append(sig)
        echo, echo_id = start_actor(
            work, "echo", write_actor_config(work, "echo", "examples.echo:Echo", url)
        )
        procs.append(echo)
        front, front_id = start_actor(
            work, "front", write_actor_config(work, "front", "tests.e2e.actors:Front", url)
        )
        procs.append(front)
        yield Deployment(url, echo_id, front_id)
        for p in procs:
            assert p.popen.poll() is None, f"{p.name} died during the tests"
    finally:
        for p in reversed(procs):
            p.stop()


def test_call_answered_over_data_channel(deployment: Deployment) -> None:
    r = deployment.run("say")
    assert r == {"text": "hi", "served_by": deployment.echo_id}


def test_dc3_one_mib_request_and_answer_fragmented(deployment: Deployment) -> None:
    r = deployment.run("big")
    assert r["same"] is True
    assert r["size"] == 1024 * 1024
    # One request, 1 MiB plus envelope overhead: 17 frames of at most 65,527 bytes;
    # and the Hello, one frame, first on the connection (X-HELLO-1).
    assert r["messages_sent"] == 2
    assert r["frames_sent"] == 18


def test_actor_calls_second_actor_from_handler(deployment: Deployment) -> None:
    r = deployment.run("nested")
    assert r["text"] == "deep"
    assert r["served_by"] == f"{deployment.echo_id} via {deployment.front_id}"


def test_stream_of_200_chunks_arrives_complete_and_in_order(deployment: Deployment) -> None:
    r = deployment.run("stream")
    assert r == {"text": "200 in_order=True", "digest_ok": True}


def test_unknown_route_is_a_typed_error(deployment: Deployment) -> None:
    r = deployment.run("unknown_route")
    assert r["error"] == "UnknownRoute"
    assert r["code"] == 10006
    assert "front.v1.Front.Nope" in r["message"]


def test_handler_exception_is_application_error(deployment: Deployment) -> None:
    r = deployment.run("app_error")
    assert r["error"] == "ApplicationError"
    assert r["code"] == 10104
    assert "refusing x" in r["message"]


def test_call_to_type_without_live_actor_fails_fast_not_found(deployment: Deployment) -> None:
    r = deployment.run("not_found")
    assert r["error"] == "NotFound"
    assert r["code"] == 10003
    assert r["elapsed"] < 5.0
