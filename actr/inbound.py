"""What the runtime does with each inbound message (PROTOCOL.md ENV-1..3, DC-2, ACL-2,
EXT-1, MBX-5's refusals). No I/O.

The transport hands in one reassembled message with the connection's peer, its
channel's payload type and the time; the core decodes it once and returns one
action for the async shell (actr/inbound_shell.py) to carry out:

- ``Accept``: a REQUEST or TELL the actor takes, for the mailbox (then the
  mailbox decides duplicates, ENV-6, and its bound, MBX-5);
- ``Resolve``: a RESPONSE for the pending table (ENV-2 checks the peer there);
- ``Answer``: answer at once with these bytes, the mailbox never sees it (a
  request without a deadline, ENV-3; one refused for hosting, stopping or the
  ACL, ACL-2; a runtime route the caller may not use);
- ``RuntimeRoute``: a runtime route admitted (EXT-1), answered by the shell;
- ``Deliver``: a stream chunk from a sender the ACL admits, for the streams;
- ``Hello``: a peer's features (X-HELLO-1), taken from any connected peer the
  ACL does not refuse, a client's too (it is not a request), never answered;
- ``Cancel``: a caller gives up its call ``request_id`` (X-CALL-1), admitted
  like a tell from that caller, never answered;
- ``Drop``: nothing to do, counted by ``reason`` (ENV-1: undecodable,
  unspecified direction, a tell that would need an answer...).

Nothing is guessed from local state: routing follows the channel and the
envelope's explicit direction. Admission is the actor's: ``admits`` is its ACL
(None: no actor, a client, which takes no request), ``stopping`` is set by the
shell on SIGTERM (EXT-2), and the runtime routes' own gate (actr/admin.py)
takes ``now``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from actr.admin import AdminGate
from actr.envelopes import REQUEST, RESPONSE, TELL, error_answer
from actr.errors import ErrorCode
from actr.protocol.actr_pb2 import (
    ActrId,
    CancelCall,
    DataStream,
    PayloadType,
    RpcEnvelope,
)
from actr.protocol.actr_pb2 import Hello as HelloMessage

__all__ = [
    "CANCEL_ROUTE",
    "HELLO_ROUTE",
    "HIGH",
    "NORMAL",
    "RUNTIME_ROUTES",
    "STATS_ROUTE",
    "Accept",
    "Action",
    "Answer",
    "Cancel",
    "Deliver",
    "Drop",
    "Hello",
    "InboundCore",
    "Resolve",
    "RuntimeRoute",
]

log = logging.getLogger(__name__)

# Mailbox priorities (MBX-2): RPC_SIGNAL requests overtake RPC_RELIABLE ones.
HIGH = 0
NORMAL = 1

# EXT-1: routes the runtime answers itself, never through the mailbox.
STATS_ROUTE = "actr.v1.Runtime.Stats"
RUNTIME_ROUTES = frozenset({STATS_ROUTE})
# X-HELLO-1 and X-CALL-1: tells the runtime takes itself, never queued nor answered.
HELLO_ROUTE = "actr.v1.Runtime.Hello"
CANCEL_ROUTE = "actr.v1.Runtime.Cancel"

RPC_TYPES = frozenset({PayloadType.RPC_RELIABLE, PayloadType.RPC_SIGNAL})
_RPC_SIGNAL = PayloadType.RPC_SIGNAL  # a plain value (the hot path)
STREAM_TYPES = frozenset({PayloadType.STREAM_RELIABLE, PayloadType.STREAM_LATENCY_FIRST})


@dataclass(frozen=True, slots=True)
class Accept:
    """A REQUEST or TELL for the mailbox; ``raw`` is what is stored."""

    envelope: RpcEnvelope
    raw: bytes
    priority: int
    payload_type: int


@dataclass(frozen=True, slots=True)
class Resolve:
    """A RESPONSE for the pending table."""

    envelope: RpcEnvelope


@dataclass(frozen=True, slots=True)
class Answer:
    """Send ``data`` (an encoded RESPONSE) back on ``payload_type`` at once."""

    payload_type: int
    data: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class RuntimeRoute:
    """An admitted request for a runtime route; the shell answers it."""

    envelope: RpcEnvelope
    payload_type: int


@dataclass(frozen=True, slots=True)
class Deliver:
    """A DataStream chunk for the stream registry."""

    chunk: DataStream


@dataclass(frozen=True, slots=True)
class Hello:
    """A peer's Hello (X-HELLO-1): what it speaks, and its stream window (0: none)."""

    features: frozenset[str]
    window: int


@dataclass(frozen=True, slots=True)
class Cancel:
    """The caller gave up its call ``request_id`` (X-CALL-1)."""

    request_id: str


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str


Action = Accept | Resolve | Answer | RuntimeRoute | Deliver | Hello | Cancel | Drop


