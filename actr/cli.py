"""Command line: ``actr run``, ``actr call``, ``actr check``, ``actr discover``, the
mailbox tools.

Exit codes: 0 success, 1 the call failed (the error is printed), 2 bad usage
or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import importlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message

from actr import check, logs, telemetry
from actr import config as config_mod
from actr.cli_mailbox import UsageError, mailbox_command, positive_int
from actr.client import connect
from actr.data_dir import DataDirInUse
from actr.errors import ActrError
from actr.identity import IdentityError, id_text, parse_type, type_text
from actr.node import CLIENT_TYPE, Node, StartAborted

log = logging.getLogger(__name__)

SECRET_ENV = "ACTR_REALM_SECRET"


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop  # aiortc's per-packet costs fall by 1.5-2x on uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


async def _run(args: argparse.Namespace) -> int:
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


def _message_class(name: str) -> type[Message]:
    try:
        desc = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError as e:
        raise UsageError(f"unknown message type {name!r} (use --import to load its module)") from e
    return message_factory.GetMessageClass(desc)


def _request_bytes(args: argparse.Namespace) -> bytes:
    given = [x is not None for x in (args.data_b64, args.json)]
    if sum(given) > 1:
        raise UsageError("give at most one of --data-b64 and --json")
    if args.json is not None:
        if not args.request_type:
            raise UsageError("--json needs --request-type")
        msg = _message_class(args.request_type)()
        try:
            json_format.Parse(args.json, msg)
        except json_format.ParseError as e:
            raise UsageError(f"--json does not match {args.request_type}: {e}") from e
        return msg.SerializeToString()
    if args.data_b64 is not None:
        try:
            return base64.b64decode(args.data_b64, validate=True)
        except binascii.Error as e:
            raise UsageError(f"--data-b64 is not base64: {e}") from e
    return b""


async def _call(args: argparse.Namespace) -> int:
    for mod in args.imports:
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise UsageError(f"--import {mod}: {e}") from e
    payload = _request_bytes(args)
    response_cls = _message_class(args.response_type) if args.response_type else None
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    client = _client_from_args(args)
    try:
        async with client:
            answer = await client.call_raw(
                args.target, args.route_key, payload, timeout=args.timeout
            )
    except ActrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if response_cls is not None:
        reply = response_cls()
        try:
            reply.ParseFromString(answer)
        except DecodeError:
            print(f"error: the answer is not a {args.response_type}", file=sys.stderr)
            return 1
        print(json_format.MessageToJson(reply, indent=None, preserving_proto_field_name=True))
    else:
        print(base64.b64encode(answer).decode())
    return 0


def _client_from_args(args: argparse.Namespace) -> Node:
    """A client node from --config / --signaling / --realm / the realm secret's sources."""
    if args.realm_secret is not None:
        # F14: an argument is in the process list (ps, /proc) for every local user.
        raise UsageError(
            "--realm-secret is not accepted: a secret on the command line is visible to "
            f"every user of this machine; use {SECRET_ENV}=..., --realm-secret-file FILE "
            "or --config actr.toml"
        )
    urls: list[str] = [args.signaling] if args.signaling else []
    realm, secret, hosts = args.realm, "", None
    if args.realm_secret_file:
        secret = config_mod.read_secret_file(Path(args.realm_secret_file), "--realm-secret-file")
    if args.config:
        cfg = config_mod.load(args.config)
        urls = urls or cfg.signaling.all_urls()
        realm = realm if realm is not None else cfg.signaling.realm
        secret = secret or cfg.signaling.realm_secret
        hosts = cfg.transport.host_addresses
    secret = secret or os.environ.get(SECRET_ENV, "")
    if not secret:
        raise UsageError(
            f"no realm secret: use --realm-secret-file FILE, --config actr.toml or {SECRET_ENV}"
        )
    if args.host_address:
        hosts = args.host_address
    if args.caller_type:
        try:
            parse_type(args.caller_type)
        except IdentityError as e:
            raise UsageError(f"--caller-type: {e}") from e
    return connect(
        urls or ["http://127.0.0.1:8081"],
        realm=realm if realm is not None else 1,
        realm_secret=secret,
        actr_type=args.caller_type or CLIENT_TYPE,
        host_addresses=hosts,
    )


async def _discover(args: argparse.Namespace) -> int:
    try:
        async with _client_from_args(args) as client:
            types = await client.signaling.discover(args.manufacturer or "", args.limit)
    except ActrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for t in types:
        print(type_text(t))
    return 0


def _add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="take signaling settings from this actr.toml")
    p.add_argument("--signaling", help="signaling server URL")
    p.add_argument("--realm", type=int)
    p.add_argument(
        "--realm-secret-file",
        help=f"read the realm secret from this file (else --config, else ${SECRET_ENV})",
    )
    # Refused with a message (F14): kept only to say why and what to use instead.
    p.add_argument("--realm-secret", help=argparse.SUPPRESS)
    p.add_argument(
        "--caller-type",
        help=f"register as this actor type (default {CLIENT_TYPE}), e.g. one that an "
        "actor's ACL or [admin] stats_from names",
    )
    p.add_argument(
        "--host-address",
        action="append",
        help="ICE host address to use (repeatable), e.g. 127.0.0.1",
    )


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

    call = sub.add_parser("call", help="call an actor and print its answer")
    call.add_argument("target", help="actor type (acme:echo:1.0) or id (1f@1/acme:echo:1.0)")
    call.add_argument("route_key", help="package.Service.Method")
    call.add_argument("--data-b64", help="request payload, base64")
    call.add_argument("--json", help="request as JSON, encoded as --request-type")
    call.add_argument("--request-type", help="protobuf message name of the request")
    call.add_argument("--response-type", help="print the answer as JSON of this message type")
    call.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        help="Python module that defines the message types (repeatable)",
    )
    _add_connection_args(call)
    call.add_argument("--timeout", type=float, default=10.0)

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
    _add_connection_args(discover)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        logs.setup(args.log_level or "WARNING", args.log_format or "text")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "check":
        return check.main(args.config)
    if args.command in ("call", "discover"):
        sys.path.insert(0, str(Path.cwd()))
    try:
        if args.command == "run":
            return _run_loop(_run(args))
        if args.command == "discover":
            return _run_loop(_discover(args))
        if args.command in ("mailbox", "dlq"):
            return asyncio.run(mailbox_command(args))
        return _run_loop(_call(args))
    except (config_mod.ConfigError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
