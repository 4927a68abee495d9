"""``actr call`` and ``actr describe``: any actor from a shell, with JSON and no code.

The request and answer types come from the ServiceSpec the actor registered (SIG-6b),
fetched from the signaling server and compiled at run time (actr/descriptors.py):
route ``pkg.Service.Method`` takes the method's input type. ``--import`` with
``--request-type`` / ``--response-type`` still works offline, from Python modules.

Exit codes: 0 answered; 1 the call failed (``error: CODE (n): message``); 2 bad usage
or input: bad JSON, an unknown field, a route the spec does not have (nothing sent).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import importlib
import json
import sys
from typing import TYPE_CHECKING

from actr.cli_connect import UsageError, client_from_args

if TYPE_CHECKING:
    from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

    from actr.descriptors import SpecTypes
    from actr.node import Node

__all__ = ["RUNTIME_ROUTES", "call", "describe", "describe_text", "spec_types_of"]

# Routes the runtime answers itself (EXT-1) with JSON; no spec names them.
RUNTIME_ROUTES = ("actr.v1.Runtime.",)


def _request_text(args: argparse.Namespace) -> str | None:
    """The request JSON: the positional argument (``-``: standard input) or --json."""
    given = [x for x in (args.request, args.json) if x is not None]
    if len(given) > 1:
        raise UsageError("give the request once: as an argument, on stdin (-) or --json")
    if args.data_b64 is not None and given:
        raise UsageError("give at most one of --data-b64 and a JSON request")
    if not given:
        return None
    text: str = given[0]
    if text == "-":
        text = sys.stdin.read()
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"the request is not JSON: {e}") from None
    return text


def _raw_payload(args: argparse.Namespace) -> bytes:
    if args.data_b64 is None:
        return b""
    try:
        return base64.b64decode(args.data_b64, validate=True)
    except binascii.Error as e:
        raise UsageError(f"--data-b64 is not base64: {e}") from e


def _target_name(target: str) -> str:
    """The spec's name: its actor type's name (acme:echo:1.0 and 1f@1/acme:echo:1.0: echo)."""
    from actr.errors import InvalidArgument
    from actr.identity import IdentityError, parse_id, parse_type

    try:
        return parse_id(target).type.name if "@" in target else parse_type(target).name
    except IdentityError as e:
        # As the runtime answers a call to it (INVALID_ARGUMENT, exit 1).
        raise InvalidArgument(f"target {target!r}: {e}") from None


async def spec_types_of(client: Node, target: str) -> SpecTypes:
    """The compiled ServiceSpec of ``target``'s type (NotFound: it registered none)."""
    from actr.descriptors import SpecTypes

    spec = await client.signaling.service_spec_of(_target_name(target))
    return SpecTypes.from_spec(spec)


def _print_answer(answer: bytes, runtime: bool) -> None:
    if runtime:
        try:
            print(answer.decode())  # the runtime's routes answer JSON
            return
        except UnicodeDecodeError:
            pass
    print(base64.b64encode(answer).decode())


async def call(args: argparse.Namespace) -> int:
    from actr.descriptors import SpecError
    from actr.errors import ActrError

    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    text = _request_text(args)
    if args.imports or args.request_type or args.response_type:
        return await _call_offline(args, text)
    runtime = args.route_key.startswith(RUNTIME_ROUTES)
    types: SpecTypes | None = None
    try:
        _target_name(args.target)
        async with client_from_args(args) as client:
            payload = _raw_payload(args)
            route = None
            if not runtime:
                try:
                    types = await spec_types_of(client, args.target)
                except ActrError as e:
                    if text is None:
                        types = None  # raw bytes need no spec
                    else:
                        raise UsageError(
                            f"{e.message}: {args.target} registered no service spec; "
                            "give --import MODULE --request-type TYPE, or --data-b64"
                        ) from None
                if types is not None:
                    route = types.routes.get(args.route_key)
                    if route is None and text is not None:
                        known = ", ".join(sorted(types.routes)) or "none"
                        raise UsageError(
                            f"{args.target} has no route {args.route_key} in its service "
                            f"spec (its routes: {known})"
                        )
                    if route is not None and args.data_b64 is None:
                        payload = types.encode_json(route.request, text or "{}")
            answer = await client.call_raw(
                args.target, args.route_key, payload, timeout=args.timeout
            )
            if route is not None and types is not None:
                print(types.decode_json(route.response, answer))
            else:
                _print_answer(answer, runtime)
    except SpecError as e:
        raise UsageError(str(e)) from None
    except ActrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


