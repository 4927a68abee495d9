"""ENV-1 / ENV-3 / DC-2: the gate routes on direction and payload type, nothing else."""

from __future__ import annotations

import pytest

from actr.errors import ErrorCode
from actr.gate import HIGH, NORMAL, Chunk, Drop, Enqueue, Gate, Reject, Resolve
from actr.protocol.actr_pb2 import DataStream, Direction, PayloadType, RpcEnvelope


def env(direction: int | None, timeout_ms: int = 1000) -> bytes:
    e = RpcEnvelope(route_key="a.B.C", request_id="r1", timeout_ms=timeout_ms, payload=b"p")
    if direction is not None:
        e.direction = direction  # type: ignore[assignment]
    return e.SerializeToString()


def test_env1_request_and_tell_go_to_the_mailbox_response_to_pending() -> None:
    g = Gate()
    req = g.route(PayloadType.RPC_RELIABLE, env(Direction.DIRECTION_REQUEST))
    assert isinstance(req, Enqueue) and req.priority == NORMAL
    tell = g.route(PayloadType.RPC_RELIABLE, env(Direction.DIRECTION_TELL, timeout_ms=0))
    assert isinstance(tell, Enqueue)
    resp = g.route(PayloadType.RPC_RELIABLE, env(Direction.DIRECTION_RESPONSE, timeout_ms=0))
    assert isinstance(resp, Resolve) and resp.envelope.request_id == "r1"


def test_dc2_signal_channel_requests_are_high_priority() -> None:
    action = Gate().route(PayloadType.RPC_SIGNAL, env(Direction.DIRECTION_REQUEST))
    assert isinstance(action, Enqueue) and action.priority == HIGH


def test_env1_unspecified_direction_is_dropped_and_counted() -> None:
    g = Gate()
    assert g.route(PayloadType.RPC_RELIABLE, env(None)) == Drop("unspecified_direction")
    assert g.drops["unspecified_direction"] == 1


def test_env1_unknown_direction_value_is_dropped_not_guessed() -> None:
    # Field 4 (direction) as varint 9, appended by hand: no such enum value.
    data = env(None) + bytes([4 << 3, 9])
    assert Gate().route(PayloadType.RPC_RELIABLE, data) == Drop("unspecified_direction")


@pytest.mark.parametrize("timeout_ms", [0, -5])
def test_env3_request_without_deadline_is_answered_invalid_argument(timeout_ms: int) -> None:
    action = Gate().route(PayloadType.RPC_RELIABLE, env(Direction.DIRECTION_REQUEST, timeout_ms))
    assert isinstance(action, Reject)
    assert action.code == ErrorCode.INVALID_ARGUMENT


def test_garbage_and_incomplete_envelopes_are_dropped() -> None:
    g = Gate()
    assert g.route(PayloadType.RPC_RELIABLE, b"\xff" * 20) == Drop("envelope_decode_error")
    # Decodes, but the required route_key / request_id / timeout_ms are missing.
    partial = RpcEnvelope(direction=Direction.DIRECTION_REQUEST).SerializePartialToString()
    assert g.route(PayloadType.RPC_RELIABLE, partial) == Drop("envelope_missing_required")


def test_stream_channels_carry_data_stream_chunks() -> None:
    g = Gate()
    chunk = DataStream(stream_id="s", sequence=3, payload=b"x").SerializeToString()
    for ptype in (PayloadType.STREAM_RELIABLE, PayloadType.STREAM_LATENCY_FIRST):
        action = g.route(ptype, chunk)
        assert isinstance(action, Chunk) and action.chunk.sequence == 3
    assert g.route(PayloadType.STREAM_RELIABLE, b"\xff\xff") == Drop("stream_decode_error")


def test_dc2_media_rtp_never_travels_on_a_data_channel() -> None:
    g = Gate()
    assert g.route(PayloadType.MEDIA_RTP, env(Direction.DIRECTION_REQUEST)) == Drop(
        "media_rtp_on_data_channel"
    )
