"""Error codes of PROTOCOL.md section 2 and the typed exceptions (ENV-4 errors)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actr import errors
from actr.errors import ActrError, ErrorCode
from actr.protocol.actr_pb2 import ErrorResponse

# The table of PROTOCOL.md section 2: the numbers are actr's and must not drift.
SPEC_CODES = {
    "UNAVAILABLE": 10001,
    "TIMED_OUT": 10002,
    "NOT_FOUND": 10003,
    "PERMISSION_DENIED": 10004,
    "INVALID_ARGUMENT": 10005,
    "UNKNOWN_ROUTE": 10006,
    "DECODE_FAILURE": 10008,
    "NOT_IMPLEMENTED": 10009,
    "INTERNAL": 10010,
    "CONNECTION_NOT_READY": 10011,
    "RESOURCE_EXHAUSTED": 10101,
    "CANCELLED": 10102,
    "UNAUTHENTICATED": 10103,
    "APPLICATION_ERROR": 10104,
}

SUBCLASSES = {
    ErrorCode.UNAVAILABLE: errors.Unavailable,
    ErrorCode.TIMED_OUT: errors.TimedOut,
    ErrorCode.NOT_FOUND: errors.NotFound,
    ErrorCode.PERMISSION_DENIED: errors.PermissionDenied,
    ErrorCode.INVALID_ARGUMENT: errors.InvalidArgument,
    ErrorCode.UNKNOWN_ROUTE: errors.UnknownRoute,
    ErrorCode.DECODE_FAILURE: errors.DecodeFailure,
    ErrorCode.NOT_IMPLEMENTED: errors.NotImplementedByPeer,
    ErrorCode.INTERNAL: errors.Internal,
    ErrorCode.CONNECTION_NOT_READY: errors.ConnectionNotReady,
    ErrorCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    ErrorCode.CANCELLED: errors.Cancelled,
    ErrorCode.UNAUTHENTICATED: errors.Unauthenticated,
    ErrorCode.APPLICATION_ERROR: errors.ApplicationError,
}


def test_error_codes_match_the_protocol_table() -> None:
    assert {c.name: int(c) for c in ErrorCode} == SPEC_CODES


@pytest.mark.parametrize("code", list(ErrorCode))
def test_from_code_returns_the_typed_subclass(code: ErrorCode) -> None:
    err = ActrError.from_code(int(code), "what happened")
    assert type(err) is SUBCLASSES[code]
    assert isinstance(err, ActrError)
    assert err.code == code
    assert err.raw_code == int(code)
    assert err.message == "what happened"
    assert str(err) == f"{code.name} ({int(code)}): what happened"


@pytest.mark.parametrize("code", list(ErrorCode))
def test_proto_round_trip(code: ErrorCode) -> None:
    err = SUBCLASSES[code]("msg")
    proto = err.to_proto()
    assert (proto.code, proto.message) == (int(code), "msg")
    back = ActrError.from_proto(ErrorResponse.FromString(proto.SerializeToString()))
    assert type(back) is type(err)
    assert back.message == "msg"


@pytest.mark.parametrize("code", [0, 1, 10007, 10100, 10105, 2**32 - 1])
def test_unknown_code_is_kept_not_rewritten(code: int) -> None:
    err = ActrError.from_code(code, "from a newer peer")
    assert type(err) is ActrError
    assert err.raw_code == code
    assert err.message == "from a newer peer"
    assert err.to_proto().code == code
    assert str(err) == f"UNKNOWN ({code}): from a newer peer"


def test_typed_errors_are_caught_as_actr_error() -> None:
    with pytest.raises(ActrError) as info:
        raise ActrError.from_code(10002, "deadline")
    assert isinstance(info.value, errors.TimedOut)


@given(st.integers(0, 2**32 - 1), st.text(max_size=50))
def test_any_code_and_message_survive_the_wire(code: int, message: str) -> None:
    err = ActrError.from_code(code, message)
    back = ActrError.from_proto(ErrorResponse.FromString(err.to_proto().SerializeToString()))
    assert (type(back), back.raw_code, back.message) == (type(err), code, message)
