"""SIG-6b: the .proto text an actor registers compiles back to the same messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.descriptor_pb2 import FileDescriptorProto, FileDescriptorSet
from grpc_tools import protoc

from actr.protocol import actr_pb2, signaling_pb2, webrtc_pb2
from actr.service_spec import actor_messages, build_service_spec, files_of, render_file
from examples import echo_pb2
from examples.echo import Echo


def _compiled(tmp_path: Path, protos: dict[str, str], name: str) -> FileDescriptorProto:
    for path, text in protos.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    out = tmp_path / "set.pb"
    assert protoc.main(["protoc", f"-I{tmp_path}", f"--descriptor_set_out={out}", name]) == 0
    fds = FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    (got,) = [f for f in fds.file if f.name == name]
    return got


def _proto(f: FileDescriptor) -> FileDescriptorProto:
    p = FileDescriptorProto()
    f.CopyToProto(p)
    return p


def _strip(p: FileDescriptorProto) -> FileDescriptorProto:
    """What the text carries: no json names, options or source info."""
    p = FileDescriptorProto.FromString(p.SerializeToString())
    p.ClearField("options")
    p.ClearField("source_code_info")

    def walk(msgs: object) -> None:
        for m in msgs:  # type: ignore[attr-defined]
            for fld in m.field:
                fld.ClearField("json_name")
            walk(m.nested_type)

    walk(p.message_type)
    return p


@pytest.mark.parametrize(
    "module", [echo_pb2, actr_pb2, signaling_pb2, webrtc_pb2], ids=lambda m: m.__name__
)
def test_sig6b_rendered_proto_compiles_to_the_same_descriptor(
    module: object, tmp_path: Path
) -> None:
    target = module.DESCRIPTOR  # type: ignore[attr-defined]
    texts = {
        f.name: render_file(_proto(f)) for f in files_of(target.message_types_by_name.values())
    }
    got = _compiled(tmp_path, texts, target.name)
    assert _strip(got) == _strip(_proto(target))


def test_sig6b_actor_spec_has_its_packages_and_stable_fingerprints() -> None:
    messages = actor_messages(Echo)
    assert echo_pb2.SayRequest.DESCRIPTOR in messages
    assert echo_pb2.SayReply.DESCRIPTOR in messages
    spec = build_service_spec("echo", files_of(messages))
    assert spec.name == "echo"
    assert [p.package for p in spec.protobufs] == ["echo.v1"]
    assert "message SayRequest" in spec.protobufs[0].content
    again = build_service_spec("echo", files_of(actor_messages(Echo)))
    assert again == spec and spec.fingerprint.startswith("sha256:")
    assert spec.IsInitialized()


def test_streaming_routes_are_declared_as_streams() -> None:
    """X-STR-6: a streaming handler's route reads as a streaming rpc in the spec."""
    from actr.identity import parse_type
    from actr.service_spec import actor_service_spec
    from tests.e2e.stream_actors import Numbers

    spec = actor_service_spec(Numbers, parse_type("acme:numbers:1.0"))
    assert spec is not None
    text = next(p.content for p in spec.protobufs if p.package == "numbers.v1")
    assert "rpc Count(.echo.v1.SayRequest) returns (stream .echo.v1.SayReply);" in text
    assert "rpc Sum(stream .echo.v1.SayRequest) returns (.echo.v1.SayReply);" in text
    assert "rpc Echo(stream .echo.v1.SayRequest) returns (stream .echo.v1.SayReply);" in text
