"""Error codes of PROTOCOL.md section 2 and the typed exceptions callers see."""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar

from actr.protocol.actr_pb2 import ErrorResponse


class ErrorCode(IntEnum):
    UNAVAILABLE = 10001
    TIMED_OUT = 10002
    NOT_FOUND = 10003
    PERMISSION_DENIED = 10004
    INVALID_ARGUMENT = 10005
    UNKNOWN_ROUTE = 10006
    DECODE_FAILURE = 10008
    NOT_IMPLEMENTED = 10009
    INTERNAL = 10010
    CONNECTION_NOT_READY = 10011
    RESOURCE_EXHAUSTED = 10101
    CANCELLED = 10102
    UNAUTHENTICATED = 10103
    APPLICATION_ERROR = 10104


class ActrError(Exception):
    """An error with a protocol code. ``from_code`` returns the typed subclass."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    _by_code: ClassVar[dict[int, type[ActrError]]] = {}

    def __init__(self, message: str = "", *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # An unknown code from a newer peer is kept as-is rather than rewritten.
        self.raw_code = int(code) if code is not None else int(self.code)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # The first class of a code is what from_code builds (a refinement such as
        # RateLimited does not take a code's place).
        ActrError._by_code.setdefault(int(cls.code), cls)

    def __str__(self) -> str:
        try:
            name = ErrorCode(self.raw_code).name
        except ValueError:
            name = "UNKNOWN"
        return f"{name} ({self.raw_code}): {self.message}"

    @staticmethod
    def from_code(code: int, message: str) -> ActrError:
        cls = ActrError._by_code.get(code, ActrError)
        return cls(message, code=code)

    @staticmethod
    def from_proto(err: ErrorResponse) -> ActrError:
        return ActrError.from_code(err.code, err.message)

    def to_proto(self) -> ErrorResponse:
        return ErrorResponse(code=self.raw_code, message=self.message)


class Unavailable(ActrError):
    code = ErrorCode.UNAVAILABLE


class TimedOut(ActrError):
    code = ErrorCode.TIMED_OUT


class NotFound(ActrError):
    code = ErrorCode.NOT_FOUND


class PermissionDenied(ActrError):
    code = ErrorCode.PERMISSION_DENIED


class InvalidArgument(ActrError):
    code = ErrorCode.INVALID_ARGUMENT


class UnknownRoute(ActrError):
    code = ErrorCode.UNKNOWN_ROUTE


class DecodeFailure(ActrError):
    code = ErrorCode.DECODE_FAILURE


class NotImplementedByPeer(ActrError):
    code = ErrorCode.NOT_IMPLEMENTED


class Internal(ActrError):
    code = ErrorCode.INTERNAL


class ConnectionNotReady(ActrError):
    code = ErrorCode.CONNECTION_NOT_READY


class ResourceExhausted(ActrError):
    code = ErrorCode.RESOURCE_EXHAUSTED


class RateLimited(ResourceExhausted):
    """HTTP 429 from the signaling server: retry after ``retry_after`` seconds (if it said)."""

    def __init__(
        self, message: str = "", retry_after: float | None = None, *, code: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Cancelled(ActrError):
    code = ErrorCode.CANCELLED


class Unauthenticated(ActrError):
    code = ErrorCode.UNAUTHENTICATED


class ApplicationError(ActrError):
    code = ErrorCode.APPLICATION_ERROR
