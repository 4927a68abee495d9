"""The ServiceSpec an actor registers (PROTOCOL.md SIG-6b): its packages' .proto text.

A caller without the actor's code learns its messages from this. The text is
written from the compiled descriptors of the handlers' request and response
types (and the files they import), not read from disk: a daemon needs only its
generated modules. Rendering is deterministic, so the fingerprints are stable
across processes: ``sha256:<hex>`` of each package's text, and of the sorted
``package:fingerprint`` lines for the whole spec.
"""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Iterable

from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    EnumDescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
    ServiceDescriptorProto,
)
from google.protobuf.message import Message

from actr.actor import Actor
from actr.protocol.actr_pb2 import ActrType, ServiceSpec

__all__ = [
    "actor_messages",
    "actor_service_spec",
    "build_service_spec",
    "files_of",
    "render_file",
    "route_services",
]

# Well-known types every protobuf library ships; not worth sending.
_SKIP_PACKAGES = frozenset({"google.protobuf"})

_SCALARS = {
    FieldDescriptorProto.TYPE_DOUBLE: "double",
    FieldDescriptorProto.TYPE_FLOAT: "float",
    FieldDescriptorProto.TYPE_INT64: "int64",
    FieldDescriptorProto.TYPE_UINT64: "uint64",
    FieldDescriptorProto.TYPE_INT32: "int32",
    FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    FieldDescriptorProto.TYPE_BOOL: "bool",
    FieldDescriptorProto.TYPE_STRING: "string",
    FieldDescriptorProto.TYPE_BYTES: "bytes",
    FieldDescriptorProto.TYPE_UINT32: "uint32",
    FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    FieldDescriptorProto.TYPE_SINT32: "sint32",
    FieldDescriptorProto.TYPE_SINT64: "sint64",
}


def files_of(messages: Iterable[Descriptor]) -> list[FileDescriptor]:
    """The files defining ``messages`` and every file they import, in a stable order."""
    seen: dict[str, FileDescriptor] = {}
    todo = [m.file for m in messages]
    while todo:
        f = todo.pop()
        if f.name in seen:
            continue
        seen[f.name] = f
        todo.extend(f.dependencies)
    return [seen[name] for name in sorted(seen)]


def build_service_spec(
    name: str, files: Iterable[FileDescriptor], extra: Iterable[FileDescriptorProto] = ()
) -> ServiceSpec:
    """``extra``: files of our own beside the compiled ones (the routes' services)."""
    by_package: dict[str, list[str]] = {}
    protos = []
    for f in files:
        proto = FileDescriptorProto()
        f.CopyToProto(proto)
        protos.append(proto)
    for proto in [*protos, *extra]:
        if proto.package in _SKIP_PACKAGES:
            continue
        by_package.setdefault(proto.package, []).append(render_file(proto))
    spec = ServiceSpec(name=name)
    lines = []
    for package in sorted(by_package):
        content = "\n".join(by_package[package])
        fingerprint = _fingerprint(content)
        spec.protobufs.add(package=package, content=content, fingerprint=fingerprint)
        lines.append(f"{package}:{fingerprint}\n")
    spec.fingerprint = _fingerprint("".join(lines))
    return spec


