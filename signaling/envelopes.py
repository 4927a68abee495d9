"""Reading client envelopes and writing the server's answers (PROTOCOL.md SIG-2, SIG-3).

Every answer carries ``envelope_version = 2``, a fresh ``envelope_id`` and the
``reply_for`` of the envelope it answers.
"""

from __future__ import annotations

import uuid

from google.protobuf.message import DecodeError

from actr.errors import ErrorCode
from actr.protocol.actr_pb2 import ActrId, ErrorResponse
from actr.protocol.signaling_pb2 import ActrRelay, SignalingEnvelope, SignalingToActr
from actr.wire import ENVELOPE_VERSION

__all__ = [
    "ENVELOPE_VERSION",
    "EnvelopeDecodeError",
    "decode_envelope",
    "envelope_error",
    "error_to_actr",
    "new_envelope",
    "relay_from_server",
    "to_actr",
]


class EnvelopeDecodeError(Exception):
    """A frame that is not a complete SignalingEnvelope; ``envelope_id`` if one was read."""

    def __init__(self, message: str, envelope_id: str = "") -> None:
        super().__init__(message)
        self.envelope_id = envelope_id


def decode_envelope(data: bytes) -> SignalingEnvelope:
    env = SignalingEnvelope()
    try:
        env.ParseFromString(data)
    except DecodeError as e:
        raise EnvelopeDecodeError(f"frame is not a SignalingEnvelope: {e}") from None
    # upb's parser does not enforce proto2 `required`; actr's decoder does, so we do too.
    if not env.IsInitialized():
        raise EnvelopeDecodeError(
            "envelope or a message in it misses required fields", envelope_id=env.envelope_id
        )
    return env


def new_envelope(reply_for: str = "") -> SignalingEnvelope:
    env = SignalingEnvelope(envelope_version=ENVELOPE_VERSION, envelope_id=uuid.uuid4().hex)
    if reply_for:
        env.reply_for = reply_for
    return env


def envelope_error(code: ErrorCode, message: str, reply_for: str = "") -> bytes:
    env = new_envelope(reply_for)
    env.envelope_error.CopyFrom(ErrorResponse(code=int(code), message=message))
    return env.SerializeToString()


def to_actr(body: SignalingToActr, reply_for: str = "") -> bytes:
    env = new_envelope(reply_for)
    env.server_to_actr.CopyFrom(body)
    return env.SerializeToString()


def error_to_actr(target: ActrId, code: ErrorCode, message: str, reply_for: str = "") -> bytes:
    body = SignalingToActr(target=target)
    body.error.CopyFrom(ErrorResponse(code=int(code), message=message))
    return to_actr(body, reply_for)


def relay_from_server(relay: ActrRelay, reply_for: str = "") -> bytes:
    env = new_envelope(reply_for)
    env.actr_relay.CopyFrom(relay)
    return env.SerializeToString()
