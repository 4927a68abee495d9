"""Field shapes that must match the Rust actr runtime (0.5.x) byte for byte; each was
checked against its .proto files. A change here breaks interop, not just a test."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from actr.protocol import actr_pb2, signaling_pb2, webrtc_pb2

T = FieldDescriptor


def field(msg: Descriptor, name: str) -> FieldDescriptor:
    return msg.fields_by_name[name]


@pytest.mark.parametrize(
    ("msg", "name", "number", "type_"),
    [
        (actr_pb2.RpcEnvelope.DESCRIPTOR, "route_key", 1, T.TYPE_STRING),
        (actr_pb2.RpcEnvelope.DESCRIPTOR, "direction", 4, T.TYPE_ENUM),
        (actr_pb2.RpcEnvelope.DESCRIPTOR, "request_id", 102, T.TYPE_STRING),
        (actr_pb2.RpcEnvelope.DESCRIPTOR, "timeout_ms", 104, T.TYPE_INT64),
        (actr_pb2.DataStream.DESCRIPTOR, "sequence", 2, T.TYPE_UINT64),
        (actr_pb2.RegisterRequest.DESCRIPTOR, "auth_mode", 14, T.TYPE_ENUM),
        (webrtc_pb2.SessionDescription.DESCRIPTOR, "sdp_exchange_id", 3, T.TYPE_STRING),
        (signaling_pb2.UnregisterRequest.DESCRIPTOR, "actr_id", 1, T.TYPE_MESSAGE),
        (signaling_pb2.UnregisterRequest.DESCRIPTOR, "reason", 2, T.TYPE_STRING),
        (signaling_pb2.SubscribeActrUpResponse.DESCRIPTOR, "success", 1, T.TYPE_MESSAGE),
        (signaling_pb2.SubscribeActrUpResponse.DESCRIPTOR, "error", 2, T.TYPE_MESSAGE),
        (signaling_pb2.UnregisterResponse.DESCRIPTOR, "error", 2, T.TYPE_MESSAGE),
        (signaling_pb2.Ping.DESCRIPTOR, "availability", 1, T.TYPE_ENUM),
        (signaling_pb2.SignalingEnvelope.DESCRIPTOR, "actr_relay", 13, T.TYPE_MESSAGE),
    ],
)
def test_field_matches_actr(msg: Descriptor, name: str, number: int, type_: int) -> None:
    f = field(msg, name)
    assert (f.number, f.type) == (number, type_)


def test_required_fields_are_written_even_when_zero() -> None:
    # A proto3 encoder would drop these; actr expects them on the wire.
    env = actr_pb2.RpcEnvelope(route_key="", request_id="", timeout_ms=0)
    data = env.SerializeToString()
    assert data == b"\x0a\x00" + b"\xb2\x06\x00" + b"\xc0\x06\x00"  # fields 1, 102, 104
    assert signaling_pb2.DiscoveryRequest().limit == 64  # actr's default
