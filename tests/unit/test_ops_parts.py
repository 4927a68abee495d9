"""The parts of a daemon's operator surface (issue 16), without a network: log lines in
text and JSON, the health rules, the mailbox check, the Prometheus rendering."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actr import logs
from actr.config import ConfigError, from_dict
from actr.health import DownClock, mailbox_problem, readiness_problem, signaling_problem
from actr.mailbox_store import MailboxStats
from actr.metrics import DaemonMetrics, Sample

ME = "6b0000000001@1/acme:echo:1.0"


# -- logs ------------------------------------------------------------------------------


@pytest.fixture
def actor() -> Iterator[None]:
    logs.set_actor(lambda: ME)
    yield
    logs.set_actor(lambda: None)


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("actr.node", logging.WARNING, __file__, 1, message, args, exc_info)


def test_fields_of_an_event_line() -> None:
    assert logs.parse_fields("peer_ready peer=1@1/a:b:1 reason=not found here") == (
        "peer_ready",
        {"peer": "1@1/a:b:1", "reason": "not found here"},
    )
    assert logs.parse_fields("node_stopped") == ("node_stopped", {})
    # A library's prose is no event.
    assert logs.parse_fields("Connection(0) ICE completed") == ("", {})


def test_text_lines_name_the_actor_once_known(actor: None) -> None:
    text = logs.TextFormatter()
    assert text.format(record("peer_ready peer=%s", "x")).endswith(
        f"WARNING actr.node peer_ready peer=x actor={ME}"
    )
    # Already named: not twice.
    assert text.format(record("node_started actor=%s", ME)).count(ME) == 1
    # Before the id is known, nothing is added.
    logs.set_actor(lambda: None)
    assert text.format(record("data_dir_created path=/d")).endswith("data_dir_created path=/d")


def test_json_lines_are_one_object_each(actor: None) -> None:
    line = logs.JsonFormatter().format(
        record("handler_failed route=%s actor=%s level=%s", "a.B", ME, "x", exc=True)
    )
    assert "\n" not in line
    out = json.loads(line)
    assert out["event"] == "handler_failed" and out["route"] == "a.B"
    assert out["actor"] == ME and "field_actor" not in out  # its own id: said once
    assert out["field_level"] == "x" and out["level"] == "WARNING"  # a reserved name kept
    assert out["logger"] == "actr.node" and out["ts"].endswith("+00:00")
    assert out["msg"] == f"handler_failed route=a.B actor={ME} level=x"
    assert "ValueError: boom" in out["exc"]


def test_setup_refuses_unknown_levels_and_formats() -> None:
    with pytest.raises(ValueError, match="level"):
        logs.setup("LOUD")
    with pytest.raises(ValueError, match="format"):
        logs.setup("INFO", "xml")


def test_config_keys_of_admin_and_logging(tmp_path: Path) -> None:
    cfg = from_dict(
        {
            "admin": {"listen": "[::1]:9464", "signaling_grace": 5},
            "logging": {"level": "info", "format": "json"},
        },
        tmp_path,
    )
    assert (cfg.admin.listen, cfg.admin.signaling_grace) == ("[::1]:9464", 5.0)
    assert (cfg.log_level, cfg.log_format) == ("INFO", "json")
    default = from_dict({}, tmp_path)
    assert (default.admin.listen, default.admin.signaling_grace) == ("", 30.0)
    assert (default.log_level, default.log_format) == ("", "text")
    for bad in ("9464", "host:", ":80", "h:70000", "h:x"):
        with pytest.raises(ConfigError, match="listen"):
            from_dict({"admin": {"listen": bad}}, tmp_path)


# -- health rules ----------------------------------------------------------------------


def test_signaling_rules() -> None:
    assert signaling_problem(registered=False, down_for=None, grace=30) == (
        "not registered with the signaling server"
    )
    assert signaling_problem(registered=True, down_for=None, grace=30) is None
    assert signaling_problem(registered=True, down_for=29.9, grace=30) is None
    assert signaling_problem(registered=True, down_for=31, grace=30) == (
        "signaling server out of reach for 31s (grace 30s)"
    )
    assert readiness_problem(started=False, stopping=False, connected=True) == "starting"
    assert readiness_problem(started=True, stopping=True, connected=True) == "stopping"
    assert readiness_problem(started=True, stopping=False, connected=False) == (
        "signaling socket down"
    )
    assert readiness_problem(started=True, stopping=False, connected=True) is None


async def test_down_clock_follows_the_socket_events() -> None:
    now = [100.0]
    connected, disconnected = asyncio.Event(), asyncio.Event()
    clock = DownClock(connected, disconnected, clock=lambda: now[0])
    task = asyncio.create_task(clock.run())
    try:
        await asyncio.sleep(0)
        now[0] = 105.0
        assert clock.down_for() == 5.0  # down since it was made (not connected yet)
        connected.set()
        assert clock.down_for() is None  # at once, before the task has run
        await asyncio.sleep(0)
        connected.clear()
        disconnected.set()
        await asyncio.sleep(0)
        now[0] = 112.0
        assert clock.down_for() == 7.0
        disconnected.clear()
        connected.set()
        await asyncio.sleep(0)
        assert clock.down_for() is None and clock.since is None
    finally:
        task.cancel()


# -- the mailbox check -----------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "mailbox.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE messages (envelope BLOB)")
    conn.execute("INSERT INTO messages VALUES (zeroblob(10000))")
    yield conn
    conn.close()


def test_mailbox_check_asks_for_room_for_one_request(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    assert mailbox_problem(db, tmp_path, 1 << 20) is None
    ((pages,),) = db.execute("PRAGMA page_count").fetchall()
    db.execute(f"PRAGMA max_page_count={pages + 2}")  # the mailbox tests' full disk
    why = mailbox_problem(db, tmp_path, 1 << 20)
    assert why is not None and why.startswith("mailbox full: room for "), why
    # A small request still fits, which is why the check asks for a large one.
    assert mailbox_problem(db, tmp_path, 4096) is None
    db.execute("PRAGMA max_page_count=1073741823")
    assert mailbox_problem(db, tmp_path, 1 << 20) is None
    # Nothing of the probe stays behind.
    tables = db.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("messages",)]


def test_mailbox_check_sees_a_full_filesystem(
    db: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.statvfs(tmp_path)

    class Full:
        f_frsize = real.f_frsize
        f_bavail = 3

    monkeypatch.setattr(os, "statvfs", lambda _path: Full())
    why = mailbox_problem(db, tmp_path, 1 << 20)
    free = 3 * real.f_frsize
    assert why == f"disk full: {free} bytes free under {tmp_path}, a request may take {1 << 20}"


def test_mailbox_check_sees_a_file_that_does_not_commit(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.db"
    sqlite3.connect(path).execute("CREATE TABLE messages (x)").connection.close()
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        why = mailbox_problem(ro, tmp_path, 4096)
        assert why is not None and why.startswith("mailbox cannot commit: "), why
        assert not ro.in_transaction
    finally:
        ro.close()


# -- metrics ---------------------------------------------------------------------------


def samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            labels = frozenset((k, v) for k, v in s.labels.items() if not k.startswith("otel_"))
            out[(s.name, labels)] = s.value
    return out


def test_metrics_render_the_sample_and_the_handled_calls() -> None:
    metrics = DaemonMetrics(["echo.v1.Echo.Say"], actor_type="acme:echo:1.0")
    try:
        metrics.handled("echo.v1.Echo.Say", 0, 0.003, 1)
        metrics.handled("echo.v1.Echo.Say", 10104, 0.2, 2)
        # A route the actor does not have: one label for all of them.
        metrics.handled("made.up.Route1", 10006, 0.0, 1)
        metrics.handled("made.up.Route2", 10006, 0.0, 1)
        metrics.handled("echo.v1.Echo.Say", 99999, 0.0, 1)
        stats: dict[str, Any] = {
            "node": {"dead_lettered": 2, "refused_mailbox_error": 1},
            "inbound": {"request_without_deadline": 3},
            "transport": {"frame_too_many_partials": 4, "peers_opened": 1},
            "pending": {"expired": 5, "in_flight": 6},
            "streams": {"chunk_from_other_sender": 7},
            "signaling": {"connected": True, "reconnects": 8},
            "handling": 1,
        }
        text = metrics.render(
            Sample(
                stats=stats,
                mailbox_messages=9,
                mailbox_bytes=900,
                mailbox=MailboxStats(8, 1, {1: 8}, 12.5, 2, 40),
                peers={"connected": 2, "weird": 1},
                registered=True,
                signaling_down_for=0.0,
            )
        )
    finally:
        metrics.shutdown()
    got = samples(text)

    def v(name: str, **labels: str) -> float:
        return got[(name, frozenset(labels.items()))]

    say = "echo.v1.Echo.Say"
    assert v("actr_calls_total", route=say, code="OK") == 1
    assert v("actr_calls_total", route=say, code="APPLICATION_ERROR") == 1
    assert v("actr_calls_total", route=say, code="99999") == 1
    assert v("actr_calls_total", route="other", code="UNKNOWN_ROUTE") == 2
    assert v("actr_handler_duration_seconds_count", route=say) == 3
    assert v("actr_handler_duration_seconds_bucket", route=say, le="0.005") == 2
    assert v("actr_redeliveries_total") == 1
    assert v("actr_mailbox_messages") == 9 and v("actr_mailbox_bytes") == 900
    assert v("actr_mailbox_queued") == 8 and v("actr_mailbox_in_flight") == 1
    assert v("actr_mailbox_dead_letters") == 2 and v("actr_mailbox_oldest_age_seconds") == 12.5
    assert v("actr_dead_lettered_total") == 2
    assert v("actr_handlers_running") == 1 and v("actr_pending_calls") == 6
    assert v("actr_peers", state="connected") == 2 and v("actr_peers", state="failed") == 0
    assert v("actr_peers", state="weird") == 1
    assert v("actr_reassembly_drops_total", reason="too_many_partials") == 4
    assert v("actr_stream_drops_total", reason="chunk_from_other_sender") == 7
    assert v("actr_inbound_drops_total", reason="request_without_deadline") == 3
    assert v("actr_runtime_events_total", layer="node", event="refused_mailbox_error") == 1
    assert v("actr_runtime_events_total", layer="transport", event="peers_opened") == 1
    assert v("actr_runtime_events_total", layer="pending", event="expired") == 5
    assert (
        "actr_runtime_events_total",
        frozenset({("layer", "pending"), ("event", "in_flight")}),
    ) not in got
    assert v("actr_signaling_connected") == 1 and v("actr_signaling_registered") == 1
    assert v("actr_signaling_reconnects_total") == 8 and v("actr_signaling_down_seconds") == 0
