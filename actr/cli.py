"""Command line: ``actr run``, ``actr call``, ``actr describe``, ``actr check``,
``actr discover``, ``actr top``, ``actr ps``, the mailbox tools.

Exit codes: 0 success, 1 the call failed (the error is printed), 2 bad usage
or configuration.

Each command imports what it uses when it runs (the runtime with aiortc and aiohttp
takes most of a call's wall time to load), so ``actr --help`` loads none of it and
``actr call`` none of the daemon's parts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from actr import logs
from actr.cli_connect import UsageError, add_connection_args, client_from_args

log = logging.getLogger(__name__)


def positive_int(text: str) -> int:
    from actr.cli_mailbox import positive_int as parse

    return parse(text)


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop  # aiortc's per-packet costs fall by 1.5-2x on uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


async def _run(args: argparse.Namespace) -> int:
    from actr import check, telemetry
    from actr import config as config_mod
    from actr.data_dir import DataDirInUse
    from actr.errors import ActrError
    from actr.identity import id_text
    from actr.node import Node, StartAborted

    cfg = config_mod.load(args.config)
    # [logging] of the file, where the command line and ACTR_LOG_LEVEL left it open.
    logs.setup(args.log_level or cfg.log_level or "WARNING", args.log_format or cfg.log_format)
    actor = check.actor_class(cfg)()
    if cfg.data_dir is None:
        raise config_mod.ConfigError("[actor] data_dir is required")
    telemetry.setup(cfg.trace_exporter, type(actor).actr_type or "actr", cfg.trace_endpoint)
    node = Node(cfg, actor)
    # Every line names the actor once it is registered.
    logs.set_actor(lambda: id_text(node.actr_id) if node.signaling.registration else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
    except (ActrError, StartAborted, DataDirInUse, OSError) as e:
        # OSError: the data directory cannot be made or locked (not a directory, no
        # permission), said in one line rather than a traceback.
        print(f"error: actor failed to start: {e}", file=sys.stderr)
        return 1
    print(f"actor ready id={id_text(node.actr_id)}", flush=True)
    await stop.wait()
    log.info("stopping signal=received")
    await node.stop()
    telemetry.shutdown()
    return 0


async def _discover(args: argparse.Namespace) -> int:
    from actr.errors import ActrError
    from actr.identity import type_text

    try:
        async with client_from_args(args) as client:
            types = await client.signaling.discover(args.manufacturer or "", args.limit)
    except ActrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for t in types:
        print(type_text(t))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="actr", description="actr actor runtime")
    p.add_argument(
        "--log-level",
        default=os.environ.get("ACTR_LOG_LEVEL"),
        help="DEBUG, INFO, WARNING, ERROR (default: $ACTR_LOG_LEVEL, else the config's "
        "[logging] level, else WARNING)",
    )
    p.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        help="text, or json: one object per line (default: the config's [logging] format)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an actor daemon from a config file")
    run.add_argument("config", help="actr.toml")

    chk = sub.add_parser("check", help="list every problem of a daemon config (exit 2), or OK")
    chk.add_argument("config", type=Path, help="actr.toml")

    call = sub.add_parser(
        "call",
        help="call an actor with JSON and print its answer as JSON",
        description="The request is encoded with the types of the actor's service spec "
        "(see actr describe); exit 1 when the call fails, 2 on bad input (nothing sent).",
    )
    call.add_argument("target", help="actor type (acme:echo:1.0) or id (1f@1/acme:echo:1.0)")
    call.add_argument("route_key", help="package.Service.Method")
    call.add_argument(
        "request", nargs="?", help='the request as JSON, e.g. \'{"text": "hi"}\'; - reads stdin'
    )
    call.add_argument("--data-b64", help="request payload, base64 (raw bytes, no spec)")
    call.add_argument("--json", help="request as JSON (as the positional request)")
    call.add_argument("--request-type", help="protobuf message name of the request")
    call.add_argument("--response-type", help="print the answer as JSON of this message type")
    call.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        help="offline: Python module that defines the message types (repeatable)",
    )
    add_connection_args(call)
    call.add_argument("--timeout", type=float, default=10.0)

    desc = sub.add_parser(
        "describe", help="an actor's routes with their request and response types and fields"
    )
    desc.add_argument("target", help="actor type (acme:echo:1.0) or id")
    desc.add_argument("symbol", nargs="?", help="only this route or message type")
    add_connection_args(desc)

    top = sub.add_parser("top", help="live view of a daemon's counters (its Stats route)")
    top.add_argument("target", nargs="?", help="actor type or id (default: every live type)")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between reads")
    top.add_argument("--once", action="store_true", help="print one reading and exit")
    add_connection_args(top)

    ps = sub.add_parser("ps", help="live actors (type, id, backlog) from the signaling server")
    ps.add_argument("--signaling", help="signaling server URL (default http://127.0.0.1:8081)")
    ps.add_argument("--config", help="take the signaling URL from this actr.toml")
    ps.add_argument("--json", action="store_true", help="one JSON object per line")
    ps.add_argument("--token-file", help="operator token file (else $ACTR_CONSOLE_TOKEN)")

    mbx = sub.add_parser("mailbox", help="inspect a daemon's mailbox (running or stopped)")
    mbx.add_argument("what", choices=["stats"])
    mbx.add_argument("target", help="data dir, mailbox.db or actr.toml")
    mbx.add_argument("--json", action="store_true")

    dlq = sub.add_parser("dlq", help="dead letters: list, show, replay, purge")
    dlq.add_argument("action", choices=["list", "show", "replay", "purge"])
    dlq.add_argument("target", help="data dir, mailbox.db or actr.toml")
    dlq.add_argument("seq", nargs="*", type=int, help="sequence numbers")
    dlq.add_argument("--all", action="store_true", help="replay or purge every dead letter")
    dlq.add_argument("--limit", type=positive_int, default=100, help="list at most this many")
    dlq.add_argument("--json", action="store_true", help="list: one JSON object per line")

    discover = sub.add_parser("discover", help="list the live actor types")
    discover.add_argument("--manufacturer", help="only this manufacturer's types")
    discover.add_argument("--limit", type=int, default=0)
    add_connection_args(discover)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        logs.setup(args.log_level or "WARNING", args.log_format or "text")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "check":
        from actr import check

        return check.main(args.config)
    if args.command in ("call", "discover"):
        sys.path.insert(0, str(Path.cwd()))
    from actr.cli_mailbox import UsageError as MailboxUsageError
    from actr.config import ConfigError

    try:
        if args.command == "run":
            return _run_loop(_run(args))
        if args.command == "discover":
            return _run_loop(_discover(args))
        if args.command in ("mailbox", "dlq"):
            from actr.cli_mailbox import mailbox_command

            return asyncio.run(mailbox_command(args))
        if args.command == "top":
            from actr.cli_top import top

            return _run_loop(top(args))
        if args.command == "ps":
            from actr.cli_top import ps

            return ps(args)
        from actr import cli_call

        if args.command == "describe":
            return _run_loop(cli_call.describe(args))
        return _run_loop(cli_call.call(args))
    except (ConfigError, UsageError, MailboxUsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
