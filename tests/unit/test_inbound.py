"""The inbound core, sans-IO: ENV-1 routing by direction, ENV-3 deadlines, DC-2 channel
rules, admission (hosting, stopping, ACL-2), EXT-1's runtime route, F7 for chunks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.admin import AdminConfig, AdminGate, CallerPattern
from actr.errors import ErrorCode
from actr.identity import parse_id
from actr.inbound import (
    HIGH,
    NORMAL,
    STATS_ROUTE,
    Accept,
    Answer,
    Deliver,
    Drop,
    InboundCore,
    Resolve,
    RuntimeRoute,
)
from actr.protocol.actr_pb2 import (
    DataStream,
    Direction,
    ErrorResponse,
    PayloadType,
    RpcEnvelope,
)

OWNER = parse_id("5@1/acme:echo:1.0")
CALLER = parse_id("8@1/acme:caller:1.0")


class Gate:
    """The core with an actor that admits everyone, fed at time 0 by one caller."""

    def __init__(self) -> None:
        self.core = InboundCore(owner=lambda: OWNER, admits=lambda caller: True)
        self.drops = self.core.drops

    def route(self, ptype: int, data: bytes) -> object:
        return self.core.receive(CALLER, ptype, data, 0.0)


def answer_of(action: Answer) -> RpcEnvelope:
    reply = RpcEnvelope()
    reply.ParseFromString(action.data)
    return reply


RPC = [PayloadType.RPC_RELIABLE, PayloadType.RPC_SIGNAL]
STREAMS = [PayloadType.STREAM_RELIABLE, PayloadType.STREAM_LATENCY_FIRST]
ALL_TYPES = [*RPC, *STREAMS, PayloadType.MEDIA_RTP]


def envelope(direction: int | None = None, timeout_ms: int = 0, **kw: object) -> bytes:
    env = RpcEnvelope(route_key="acme.Echo.Say", request_id="r-1", timeout_ms=timeout_ms, **kw)
    if direction is not None:
        env.direction = direction  # type: ignore[assignment]
    return env.SerializeToString()


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def hand_envelope(direction: int, timeout_ms: int = 1000, route_key: bytes = b"a.B.c") -> bytes:
    """An RpcEnvelope written field by field, so the direction can be any number."""
    return (
        field_bytes(1, route_key)
        + field_varint(4, direction)
        + field_bytes(102, b"r-1")
        + field_varint(104, timeout_ms)
    )


# -- ENV-1: routing by direction ---------------------------------------------------------


@pytest.mark.parametrize("ptype", RPC)
def test_env1_request_goes_to_the_mailbox(ptype: int) -> None:
    g = Gate()
    data = envelope(Direction.DIRECTION_REQUEST, timeout_ms=5000, payload=b"hi")
    action = g.route(ptype, data)
    assert isinstance(action, Accept)
    assert action.raw == data
    assert action.payload_type == ptype
    assert action.envelope.request_id == "r-1"
    assert action.envelope.payload == b"hi"
    assert not g.drops


@pytest.mark.parametrize("ptype", RPC)
def test_env1_tell_goes_to_the_mailbox(ptype: int) -> None:
    g = Gate()
    action = g.route(ptype, envelope(Direction.DIRECTION_TELL))
    assert isinstance(action, Accept)
    assert action.envelope.direction == Direction.DIRECTION_TELL
    assert not g.drops


@pytest.mark.parametrize("ptype", RPC)
def test_env1_response_wakes_the_pending_call(ptype: int) -> None:
    g = Gate()
    for data in (
        envelope(Direction.DIRECTION_RESPONSE, payload=b""),
        envelope(Direction.DIRECTION_RESPONSE, error=ErrorResponse(code=10002, message="late")),
    ):
        action = g.route(ptype, data)
        assert isinstance(action, Resolve)
        assert action.envelope.request_id == "r-1"
    assert not g.drops


@pytest.mark.parametrize("ptype", RPC)
def test_env1_unspecified_direction_is_dropped_and_counted(ptype: int) -> None:
    g = Gate()
    # Not written at all, and written as 0 explicitly.
    for data in (envelope(None, timeout_ms=1000), envelope(0, timeout_ms=1000)):
        action = g.route(ptype, data)
        assert action == Drop("unspecified_direction")
    assert g.drops["unspecified_direction"] == 2


@pytest.mark.parametrize("value", [4, 9, 127, 2**31 - 1])
def test_env1_unknown_direction_value_is_dropped_not_guessed(value: int) -> None:
    """Field 4 holding a value no Direction has (written by hand: the generated
    class refuses it) is dropped like UNSPECIFIED, whatever the timeout says."""
    g = Gate()
    data = hand_envelope(value, timeout_ms=1000)
    check = RpcEnvelope()
    check.ParseFromString(data)  # it does decode
    action = g.route(PayloadType.RPC_RELIABLE, data)
    assert isinstance(action, Drop)
    assert sum(g.drops.values()) == 1


def test_env1_hand_encoding_matches_the_generated_one() -> None:
    """The hand encoder above writes what protobuf writes (so the unknown-value test
    really differs only in the value)."""
    env = RpcEnvelope()
    env.ParseFromString(hand_envelope(Direction.DIRECTION_REQUEST, 1000))
    assert env.direction == Direction.DIRECTION_REQUEST
    assert (env.route_key, env.request_id, env.timeout_ms) == ("a.B.c", "r-1", 1000)
    assert isinstance(
        Gate().route(PayloadType.RPC_RELIABLE, hand_envelope(Direction.DIRECTION_REQUEST)),
        Accept,
    )


# -- ENV-3: deadlines -----------------------------------------------------------------------


@pytest.mark.parametrize("ptype", RPC)
@pytest.mark.parametrize("timeout_ms", [0, -1, -(2**63)])
def test_env3_request_without_a_positive_deadline_is_rejected_invalid_argument(
    ptype: int, timeout_ms: int
) -> None:
    g = Gate()
    data = envelope(Direction.DIRECTION_REQUEST, timeout_ms=timeout_ms)
    action = g.route(ptype, data)
    assert isinstance(action, Answer)
    reply = answer_of(action)
    assert reply.error.code == ErrorCode.INVALID_ARGUMENT
    assert action.payload_type == ptype
    assert reply.request_id == "r-1"  # so the answer names the call
    assert reply.direction == Direction.DIRECTION_RESPONSE
    assert "timeout_ms" in reply.error.message
    assert g.drops["request_without_deadline"] == 1


@pytest.mark.parametrize("timeout_ms", [1, 2**63 - 1])
def test_env3_request_with_a_positive_deadline_is_accepted(timeout_ms: int) -> None:
    action = Gate().route(
        PayloadType.RPC_RELIABLE, envelope(Direction.DIRECTION_REQUEST, timeout_ms=timeout_ms)
    )
    assert isinstance(action, Accept)
    assert action.envelope.timeout_ms == timeout_ms


# -- DC-2: channel rules ---------------------------------------------------------------------


def test_dc2_rpc_signal_enters_at_high_priority_rpc_reliable_at_normal() -> None:
    g = Gate()
    for direction, timeout in ((Direction.DIRECTION_REQUEST, 100), (Direction.DIRECTION_TELL, 0)):
        data = envelope(direction, timeout_ms=timeout)
        high = g.route(PayloadType.RPC_SIGNAL, data)
        normal = g.route(PayloadType.RPC_RELIABLE, data)
        assert isinstance(high, Accept) and isinstance(normal, Accept)
        assert high.priority == HIGH == 0
        assert normal.priority == NORMAL == 1


def test_dc2_media_rtp_is_never_routed_from_a_data_channel() -> None:
    g = Gate()
    for data in (envelope(Direction.DIRECTION_REQUEST, 100), b"", b"\x80\x00garbage"):
        assert g.route(PayloadType.MEDIA_RTP, data) == Drop("media_rtp_on_data_channel")
    assert g.drops["media_rtp_on_data_channel"] == 3


@pytest.mark.parametrize("ptype", [-1, 5, 99])
def test_dc2_unknown_payload_type_is_dropped(ptype: int) -> None:
    g = Gate()
    assert g.route(ptype, envelope(Direction.DIRECTION_TELL)) == Drop("unknown_payload_type")
    assert g.drops["unknown_payload_type"] == 1


@pytest.mark.parametrize("ptype", STREAMS)
def test_dc2_stream_channels_carry_datastream_chunks(ptype: int) -> None:
    g = Gate()
    chunk = DataStream(stream_id="s", sequence=3, payload=b"abc", end_of_stream=True)
    action = g.route(ptype, chunk.SerializeToString())
    assert isinstance(action, Deliver)
    assert action.chunk == chunk
    assert not g.drops


@pytest.mark.parametrize("ptype", STREAMS)
def test_dc2_stream_chunk_missing_required_fields_is_dropped(ptype: int) -> None:
    g = Gate()
    missing_payload = field_bytes(1, b"s") + field_varint(2, 0)
    assert g.route(ptype, missing_payload) == Drop("stream_missing_required")
    assert g.route(ptype, b"") == Drop("stream_missing_required")
    assert g.route(ptype, b"\xff\xff\xff") == Drop("stream_decode_error")
    assert sum(g.drops.values()) == 3


def test_env1_envelope_missing_required_fields_is_dropped() -> None:
    g = Gate()
    no_request_id = field_bytes(1, b"a.B.c") + field_varint(4, 1) + field_varint(104, 100)
    assert g.route(PayloadType.RPC_RELIABLE, no_request_id) == Drop("envelope_missing_required")
    assert g.route(PayloadType.RPC_RELIABLE, b"") == Drop("envelope_missing_required")
    assert g.drops["envelope_missing_required"] == 2


# -- garbage --------------------------------------------------------------------------------


@pytest.mark.parametrize("ptype", RPC)
def test_env1_garbage_is_dropped_and_counted(ptype: int) -> None:
    g = Gate()
    for data in (b"\xff\xff\xff\xff", b"\x0a\x10short", b"\x07", b"\x0a"):
        action = g.route(ptype, data)
        assert isinstance(action, Drop)
    assert g.drops["envelope_decode_error"] == 4


@pytest.mark.parametrize("ptype", [*RPC, *STREAMS])
def test_env1_invalid_utf8_in_a_string_field_is_a_decode_error(ptype: int) -> None:
    """protobuf strings are UTF-8 (actr's decoder refuses others); upb would hand the
    field back as bytes, and answering such a request would then raise."""
    g = Gate()
    if ptype in RPC:
        bad = [
            hand_envelope(Direction.DIRECTION_REQUEST, route_key=b"\xff\xfe"),
            hand_envelope(Direction.DIRECTION_REQUEST, timeout_ms=0, route_key=b"a\xc0"),
            envelope(Direction.DIRECTION_TELL) + field_bytes(102, b"\x80"),  # request_id
            envelope(Direction.DIRECTION_TELL) + field_bytes(100, b"\xff"),  # traceparent
            envelope(Direction.DIRECTION_TELL)
            + field_bytes(103, field_bytes(1, b"k") + field_bytes(2, b"\xff")),  # metadata
            envelope(Direction.DIRECTION_RESPONSE)
            + field_bytes(3, field_varint(1, 10010) + field_bytes(2, b"\xed\xa0\x80")),
        ]
    else:
        good = DataStream(stream_id="s", sequence=0, payload=b"\xff").SerializeToString()
        bad = [
            good + field_bytes(1, b"\xff"),
            good + field_bytes(4, field_bytes(1, b"\xfe") + field_bytes(2, b"v")),
        ]
    for data in bad:
        action = g.route(ptype, data)
        assert isinstance(action, Drop), action
        assert action.reason.endswith("decode_error")
    assert sum(g.drops.values()) == len(bad)


def _all_strings_are_str(msg: object) -> bool:
    from google.protobuf.descriptor import FieldDescriptor

    for fd, value in msg.ListFields():  # type: ignore[attr-defined]
        values = value if fd.is_repeated else [value]
        for v in values:
            if fd.type == FieldDescriptor.TYPE_STRING and not isinstance(v, str):
                return False
            if fd.type == FieldDescriptor.TYPE_MESSAGE and not _all_strings_are_str(v):
                return False
    return True


def _check_action(action: object, ptype: int) -> None:
    assert isinstance(action, Accept | Resolve | Answer | Deliver | Drop)
    if isinstance(action, Answer):
        assert ptype in RPC
        reply = answer_of(action)
        assert reply.error.code == ErrorCode.INVALID_ARGUMENT
        assert _all_strings_are_str(reply)
    elif isinstance(action, Accept | Resolve):
        env = action.envelope
        assert ptype in RPC
        assert _all_strings_are_str(env)
        # Building the answer must work for anything the core lets through.
        RpcEnvelope(request_id=env.request_id, route_key=env.route_key, timeout_ms=0)
        if isinstance(action, Accept):
            assert env.direction in (Direction.DIRECTION_REQUEST, Direction.DIRECTION_TELL)
            if env.direction == Direction.DIRECTION_REQUEST:
                assert env.timeout_ms > 0
        else:
            assert env.direction == Direction.DIRECTION_RESPONSE
    if isinstance(action, Deliver):
        assert ptype in STREAMS
        assert _all_strings_are_str(action.chunk)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([*ALL_TYPES, 7]), st.binary(max_size=200))
def test_env1_random_bytes_never_raise_and_every_drop_is_counted(ptype: int, data: bytes) -> None:
    g = Gate()
    action = g.route(ptype, data)
    _check_action(action, ptype)
    if isinstance(action, Drop):
        assert g.drops[action.reason] == 1


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ALL_TYPES),
    st.sampled_from(
        [
            hand_envelope(Direction.DIRECTION_REQUEST, 100),
            hand_envelope(Direction.DIRECTION_TELL, 0),
            hand_envelope(Direction.DIRECTION_RESPONSE, 0),
            DataStream(stream_id="abc", sequence=1, payload=b"xyz").SerializeToString(),
        ]
    ),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_env1_mutated_valid_messages_route_consistently_or_drop(
    ptype: int, base: bytes, edits: list[tuple[int, int]]
) -> None:
    """Valid messages with a few bytes changed: whatever the gate routes is consistent
    with its direction and deadline and has proper strings; the rest is dropped."""
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    _check_action(Gate().route(ptype, bytes(data)), ptype)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(RPC),
    st.sampled_from([None, 0, 1, 2, 3]),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=20),
    st.binary(max_size=20),
)
def test_env1_env3_any_well_formed_envelope_routes_by_its_direction(
    ptype: int, direction: int | None, timeout_ms: int, route_key: str, payload: bytes
) -> None:
    g = Gate()
    env = RpcEnvelope(route_key=route_key, request_id="id", timeout_ms=timeout_ms, payload=payload)
    if direction is not None:
        env.direction = direction  # type: ignore[assignment]
    action = g.route(ptype, env.SerializeToString())
    if direction in (None, 0):
        assert action == Drop("unspecified_direction")
    elif direction == Direction.DIRECTION_RESPONSE:
        assert isinstance(action, Resolve)
    elif direction == Direction.DIRECTION_REQUEST and timeout_ms <= 0:
        assert isinstance(action, Answer)
        assert answer_of(action).error.code == ErrorCode.INVALID_ARGUMENT
    else:
        assert isinstance(action, Accept)
        assert action.priority == (HIGH if ptype == PayloadType.RPC_SIGNAL else NORMAL)
        assert action.envelope == env


# -- admission: hosting, stopping, ACL-2 (before the mailbox) ------------------------------

STRANGER = parse_id("7@1/acme:stranger:1.0")


def request(route: str = "acme.Echo.Say", direction: int = Direction.DIRECTION_REQUEST) -> bytes:
    timeout = 5000 if direction == Direction.DIRECTION_REQUEST else 0
    return RpcEnvelope(
        route_key=route,
        request_id="r-9",
        timeout_ms=timeout,
        direction=direction,  # type: ignore[arg-type]
    ).SerializeToString()


def core(admits: object = None, admin: AdminGate | None = None) -> InboundCore:
    return InboundCore(owner=lambda: OWNER, admits=admits, admin=admin)  # type: ignore[arg-type]


def test_a_client_node_takes_no_request_and_answers_not_implemented() -> None:
    c = core(admits=None)
    action = c.receive(CALLER, PayloadType.RPC_RELIABLE, request(), 0.0)
    assert isinstance(action, Answer)
    assert answer_of(action).error.code == ErrorCode.NOT_IMPLEMENTED
    # ENV-5: a tell is never answered, not even with an error.
    tell = c.receive(CALLER, PayloadType.RPC_RELIABLE, request(direction=3), 0.0)
    assert tell == Drop("refused_not_implemented")
    assert c.refusals["refused_not_implemented"] == 2


def test_acl2_a_refused_caller_is_answered_permission_denied_before_the_mailbox() -> None:
    c = core(admits=lambda caller: caller != STRANGER)
    action = c.receive(STRANGER, PayloadType.RPC_RELIABLE, request(), 0.0)
    assert isinstance(action, Answer)
    assert answer_of(action).error.code == ErrorCode.PERMISSION_DENIED
    assert answer_of(action).request_id == "r-9"
    assert isinstance(c.receive(CALLER, PayloadType.RPC_RELIABLE, request(), 0.0), Accept)
    assert c.refusals["refused_permission_denied"] == 1


def test_ext2_a_stopping_actor_answers_unavailable() -> None:
    c = core(admits=lambda caller: True)
    c.stopping = True
    action = c.receive(CALLER, PayloadType.RPC_SIGNAL, request(), 0.0)
    assert isinstance(action, Answer)
    assert answer_of(action).error.code == ErrorCode.UNAVAILABLE


def test_ext1_stats_route_is_decided_here_with_time_passed_in() -> None:
    gate = AdminGate(AdminConfig((CallerPattern.parse("acme:caller:*"),), 1.0, 1))
    c = core(admits=lambda caller: True, admin=gate)
    first = c.receive(CALLER, PayloadType.RPC_RELIABLE, request(STATS_ROUTE), 0.0)
    assert isinstance(first, RuntimeRoute) and first.envelope.request_id == "r-9"
    # Over the rate at the same instant, admitted again once time has passed.
    again = c.receive(CALLER, PayloadType.RPC_RELIABLE, request(STATS_ROUTE), 0.0)
    assert isinstance(again, Answer)
    assert answer_of(again).error.code == ErrorCode.RESOURCE_EXHAUSTED
    later = c.receive(CALLER, PayloadType.RPC_RELIABLE, request(STATS_ROUTE), 1.5)
    assert isinstance(later, RuntimeRoute)
    # Not an admin: refused; a tell to it: ignored, never answered.
    denied = c.receive(STRANGER, PayloadType.RPC_RELIABLE, request(STATS_ROUTE), 9.0)
    assert isinstance(denied, Answer)
    assert answer_of(denied).error.code == ErrorCode.PERMISSION_DENIED
    tell = c.receive(CALLER, PayloadType.RPC_RELIABLE, request(STATS_ROUTE, 3), 9.0)
    assert tell == Drop("stats_tell_ignored")
    assert c.refusals["stats_answered"] == 2


def test_f7_chunks_from_a_refused_sender_are_dropped_before_any_stream() -> None:
    c = core(admits=lambda caller: caller != STRANGER)
    chunk = DataStream(stream_id="s", sequence=0, payload=b"x").SerializeToString()
    assert c.receive(STRANGER, PayloadType.STREAM_RELIABLE, chunk, 0.0) == Drop(
        "stream_sender_refused"
    )
    assert isinstance(c.receive(CALLER, PayloadType.STREAM_RELIABLE, chunk, 0.0), Deliver)
    # A client (no ACL of its own) takes the chunks of the streams it asked for.
    assert isinstance(core(admits=None).receive(STRANGER, 2, chunk, 0.0), Deliver)