def _fingerprint(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def render_file(f: FileDescriptorProto) -> str:
    syntax = f.syntax or "proto2"
    out = [f"// {f.name}", f'syntax = "{syntax}";', ""]
    if f.package:
        out += [f"package {f.package};", ""]
    for dep in f.dependency:
        out.append(f'import "{dep}";')
    if f.dependency:
        out.append("")
    for enum in f.enum_type:
        out += _enum(enum, 0)
    for msg in f.message_type:
        out += _message(msg, 0, syntax)
    for svc in f.service:
        out += _service(svc)
    return "\n".join(out).rstrip() + "\n"


def _enum(enum: EnumDescriptorProto, depth: int) -> list[str]:
    pad = "  " * depth
    out = [f"{pad}enum {enum.name} {{"]
    out += [f"{pad}  {v.name} = {v.number};" for v in enum.value]
    return [*out, f"{pad}}}", ""]


def _type_name(field: FieldDescriptorProto) -> str:
    if field.type in _SCALARS:
        return _SCALARS[field.type]
    return field.type_name  # fully qualified, with the leading dot: unambiguous


def _message(msg: DescriptorProto, depth: int, syntax: str) -> list[str]:
    pad = "  " * depth
    out = [f"{pad}message {msg.name} {{"]
    maps = {n.name: n for n in msg.nested_type if n.options.map_entry}
    for enum in msg.enum_type:
        out += _enum(enum, depth + 1)
    for nested in msg.nested_type:
        if not nested.options.map_entry:
            out += _message(nested, depth + 1, syntax)
    oneofs: dict[int, list[FieldDescriptorProto]] = {}
    for field in msg.field:
        real_oneof = field.HasField("oneof_index") and not field.proto3_optional
        if real_oneof:
            oneofs.setdefault(field.oneof_index, []).append(field)
            continue
        out.append(f"{pad}  {_field(field, maps, syntax)}")
    for index, fields in sorted(oneofs.items()):
        out.append(f"{pad}  oneof {msg.oneof_decl[index].name} {{")
        out += [f"{pad}    {_type_name(f)} {f.name} = {f.number};" for f in fields]
        out.append(f"{pad}  }}")
    return [*out, f"{pad}}}", ""]


def _field(field: FieldDescriptorProto, maps: dict[str, DescriptorProto], syntax: str) -> str:
    entry_name = field.type_name.rsplit(".", 1)[-1]
    if field.label == FieldDescriptorProto.LABEL_REPEATED and entry_name in maps:
        key, value = maps[entry_name].field
        return f"map<{_type_name(key)}, {_type_name(value)}> {field.name} = {field.number};"
    label = ""
    if field.label == FieldDescriptorProto.LABEL_REPEATED:
        label = "repeated "
    elif field.label == FieldDescriptorProto.LABEL_REQUIRED:
        label = "required "
    elif syntax == "proto2" or field.proto3_optional:
        label = "optional "
    default = ""
    if field.HasField("default_value"):
        default = f" [default = {_default(field)}]"
    return f"{label}{_type_name(field)} {field.name} = {field.number}{default};"


def _default(field: FieldDescriptorProto) -> str:
    value = field.default_value
    if field.type in (FieldDescriptorProto.TYPE_STRING, FieldDescriptorProto.TYPE_BYTES):
        # default_value holds bytes C-escaped already; strings need their quotes escaped.
        if field.type == FieldDescriptorProto.TYPE_STRING:
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{value}"'
    return value


def _service(svc: ServiceDescriptorProto) -> list[str]:
    out = [f"service {svc.name} {{"]
    for m in svc.method:
        arg = f"stream {m.input_type}" if m.client_streaming else m.input_type
        ret = f"stream {m.output_type}" if m.server_streaming else m.output_type
        out.append(f"  rpc {m.name}({arg}) returns ({ret});")
    return [*out, "}", ""]


def _route_types(
    actor_cls: type[Actor],
) -> dict[str, tuple[Descriptor | None, Descriptor | None, bool, bool]]:
    """route key -> (request, response) message types of an Actor subclass's handlers,
    and whether each is a stream (X-STR-6); None where a handler takes or returns raw
    bytes (or its annotation does not resolve)."""
    out: dict[str, tuple[Descriptor | None, Descriptor | None, bool, bool]] = {}
    for route in actor_cls.routes().values():
        shape = route.shape
        request = None
        if route.request_type is not None:
            request = typing.cast(Descriptor, route.request_type.DESCRIPTOR)
        elif isinstance(shape.stream_in, type) and issubclass(shape.stream_in, Message):
            request = typing.cast(Descriptor, shape.stream_in.DESCRIPTOR)
        fn = getattr(actor_cls, route.method_name)
        try:
            returned = typing.get_type_hints(fn).get("return")
        except Exception:  # an annotation that does not resolve: nothing to learn
            returned = None
        if shape.stream_out is not None:
            returned = shape.stream_out
        response = None
        if isinstance(returned, type) and issubclass(returned, Message):
            response = typing.cast(Descriptor, returned.DESCRIPTOR)
        streams = (shape.stream_in is not None, shape.stream_out is not None)
        out[route.route_key] = (request, response, *streams)
    return out


def actor_messages(actor_cls: type[Actor]) -> list[Descriptor]:
    """Request and response message types of an Actor subclass's handlers."""
    return [d for types in _route_types(actor_cls).values() for d in types[:2] if d is not None]


def route_services(
    actor_cls: type[Actor], files: Iterable[FileDescriptor]
) -> list[FileDescriptorProto]:
    """Services for the routes the actor's .proto files do not declare, one file per
    package: route ``pkg.Service.Method`` becomes ``rpc Method(Request) returns (Reply)``
    in ``service Service`` of package ``pkg``, so a caller without the actor's code
    reads every typed route from the spec (``actr describe``, ``actr call``). Routes
    whose request or answer is raw bytes are left out: they have no message to show."""
    declared = {
        f"{f.package}.{svc.name}.{m.name}".lstrip(".")
        for f in files
        for svc in f.services_by_name.values()
        for m in svc.methods
    }
    by_package: dict[str, FileDescriptorProto] = {}
    for key, (request, response, takes, gives) in sorted(_route_types(actor_cls).items()):
        parts = key.rsplit(".", 2)
        if key in declared or request is None or response is None or len(parts) < 3:
            continue
        package, service, method = parts
        proto = by_package.get(package)
        if proto is None:
            proto = FileDescriptorProto(name=f"{package.replace('.', '/')}/actr_routes.proto")
            proto.package, proto.syntax = package, "proto3"
            by_package[package] = proto
        for dep in (request.file.name, response.file.name):
            if dep not in proto.dependency:
                proto.dependency.append(dep)
        svc = next((s for s in proto.service if s.name == service), None)
        if svc is None:
            svc = proto.service.add(name=service)
        svc.method.add(
            name=method,
            input_type=f".{request.full_name}",
            output_type=f".{response.full_name}",
            client_streaming=takes,
            server_streaming=gives,
        )
    return list(by_package.values())


def actor_service_spec(actor_cls: type[Actor], actr_type: ActrType) -> ServiceSpec | None:
    """The spec an actor registers, named after its type's name as actr's packages are,
    with a service for each typed route; None for an actor whose handlers take and
    return raw bytes only."""
    messages = actor_messages(actor_cls)
    if not messages:
        return None
    files = files_of(messages)
    return build_service_spec(actr_type.name, files, route_services(actor_cls, files))
