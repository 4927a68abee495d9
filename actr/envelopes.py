"""Building the RESPONSE to a request (ENV-2, ENV-4): the same route_key and
request_id, timeout_ms 0, and exactly one of payload or error."""

from __future__ import annotations

from google.protobuf.message import DecodeError, Message

from actr.errors import ErrorCode
from actr.protocol.actr_pb2 import Direction, ErrorResponse, RpcEnvelope

# Plain values: each ``Direction.X`` is a lookup through protobuf's enum wrapper in
# Python (~1 us), several of them per message on the hot path.
REQUEST = Direction.DIRECTION_REQUEST
RESPONSE = Direction.DIRECTION_RESPONSE
TELL = Direction.DIRECTION_TELL


def payload_answer(request: RpcEnvelope, payload: bytes) -> RpcEnvelope:
    return RpcEnvelope(
        route_key=request.route_key,
        direction=RESPONSE,
        request_id=request.request_id,
        timeout_ms=0,
        payload=payload,
    )


def error_answer(request: RpcEnvelope, code: int, message: str) -> RpcEnvelope:
    return RpcEnvelope(
        route_key=request.route_key,
        direction=RESPONSE,
        request_id=request.request_id,
        timeout_ms=0,
        error=ErrorResponse(code=code, message=message),
    )


def encode(message: Message | bytes) -> bytes:
    """A payload as sent: raw bytes as they are, a message serialized."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def dead_letter_answer(envelope: bytes, reason: str) -> bytes | None:
    """The answer a duplicate of a dead-lettered request gets (MBX-4): INTERNAL
    "dead-lettered: <reason>". None for a TELL (never answered, ENV-5) or a stored
    envelope that does not decode (there is nothing to answer it with)."""
    request = RpcEnvelope()
    try:
        request.ParseFromString(envelope)
    except DecodeError:
        return None
    if request.direction != REQUEST:
        return None
    message = f"dead-lettered: {reason}"
    return error_answer(request, ErrorCode.INTERNAL, message).SerializeToString()
