"""An actor's message types and routes at run time, from the ServiceSpec it registered.

``SpecTypes.from_spec(spec)`` parses the .proto text of every package in the spec
(``actr.proto_text``), resolves type names across all of them the way protoc does
(innermost scope first), adds the files to a fresh ``DescriptorPool`` (imports are
recomputed from what each file references, so a spec whose import lines name files
it does not carry still loads; well-known ``google.protobuf`` types come from the
protobuf library, as the renderer leaves them out), and reads the routes off the
services: route ``package.Service.Method`` takes the method's input type and answers
its output type (as actr's route keys are formed).

JSON in and out follows protobuf's JSON mapping with the .proto field names; an
unknown field or a value of the wrong type is a ``SpecError`` naming it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.message import DecodeError, Message

from actr.proto_text import ProtoSyntaxError, Unresolved, parse_files
from actr.protocol.actr_pb2 import ServiceSpec

__all__ = ["Route", "SpecError", "SpecTypes"]

# Modules that define the well-known types (the renderer does not send them).
_WELL_KNOWN = {
    "Any": "any_pb2",
    "Duration": "duration_pb2",
    "Empty": "empty_pb2",
    "FieldMask": "field_mask_pb2",
    "Struct": "struct_pb2",
    "Value": "struct_pb2",
    "ListValue": "struct_pb2",
    "NullValue": "struct_pb2",
    "Timestamp": "timestamp_pb2",
    **{
        name: "wrappers_pb2"
        for name in (
            "DoubleValue",
            "FloatValue",
            "Int64Value",
            "UInt64Value",
            "Int32Value",
            "UInt32Value",
            "BoolValue",
            "StringValue",
            "BytesValue",
        )
    },
}


class SpecError(ValueError):
    """A spec that does not load, or a request that does not fit its types."""


@dataclass(frozen=True)
class Route:
    key: str  # package.Service.Method
    request: Descriptor
    response: Descriptor
    client_streaming: bool = False
    server_streaming: bool = False


class SpecTypes:
    """The descriptors and routes of one ServiceSpec."""

    def __init__(self, files: list[FileDescriptorProto], name: str = "") -> None:
        self.name = name
        self.pool = descriptor_pool.DescriptorPool()
        self._added: set[str] = set()
        by_name = {f.name: f for f in files}
        for f in files:
            self._add(f, by_name)
        self.routes: dict[str, Route] = {}
        for f in files:
            for svc in f.service:
                for m in svc.method:
                    key = ".".join(p for p in (f.package, svc.name, m.name) if p)
                    self.routes[key] = Route(
                        key,
                        self.message(m.input_type),
                        self.message(m.output_type),
                        m.client_streaming,
                        m.server_streaming,
                    )

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> SpecTypes:
        return cls.from_texts((p.content for p in spec.protobufs), name=spec.name)

    @classmethod
    def from_texts(cls, texts: Iterable[str], name: str = "") -> SpecTypes:
        files: list[FileDescriptorProto] = []
        unresolved: list[Unresolved] = []
        try:
            for text in texts:
                parsed, names = parse_files(text)
                files += parsed
                unresolved += names
        except ProtoSyntaxError as e:
            raise SpecError(f"service spec {name!r} does not parse: {e}") from None
        _dedupe_names(files)
        _resolve(files, unresolved)
        return cls(files, name)

    def _add(self, f: FileDescriptorProto, by_name: dict[str, FileDescriptorProto]) -> None:
        if f.name in self._added:
            return
        for dep in f.dependency:
            if dep in by_name:
                self._add(by_name[dep], by_name)
            else:
                self._add(_well_known_file(dep), by_name)
        try:
            self.pool.Add(f)
        except (TypeError, ValueError) as e:
            raise SpecError(f"service spec {self.name!r}: {f.name} does not load: {e}") from None
        self._added.add(f.name)

    def message(self, full_name: str) -> Descriptor:
        try:
            return self.pool.FindMessageTypeByName(full_name.lstrip("."))
        except KeyError:
            raise SpecError(f"no message type {full_name.lstrip('.')!r} in the spec") from None

    def message_class(self, desc: Descriptor) -> type[Message]:
        return message_factory.GetMessageClass(desc)

    def encode_json(self, desc: Descriptor, text: str) -> bytes:
        """``text`` (a JSON object) as the binary encoding of ``desc``; SpecError if not."""
        try:
            value = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as e:
            raise SpecError(f"the request is not JSON: {e}") from None
        if not isinstance(value, dict):
            raise SpecError(f"the request must be a JSON object for {desc.full_name}")
        msg = self.message_class(desc)()
        try:
            json_format.ParseDict(value, msg)
        except json_format.ParseError as e:
            raise SpecError(f"the request does not fit {desc.full_name}: {e}") from None
        return msg.SerializeToString()

    def decode_json(self, desc: Descriptor, data: bytes, indent: int | None = None) -> str:
        msg = self.message_class(desc)()
        try:
            msg.ParseFromString(data)
        except DecodeError:
            raise SpecError(f"the answer is not a {desc.full_name}") from None
        return json_format.MessageToJson(msg, indent=indent, preserving_proto_field_name=True)


def _dedupe_names(files: list[FileDescriptorProto]) -> None:
    """Two files of one name (texts without ``// name.proto``) get distinct names."""
    seen: set[str] = set()
    for i, f in enumerate(files):
        if f.name in seen:
            f.name = f"{f.name.removesuffix('.proto')}_{i}.proto"
        seen.add(f.name)


def _symbols(files: list[FileDescriptorProto]) -> tuple[dict[str, str], dict[str, str]]:
    """(full name -> 'message' | 'enum' | 'package', full type name -> its file)."""
    kinds: dict[str, str] = {}
    owner: dict[str, str] = {}

    def walk(prefix: str, messages: Iterable[object], enums: Iterable[object], fname: str) -> None:
        for e in enums:
            full = f"{prefix}{e.name}"  # type: ignore[attr-defined]
            kinds[full], owner[full] = "enum", fname
        for m in messages:
            full = f"{prefix}{m.name}"  # type: ignore[attr-defined]
            kinds[full], owner[full] = "message", fname
            walk(full + ".", m.nested_type, m.enum_type, fname)  # type: ignore[attr-defined]

    for f in files:
        parts = f.package.split(".") if f.package else []
        for i in range(len(parts)):
            kinds.setdefault(".".join(parts[: i + 1]), "package")
        walk(f"{f.package}." if f.package else "", f.message_type, f.enum_type, f.name)
    return kinds, owner


def _lookup(name: str, scope: str, kinds: dict[str, str]) -> str | None:
    bare = name.lstrip(".")
    if bare.startswith("google.protobuf.") and bare.rsplit(".", 1)[1] in _WELL_KNOWN:
        return bare
    if name.startswith("."):
        return bare if bare in kinds else None
    first, _, rest = name.partition(".")
    parts = scope.split(".") if scope else []
    for i in range(len(parts), -1, -1):
        base = ".".join([*parts[:i], first])
        if base in kinds:
            full = f"{base}.{rest}" if rest else base
            return full if full in kinds else None
    return None


def _resolve(files: list[FileDescriptorProto], unresolved: list[Unresolved]) -> None:
    kinds, owner = _symbols(files)
    for item in unresolved:
        full = _lookup(item.name, item.scope, kinds)
        if full is None or kinds.get(full, "message") == "package":
            raise SpecError(
                f"type {item.name!r} (used in {item.scope or 'the spec'}) is not defined"
            )
        is_enum = kinds.get(full) == "enum" or full == "google.protobuf.NullValue"
        item.assign("." + full, is_enum)
    # Imports are what each file references, not what its text said.
    for f in files:
        refs: set[str] = set()
        for name in _type_refs(f):
            dep = owner.get(name)
            if dep is None and name.startswith("google.protobuf."):
                dep = _well_known_path(name)
            if dep is not None and dep != f.name:
                refs.add(dep)
        del f.dependency[:]
        f.dependency.extend(sorted(refs))


def _type_refs(f: FileDescriptorProto) -> list[str]:
    out: list[str] = []

    def walk(messages: Iterable[object]) -> None:
        for m in messages:
            out.extend(x.type_name.lstrip(".") for x in m.field if x.type_name)  # type: ignore[attr-defined]
            walk(m.nested_type)  # type: ignore[attr-defined]

    walk(f.message_type)
    for svc in f.service:
        for m in svc.method:
            out += [m.input_type.lstrip("."), m.output_type.lstrip(".")]
    return out


def _well_known_path(full: str) -> str:
    module = _WELL_KNOWN[full.rsplit(".", 1)[1]]
    return f"google/protobuf/{module.removesuffix('_pb2')}.proto"


def _well_known_file(path: str) -> FileDescriptorProto:
    module = path.removeprefix("google/protobuf/").removesuffix(".proto") + "_pb2"
    if module not in set(_WELL_KNOWN.values()):
        raise SpecError(f"the spec imports {path}, which it does not carry")
    mod = importlib.import_module(f"google.protobuf.{module}")
    proto = FileDescriptorProto()
    mod.DESCRIPTOR.CopyToProto(proto)
    return proto
