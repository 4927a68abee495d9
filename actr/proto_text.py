"""A .proto text parser: the text of a ServiceSpec (SIG-6b) to ``FileDescriptorProto``s.

A caller learns an actor's messages from the .proto text the actor registered, at
run time and without protoc (grpc_tools is a development dependency only). This
covers what a service definition uses: ``syntax``, ``package``, ``import``,
messages (nested, ``oneof``, ``map<,>``, proto2 labels and defaults, proto3
``optional``), enums and services; options, ``reserved``, ``extensions`` and
``extend`` blocks are read past, since encoding JSON needs none of them. Groups
and editions are refused with a message. One recursive-descent parser over one token
list, about 440 lines: split, its parts would share the parser's whole state.

One text may hold several files one after another (our renderer joins the files of
a package, each opened by a ``// name.proto`` comment and its ``syntax``). Type names
are left as written; ``actr.descriptors`` resolves them across every file of the
spec (``Unresolved`` records where each one was found).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    EnumDescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
    MethodDescriptorProto,
)

__all__ = ["SCALARS", "ProtoSyntaxError", "Unresolved", "parse_files"]

F = FieldDescriptorProto
SCALARS = {
    "double": F.TYPE_DOUBLE,
    "float": F.TYPE_FLOAT,
    "int64": F.TYPE_INT64,
    "uint64": F.TYPE_UINT64,
    "int32": F.TYPE_INT32,
    "fixed64": F.TYPE_FIXED64,
    "fixed32": F.TYPE_FIXED32,
    "bool": F.TYPE_BOOL,
    "string": F.TYPE_STRING,
    "bytes": F.TYPE_BYTES,
    "uint32": F.TYPE_UINT32,
    "sfixed32": F.TYPE_SFIXED32,
    "sfixed64": F.TYPE_SFIXED64,
    "sint32": F.TYPE_SINT32,
    "sint64": F.TYPE_SINT64,
}
_LABELS = {"optional": F.LABEL_OPTIONAL, "required": F.LABEL_REQUIRED, "repeated": F.LABEL_REPEATED}

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<comment>//[^\n]*|/\*.*?\*/)
    |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<number>(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
    |(?P<ident>\.?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)
    |(?P<symbol>[{}\[\]()<>;=,:\-+])""",
    re.VERBOSE | re.DOTALL,
)
_FILE_COMMENT = re.compile(r"//\s*(\S+\.proto)\s*$")


class ProtoSyntaxError(ValueError):
    """The text is not .proto we can read; the message says where."""


@dataclass
class Unresolved:
    """A type name as written, the scope it was written in, and where its answer goes."""

    name: str
    scope: str  # the full name of the enclosing message, or the package
    assign: Callable[[str, bool], None]  # (full name with its leading dot, is an enum)