@dataclass
class InboundCore:
    """Decides one inbound message at a time; counts every drop and refusal by reason."""

    owner: Callable[[], ActrId]
    admits: Callable[[ActrId], bool] | None
    admin: AdminGate | None = None
    stopping: bool = False
    drops: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)

    def receive(self, caller: ActrId, payload_type: int, data: bytes, now: float) -> Action:
        if payload_type in RPC_TYPES:
            return self._rpc(caller, payload_type, data, now)
        if payload_type in STREAM_TYPES:
            return self._chunk(caller, data)
        if payload_type == PayloadType.MEDIA_RTP:
            return self._drop("media_rtp_on_data_channel")
        return self._drop("unknown_payload_type")

    # ---- RPC ----

    def _rpc(self, caller: ActrId, payload_type: int, data: bytes, now: float) -> Action:
        env = RpcEnvelope()
        try:
            env.ParseFromString(data)
        except DecodeError:
            return self._drop("envelope_decode_error")
        # The upb backend does not enforce proto2 `required` on parse.
        if not env.IsInitialized():
            return self._drop("envelope_missing_required")
        if not _envelope_text_ok(env):
            return self._drop("envelope_decode_error")
        direction = env.direction
        if direction == RESPONSE:
            return Resolve(env)
        if direction not in (REQUEST, TELL):
            return self._drop("unspecified_direction")
        is_request = direction == REQUEST
        if env.route_key in (HELLO_ROUTE, CANCEL_ROUTE):
            return self._runtime_tell(caller, env)
        if is_request and env.timeout_ms <= 0:
            self.drops["request_without_deadline"] += 1
            return self._answer(
                env,
                payload_type,
                ErrorCode.INVALID_ARGUMENT,
                f"request timeout_ms must be > 0, got {env.timeout_ms}",
                "invalid_argument",
            )
        refusal = self._admission(caller)
        if refusal is None and env.route_key in RUNTIME_ROUTES:
            return self._runtime_route(caller, env, payload_type, now)
        if refusal is not None:
            code, message = refusal
            reason = "refused_" + code.name.lower()
            if not is_request:
                self.refusals[reason] += 1
                return Drop(reason)  # ENV-5: a tell is never answered
            return self._answer(env, payload_type, code, message, reason)
        priority = HIGH if payload_type == _RPC_SIGNAL else NORMAL
        return Accept(env, data, priority, payload_type)

    def _admission(self, caller: ActrId) -> tuple[ErrorCode, str] | None:
        if self.admits is None:
            return (ErrorCode.NOT_IMPLEMENTED, "this node hosts no actor")
        if self.stopping:
            return (ErrorCode.UNAVAILABLE, "actor is stopping")
        if not self.admits(caller):
            # ACL-2: enforced here too, whatever path the request took.
            return (ErrorCode.PERMISSION_DENIED, "the actor's ACL refuses this caller")
        return None

    def _runtime_route(
        self, caller: ActrId, env: RpcEnvelope, payload_type: int, now: float
    ) -> Action:
        if env.direction != REQUEST:
            self.refusals["stats_tell_ignored"] += 1
            return Drop("stats_tell_ignored")
        refusal = self.admin.refusal(self.owner(), caller, now) if self.admin else None
        if refusal is not None:
            code, message = refusal
            return self._answer(
                env, payload_type, code, message, "stats_refused_" + code.name.lower()
            )
        self.refusals["stats_answered"] += 1
        return RuntimeRoute(env, payload_type)

    def _runtime_tell(self, caller: ActrId, env: RpcEnvelope) -> Action:
        """X-HELLO-1 and X-CALL-1: tells for the runtime itself; never answered (ENV-5),
        whatever their direction says."""
        hello = env.route_key == HELLO_ROUTE
        name = "hello" if hello else "cancel"
        if env.direction != TELL:
            return self._drop(f"{name}_not_tell")
        # A Hello from any connected peer, on a client too (it is not a request); a
        # peer the actor's ACL refuses is dropped like any of its tells. A Cancel is
        # admitted like a tell from its caller, also while stopping: a handler
        # cancelled in the stop grace must not be requeued and run again.
        if hello:
            refused = self.admits is not None and not self.admits(caller)
        else:
            refused = self.admits is None or not self.admits(caller)
        if refused:
            self.refusals[f"{name}_refused"] += 1
            return Drop(f"{name}_refused")
        msg: HelloMessage | CancelCall = HelloMessage() if hello else CancelCall()
        try:
            msg.ParseFromString(env.payload)
        except DecodeError:
            return self._drop(f"{name}_decode_error")
        if not msg.IsInitialized() or not _text_is_utf8(msg):
            return self._drop(f"{name}_decode_error")
        if isinstance(msg, HelloMessage):
            return Hello(frozenset(msg.features), msg.stream_window)
        return Cancel(msg.request_id)

    def _answer(
        self, env: RpcEnvelope, payload_type: int, code: ErrorCode, message: str, reason: str
    ) -> Answer:
        self.refusals[reason] += 1
        data = error_answer(env, code, message).SerializeToString()
        return Answer(payload_type, data, reason)

    # ---- streams ----

    def _chunk(self, caller: ActrId, data: bytes) -> Action:
        chunk = DataStream()
        try:
            chunk.ParseFromString(data)
        except DecodeError:
            return self._drop("stream_decode_error")
        if not chunk.IsInitialized():
            return self._drop("stream_missing_required")
        if not _text_is_utf8(chunk):
            return self._drop("stream_decode_error")
        # ACL-2 holds for chunks as for requests (F7): a connection this actor
        # opened to a peer its ACL refuses carries chunks as well as answers.
        if self.admits is not None and not self.admits(caller):
            return self._drop("stream_sender_refused")
        return Deliver(chunk)

    def _drop(self, reason: str) -> Drop:
        self.drops[reason] += 1
        log.debug("inbound_drop reason=%s", reason)
        return Drop(reason)


def _envelope_text_ok(env: RpcEnvelope) -> bool:
    """``_text_is_utf8`` for an envelope, cheap in the common case (no metadata,
    error or trace context: only the two required strings to look at)."""
    if type(env.route_key) is not str or type(env.request_id) is not str:
        return False
    if (
        env.metadata
        or env.HasField("error")
        or env.HasField("traceparent")
        or env.HasField("tracestate")
    ):
        return _text_is_utf8(env)
    return True


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
