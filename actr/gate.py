"""The inbound gate (sans-IO): one reassembled message in, one action out.

Routes on the channel's payload type and the envelope's explicit direction
(ENV-1, DC-2): requests and tells go to the mailbox, responses to the pending
table, stream chunks to the stream registry. Nothing is guessed from local
state; what cannot be routed is dropped and counted by reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from actr.errors import ErrorCode
from actr.protocol.actr_pb2 import DataStream, Direction, PayloadType, RpcEnvelope

log = logging.getLogger(__name__)

HIGH = 0
NORMAL = 1

RPC_TYPES = frozenset({PayloadType.RPC_RELIABLE, PayloadType.RPC_SIGNAL})
STREAM_TYPES = frozenset({PayloadType.STREAM_RELIABLE, PayloadType.STREAM_LATENCY_FIRST})


@dataclass(frozen=True)
class Enqueue:
    """A REQUEST or TELL for the mailbox."""

    envelope: RpcEnvelope
    raw: bytes
    priority: int
    payload_type: int


@dataclass(frozen=True)
class Resolve:
    """A RESPONSE for the pending table."""

    envelope: RpcEnvelope


@dataclass(frozen=True)
class Reject:
    """A REQUEST refused before the mailbox; answer it with this error."""

    envelope: RpcEnvelope
    payload_type: int
    code: ErrorCode
    message: str


@dataclass(frozen=True)
class Chunk:
    """A DataStream chunk for the stream registry."""

    chunk: DataStream


@dataclass(frozen=True)
class Drop:
    reason: str


Action = Enqueue | Resolve | Reject | Chunk | Drop


@dataclass
class Gate:
    drops: Counter[str] = field(default_factory=Counter)

    def route(self, payload_type: int, data: bytes) -> Action:
        if payload_type in RPC_TYPES:
            return self._route_rpc(payload_type, data)
        if payload_type in STREAM_TYPES:
            chunk = DataStream()
            try:
                chunk.ParseFromString(data)
            except DecodeError:
                return self._drop("stream_decode_error")
            # The upb backend does not enforce proto2 `required` on parse.
            if not chunk.IsInitialized():
                return self._drop("stream_missing_required")
            if not _text_is_utf8(chunk):
                return self._drop("stream_decode_error")
            return Chunk(chunk)
        if payload_type == PayloadType.MEDIA_RTP:
            return self._drop("media_rtp_on_data_channel")
        return self._drop("unknown_payload_type")

    def _route_rpc(self, payload_type: int, data: bytes) -> Action:
        env = RpcEnvelope()
        try:
            env.ParseFromString(data)
        except DecodeError:
            return self._drop("envelope_decode_error")
        if not env.IsInitialized():
            return self._drop("envelope_missing_required")
        if not _text_is_utf8(env):
            return self._drop("envelope_decode_error")
        direction = env.direction
        priority = HIGH if payload_type == PayloadType.RPC_SIGNAL else NORMAL
        if direction == Direction.DIRECTION_RESPONSE:
            return Resolve(env)
        if direction == Direction.DIRECTION_REQUEST:
            if env.timeout_ms <= 0:
                self.drops["request_without_deadline"] += 1
                return Reject(
                    env,
                    payload_type,
                    ErrorCode.INVALID_ARGUMENT,
                    f"request timeout_ms must be > 0, got {env.timeout_ms}",
                )
            return Enqueue(env, data, priority, payload_type)
        if direction == Direction.DIRECTION_TELL:
            return Enqueue(env, data, priority, payload_type)
        return self._drop("unspecified_direction")

    def _drop(self, reason: str) -> Drop:
        self.drops[reason] += 1
        log.warning("gate_drop reason=%s", reason)
        return Drop(reason)


def _text_is_utf8(msg: Message) -> bool:
    """False if a string field holds invalid UTF-8.

    upb parses such a proto2 field and hands it back as ``bytes``, which breaks
    every later use as ``str`` (building the answer raises); actr's decoder
    rejects it, so it is a decode error here too.
    """
    for fd, value in msg.ListFields():
        values = value if fd.is_repeated else (value,)
        if fd.type == FieldDescriptor.TYPE_STRING and not all(isinstance(v, str) for v in values):
            return False
        if fd.type == FieldDescriptor.TYPE_MESSAGE and not all(_text_is_utf8(v) for v in values):
            return False
    return True