@dataclass
class _Token:
    kind: str
    text: str
    line: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ProtoSyntaxError(f"line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "space":
            out.append(_Token(kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return out


def _camel(name: str) -> str:
    """protoc's map entry name: ``my_field`` -> ``MyField``."""
    parts = name.split("_")
    return "".join(p[:1].upper() + p[1:] for p in parts)


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return body.encode("latin-1", "backslashreplace").decode("unicode_escape")


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.files: list[FileDescriptorProto] = []
        self.unresolved: list[Unresolved] = []
        self.file: FileDescriptorProto | None = None

    # -- tokens ------------------------------------------------------------------

    def _skip_comments(self) -> str | None:
        last = None
        while self.i < len(self.toks) and self.toks[self.i].kind == "comment":
            last = self.toks[self.i].text
            self.i += 1
        return last

    def peek(self) -> _Token | None:
        self._skip_comments()
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise ProtoSyntaxError("unexpected end of text")
        self.i += 1
        return tok

    def fail(self, tok: _Token, wanted: str) -> ProtoSyntaxError:
        return ProtoSyntaxError(f"line {tok.line}: expected {wanted}, found {tok.text!r}")

    def expect(self, text: str) -> _Token:
        tok = self.next()
        if tok.text != text:
            raise self.fail(tok, repr(text))
        return tok

    def ident(self) -> str:
        tok = self.next()
        if tok.kind != "ident":
            raise self.fail(tok, "a name")
        return tok.text

    def integer(self) -> int:
        tok = self.next()
        sign = 1
        if tok.text in "-+":
            sign = -1 if tok.text == "-" else 1
            tok = self.next()
        if tok.kind != "number":
            raise self.fail(tok, "a number")
        text = tok.text
        if text.lower().startswith("0x"):
            return sign * int(text, 16)
        if len(text) > 1 and text.startswith("0") and text.isdigit():
            return sign * int(text, 8)
        if not text.isdigit():
            raise self.fail(tok, "an integer")
        return sign * int(text)

    def skip_statement(self) -> None:
        """Past the next ``;`` at this depth (or a ``{...}`` block), for what we ignore."""
        depth = 0
        while True:
            tok = self.next()
            if tok.text == "{":
                depth += 1
            elif tok.text == "}":
                depth -= 1
                if depth == 0:
                    if (nxt := self.peek()) is not None and nxt.text == ";":
                        self.i += 1
                    return
            elif tok.text == ";" and depth == 0:
                return

    # -- files -------------------------------------------------------------------

    def current(self) -> FileDescriptorProto:
        if self.file is None:
            self.file = FileDescriptorProto(name=f"spec_{len(self.files)}.proto")
            self.files.append(self.file)
        return self.file

    def parse(self) -> list[FileDescriptorProto]:
        while True:
            comment = self._skip_comments()
            tok = self.peek()
            if tok is None:
                return self.files
            word = tok.text
            if word in ("syntax", "edition"):
                self.i += 1
                self.expect("=")
                value = self.next()
                self.expect(";")
                if word == "edition":
                    raise ProtoSyntaxError(f"line {tok.line}: editions are not supported")
                m = _FILE_COMMENT.match(comment or "")
                name = m.group(1) if m else f"spec_{len(self.files)}.proto"
                self.file = FileDescriptorProto(name=name, syntax=_unquote(value.text))
                self.files.append(self.file)
            elif word == "package":
                self.i += 1
                self.current().package = self.ident().lstrip(".")
                self.expect(";")
            elif word == "import":
                self.i += 1
                target = self.next()
                if target.text in ("public", "weak"):
                    target = self.next()
                if target.kind != "string":
                    raise self.fail(target, "a file name")
                self.current().dependency.append(_unquote(target.text))
                self.expect(";")
            elif word == "message":
                self.i += 1
                f = self.current()
                self.message(f.message_type.add(), f.package)
            elif word == "enum":
                self.i += 1
                self.enum(self.current().enum_type.add())
            elif word == "service":
                self.i += 1
                self.service()
            elif word in ("option", "extend"):
                self.skip_statement()
            elif word == ";":
                self.i += 1
            else:
                raise self.fail(tok, "a top-level definition")

    # -- definitions ---------------------------------------------------------------

    def message(self, msg: DescriptorProto, outer: str) -> None:
        msg.name = self.ident()
        scope = f"{outer}.{msg.name}" if outer else msg.name
        self.expect("{")
        proto3 = self.current().syntax == "proto3"
        synthetic: list[FieldDescriptorProto] = []
        while (tok := self.next()).text != "}":
            word = tok.text
            if word == "message":
                self.message(msg.nested_type.add(), scope)
            elif word == "enum":
                self.enum(msg.enum_type.add())
            elif word == "oneof":
                index = len(msg.oneof_decl)
                msg.oneof_decl.add(name=self.ident())
                self.expect("{")
                while (inner := self.next()).text != "}":
                    if inner.text == "option":
                        self.skip_statement()
                    elif inner.text != ";":
                        field = msg.field.add(label=F.LABEL_OPTIONAL, oneof_index=index)
                        self.field(field, inner, scope)
            elif word == "map":
                self.map_field(msg, scope)
            elif word in ("option", "reserved", "extensions", "extend"):
                self.i -= 1
                self.skip_statement()
            elif word == ";":
                continue
            else:
                field = msg.field.add()
                label = _LABELS.get(word)
                if label is None:
                    field.label = F.LABEL_OPTIONAL
                    self.field(field, tok, scope)
                else:
                    field.label = label
                    self.field(field, self.next(), scope)
                    if word == "optional" and proto3:
                        field.proto3_optional = True
                        synthetic.append(field)
        # proto3 `optional` fields each sit in a synthetic oneof, after the real ones.
        for field in synthetic:
            field.oneof_index = len(msg.oneof_decl)
            msg.oneof_decl.add(name=f"_{field.name}")

    def field(self, field: FieldDescriptorProto, type_tok: _Token, scope: str) -> None:
        if type_tok.text == "group":
            raise ProtoSyntaxError(f"line {type_tok.line}: groups are not supported")
        if type_tok.kind != "ident":
            raise self.fail(type_tok, "a field type")
        field.name = self.ident()
        self.expect("=")
        field.number = self.integer()
        self.set_type(field, type_tok.text, scope)
        if (tok := self.peek()) is not None and tok.text == "[":
            self.i += 1
            self.field_options(field)
        self.expect(";")

    def set_type(self, field: FieldDescriptorProto, name: str, scope: str) -> None:
        if name in SCALARS:
            field.type = SCALARS[name]
            return

        def assign(full: str, is_enum: bool) -> None:
            field.type_name = full
            field.type = F.TYPE_ENUM if is_enum else F.TYPE_MESSAGE

        self.unresolved.append(Unresolved(name, scope, assign))

    def field_options(self, field: FieldDescriptorProto) -> None:
        while True:
            name = self.next()
            if name.text == "(":  # a custom option: (name).path
                while self.next().text != ")":
                    pass
                while (tok := self.next()).text != "=":
                    if tok.kind not in ("ident",):
                        raise self.fail(tok, "=")
            else:
                self.expect("=")
            value = self.next()
            if value.text in "-+":
                value = _Token(value.kind, value.text + self.next().text, value.line)
            if value.text == "{":  # an aggregate value
                self.i -= 1
                depth = 0
                while True:
                    tok = self.next()
                    depth += {"{": 1, "}": -1}.get(tok.text, 0)
                    if depth == 0:
                        break
            if name.text == "default":
                if value.kind == "string":
                    raw = value.text[1:-1]
                    # bytes defaults stay C-escaped, as protoc stores them
                    field.default_value = (
                        raw if field.type == F.TYPE_BYTES else _unquote(value.text)
                    )
                else:
                    field.default_value = value.text
            elif name.text == "json_name" and value.kind == "string":
                field.json_name = _unquote(value.text)
            elif name.text == "packed":
                field.options.packed = value.text == "true"
            sep = self.next()
            if sep.text == "]":
                return
            if sep.text != ",":
                raise self.fail(sep, "',' or ']'")

    def map_field(self, msg: DescriptorProto, scope: str) -> None:
        self.expect("<")
        key_tok = self.next()
        self.expect(",")
        value_tok = self.next()
        self.expect(">")
        field = msg.field.add(label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE)
        field.name = self.ident()
        self.expect("=")
        field.number = self.integer()
        if (tok := self.peek()) is not None and tok.text == "[":
            self.i += 1
            self.field_options(field)
        self.expect(";")
        entry = msg.nested_type.add(name=_camel(field.name) + "Entry")
        entry.options.map_entry = True
        field.type_name = f".{scope}.{entry.name}"
        for number, name, tok in ((1, "key", key_tok), (2, "value", value_tok)):
            part = entry.field.add(name=name, number=number, label=F.LABEL_OPTIONAL)
            self.set_type(part, tok.text, scope)

    def enum(self, enum: EnumDescriptorProto) -> None:
        enum.name = self.ident()
        self.expect("{")
        while (tok := self.next()).text != "}":
            if tok.text == "option":
                self.i -= 1
                start = self.i
                self.skip_statement()
                if any(t.text == "allow_alias" for t in self.toks[start : self.i]):
                    enum.options.allow_alias = True
            elif tok.text == "reserved":
                self.i -= 1
                self.skip_statement()
            elif tok.text != ";":
                if tok.kind != "ident":
                    raise self.fail(tok, "an enum value")
                self.expect("=")
                enum.value.add(name=tok.text, number=self.integer())
                if (nxt := self.peek()) is not None and nxt.text == "[":
                    while self.next().text != "]":
                        pass
                self.expect(";")

    def service(self) -> None:
        f = self.current()
        svc = f.service.add(name=self.ident())
        self.expect("{")
        while (tok := self.next()).text != "}":
            if tok.text == "option":
                self.i -= 1
                self.skip_statement()
            elif tok.text == "rpc":
                method = svc.method.add(name=self.ident())
                method.client_streaming, method.input_type = self.rpc_type(method, "input")
                self.expect("returns")
                method.server_streaming, method.output_type = self.rpc_type(method, "output")
                end = self.next()
                if end.text == "{":
                    self.i -= 1
                    self.skip_statement()
                elif end.text != ";":
                    raise self.fail(end, "';' or '{'")
            elif tok.text != ";":
                raise self.fail(tok, "rpc")

    def rpc_type(self, method: MethodDescriptorProto, which: str) -> tuple[bool, str]:
        self.expect("(")
        streaming = False
        name = self.ident()
        if name == "stream" and (tok := self.peek()) is not None and tok.text != ")":
            streaming, name = True, self.ident()
        self.expect(")")

        def assign(full: str, is_enum: bool) -> None:
            setattr(method, f"{which}_type", full)

        self.unresolved.append(Unresolved(name, self.current().package, assign))
        return streaming, name


def parse_files(text: str) -> tuple[list[FileDescriptorProto], list[Unresolved]]:
    """The files in ``text`` and the type names they leave to resolve."""
    parser = _Parser(text)
    files = parser.parse()
    return files, parser.unresolved