async def _call_offline(args: argparse.Namespace, text: str | None) -> int:
    """The request and answer types from Python modules (--import), no spec."""
    from google.protobuf import descriptor_pool, json_format, message_factory
    from google.protobuf.message import DecodeError, Message

    from actr.errors import ActrError

    for mod in args.imports:
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise UsageError(f"--import {mod}: {e}") from e

    def message_class(name: str) -> type[Message]:
        try:
            desc = descriptor_pool.Default().FindMessageTypeByName(name)
        except KeyError as e:
            raise UsageError(
                f"unknown message type {name!r} (use --import to load its module)"
            ) from e
        return message_factory.GetMessageClass(desc)

    payload = _raw_payload(args)
    if text is not None:
        if not args.request_type:
            raise UsageError("--json needs --request-type")
        msg = message_class(args.request_type)()
        try:
            json_format.Parse(text, msg)
        except json_format.ParseError as e:
            raise UsageError(f"the request does not fit {args.request_type}: {e}") from e
        payload = msg.SerializeToString()
    response_cls = message_class(args.response_type) if args.response_type else None
    try:
        async with client_from_args(args) as client:
            answer = await client.call_raw(
                args.target, args.route_key, payload, timeout=args.timeout
            )
    except ActrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if response_cls is None:
        _print_answer(answer, args.route_key.startswith(RUNTIME_ROUTES))
        return 0
    reply = response_cls()
    try:
        reply.ParseFromString(answer)
    except DecodeError:
        print(f"error: the answer is not a {args.response_type}", file=sys.stderr)
        return 1
    print(json_format.MessageToJson(reply, indent=None, preserving_proto_field_name=True))
    return 0


async def describe(args: argparse.Namespace) -> int:
    from actr.descriptors import SpecError
    from actr.errors import ActrError

    try:
        async with client_from_args(args) as client:
            spec = await client.signaling.service_spec_of(_target_name(args.target))
    except ActrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    from actr.descriptors import SpecTypes

    try:
        types = SpecTypes.from_spec(spec)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.target}: service spec {spec.name} ({spec.fingerprint})")
    print(describe_text(types, args.symbol), end="")
    return 0


def describe_text(types: SpecTypes, symbol: str | None = None) -> str:
    """The routes (or the one named ``symbol``), then each message and enum they use."""
    routes = [r for k, r in sorted(types.routes.items()) if symbol in (None, k)]
    out: list[str] = []
    roots: list[Descriptor] = []
    for r in routes:
        out += [
            "",
            r.key,
            f"  request:  {r.request.full_name}",
            f"  response: {r.response.full_name}",
        ]
        roots += [r.request, r.response]
    if symbol is not None and not routes:
        roots.append(types.message(symbol))
    messages, enums = _reachable(roots)
    for m in messages:
        out += ["", *_message_lines(m)]
    for e in enums:
        out += ["", f"enum {e.full_name} {{"]
        out += [f"  {v.name} = {v.number};" for v in e.values]
        out.append("}")
    return "\n".join(out) + "\n"


def _reachable(roots: list[Descriptor]) -> tuple[list[Descriptor], list[EnumDescriptor]]:
    messages: dict[str, Descriptor] = {}
    enums: dict[str, EnumDescriptor] = {}
    todo = list(roots)
    while todo:
        m = todo.pop()
        if m.full_name in messages or m.GetOptions().map_entry:
            continue
        messages[m.full_name] = m
        for f in m.fields:
            if f.message_type is not None:
                entry = f.message_type
                if entry.GetOptions().map_entry:
                    todo += [x.message_type for x in entry.fields if x.message_type]
                    enums.update(
                        {x.enum_type.full_name: x.enum_type for x in entry.fields if x.enum_type}
                    )
                else:
                    todo.append(entry)
            if f.enum_type is not None:
                enums[f.enum_type.full_name] = f.enum_type
    return [messages[k] for k in sorted(messages)], [enums[k] for k in sorted(enums)]


def _type_of(f: FieldDescriptor) -> str:
    from actr.proto_text import SCALARS

    if f.message_type is not None:
        return f.message_type.full_name
    if f.enum_type is not None:
        return f.enum_type.full_name
    return next(name for name, number in SCALARS.items() if number == f.type)


def _message_lines(m: Descriptor) -> list[str]:
    out = [f"message {m.full_name} {{"]
    for f in m.fields:
        entry = f.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
            out.append(f"  map<{_type_of(key)}, {_type_of(value)}> {f.name} = {f.number};")
            continue
        label = "repeated " if f.is_repeated else ""
        if f.is_required:
            label = "required "
        oneof = f.containing_oneof
        synthetic = oneof is not None and oneof.name.startswith("_")  # proto3 `optional`
        if not label and f.has_presence and f.message_type is None and (oneof is None or synthetic):
            label = "optional "
        where = f"  // oneof {oneof.name}" if oneof is not None and not synthetic else ""
        out.append(f"  {label}{_type_of(f)} {f.name} = {f.number};{where}")
    return [*out, "}"]
