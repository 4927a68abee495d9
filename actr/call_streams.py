"""Streams bound to calls (docs/protocol.md X-STR-6): handler shapes and typed ends.

A handler's shape says which streams its call carries:

- an async generator handler streams its answer (server-streaming): each value it
  yields goes out on the call's ``actr.stream.out`` stream, then the RESPONSE;
- a handler whose request parameter is annotated ``AsyncIterator[M]`` (or
  ``AsyncIterable[M]``) takes a stream (client-streaming): it iterates the
  messages the caller sends on ``actr.stream.in``; the REQUEST payload is empty;
- both at once is a bidirectional call.

On the wire a stream of messages is a byte stream of length-delimited records
(a varint length, then the message, as protobuf's ``writeDelimitedTo``), so a
message is never tied to a chunk: the stream layer may split and pace bytes as
its credit allows (X-STR-3). A stream of ``bytes`` is a plain byte stream (chunk
boundaries are not kept). ``Delimited`` is the sans-IO splitter.
"""

from __future__ import annotations

import asyncio
import collections.abc
import inspect
import logging
import typing
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

from actr.errors import ActrError, DecodeFailure, ErrorCode, InvalidArgument
from actr.protocol.actr_pb2 import RpcEnvelope

__all__ = [
    "MAX_RECORD",
    "STREAM_IN_KEY",
    "STREAM_OUT_KEY",
    "Delimited",
    "Receives",
    "Sends",
    "StreamShape",
    "decode_records",
    "encode_record",
    "pump_output",
    "shape_of",
    "stream_ids",
    "typed_input",
]

log = logging.getLogger(__name__)

STREAM_IN_KEY = "actr.stream.in"
STREAM_OUT_KEY = "actr.stream.out"

# The largest record a typed stream takes (DC-4's largest message): a length
# past it is a broken or hostile stream, not a reason to buffer that much.
MAX_RECORD = 16 * 1024 * 1024

M = TypeVar("M", bound=Message)
T = TypeVar("T")

_ITERATORS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


@dataclass(frozen=True)
class StreamShape:
    """What a route's call carries besides its request and answer.

    ``stream_in``/``stream_out``: the element type (a message class, or ``bytes``)
    of the input/output stream, None when the call has none."""

    stream_in: type[Message] | type[bytes] | None = None
    stream_out: type[Message] | type[bytes] | None = None

    @property
    def unary(self) -> bool:
        return self.stream_in is None and self.stream_out is None


def _element(hint: Any) -> type[Message] | type[bytes] | None:
    """``AsyncIterator[X]`` and the like -> X; anything else -> None."""
    if typing.get_origin(hint) not in _ITERATORS:
        return None
    args = typing.get_args(hint)
    elem = args[0] if args else bytes
    if elem is bytes:
        return bytes
    if isinstance(elem, type) and issubclass(elem, Message):
        return elem
    raise TypeError(f"stream element must be a protobuf message or bytes, not {elem!r}")


def shape_of(fn: Callable[..., Any]) -> StreamShape:
    """The streams a handler takes and returns, read off its signature."""
    params = list(inspect.signature(fn).parameters)
    hints = typing.get_type_hints(fn)
    stream_in = _element(hints.get(params[1])) if len(params) > 1 else None
    stream_out: type[Message] | type[bytes] | None = None
    if inspect.isasyncgenfunction(fn):
        stream_out = _element(hints.get("return")) or bytes
    return StreamShape(stream_in, stream_out)


def stream_ids(env: RpcEnvelope) -> tuple[str, str]:
    """A call's (input, answer) stream ids from its REQUEST's metadata; empty
    strings when it has none."""
    if not env.metadata:
        return ("", "")
    meta = {m.key: m.value for m in env.metadata}
    return (meta.get(STREAM_IN_KEY, ""), meta.get(STREAM_OUT_KEY, ""))


def encode_record(item: Message | bytes, kind: type[Message] | type[bytes]) -> bytes:
    """One stream element as sent: a delimited record, or raw bytes for a byte stream."""
    if kind is bytes:
        if not isinstance(item, bytes | bytearray | memoryview):
            raise InvalidArgument(f"a byte stream takes bytes, not {type(item).__name__}")
        return bytes(item)
    if not isinstance(item, Message):
        raise InvalidArgument(f"stream takes {kind.__name__} messages, not {type(item).__name__}")
    body = item.SerializeToString()
    return _varint(len(body)) + body


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class Delimited:
    """Sans-IO: bytes in (``feed``), whole records out. A length over ``max_record``
    or a varint over 10 bytes raises DecodeFailure; so does ``finish`` with a
    partial record left (the stream ended inside a message)."""

    def __init__(self, max_record: int = MAX_RECORD) -> None:
        self.max_record = max_record
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held: the start of a record not complete yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            header = self._header()
            if header is None:
                return out
            length, start = header
            end = start + length
            if len(self._buf) < end:
                return out
            out.append(bytes(self._buf[start:end]))
            del self._buf[:end]

    def finish(self) -> None:
        if self._buf:
            raise DecodeFailure(f"stream ended inside a record ({len(self._buf)} bytes left)")

    def _header(self) -> tuple[int, int] | None:
        """(record length, offset of its body), or None while the varint is incomplete."""
        n = 0
        for i, byte in enumerate(self._buf[:10]):
            n |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if n > self.max_record:
                    raise DecodeFailure(f"stream record of {n} bytes is over {self.max_record}")
                return n, i + 1
        if len(self._buf) >= 10:
            raise DecodeFailure("stream record length is not a varint")
        return None


class _Records(Generic[T]):
    """An async iterator of typed elements over an async iterator of payloads."""

    def __init__(
        self, payloads: AsyncIterable[bytes], kind: type[Message] | type[bytes], max_record: int
    ) -> None:
        self._payloads = payloads
        self._kind = kind
        self._max = max_record

    def __aiter__(self) -> AsyncIterator[T]:
        return self._run()

    async def _run(self) -> AsyncIterator[T]:
        if self._kind is bytes:
            async for payload in self._payloads:
                yield typing.cast(T, payload)
            return
        kind = typing.cast("type[Message]", self._kind)
        splitter = Delimited(self._max)
        async for payload in self._payloads:
            for body in splitter.feed(payload):
                msg = kind()
                try:
                    msg.ParseFromString(body)
                except DecodeError as e:
                    raise DecodeFailure(
                        f"stream element is not a {kind.DESCRIPTOR.full_name}"
                    ) from e
                yield typing.cast(T, msg)
        splitter.finish()


def decode_records(
    payloads: AsyncIterable[bytes],
    kind: type[M] | type[bytes],
    *,
    max_record: int = MAX_RECORD,
) -> AsyncIterator[Any]:
    """Typed elements from a stream's payloads (see the module's docstring)."""
    return _Records[Any](payloads, kind, max_record).__aiter__()


class Sends(Protocol):
    """The sending end of a stream (actr.streams.StreamSender)."""

    async def send(self, payload: bytes) -> None: ...

    async def end(self, payload: bytes = b"") -> None: ...

    async def reset(self, code: int, message: str) -> None: ...


class Chunk(Protocol):
    @property
    def payload(self) -> bytes: ...


class Receives(Protocol):
    """The receiving end of a stream (actr.streams.StreamReceiver)."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    def close(self) -> None: ...

    @property
    def closed(self) -> bool: ...


async def _payloads(rx: Receives) -> AsyncIterator[bytes]:
    async for chunk in rx:
        yield typing.cast(Chunk, chunk).payload


def typed_input(rx: Receives, kind: type[Message] | type[bytes]) -> AsyncIterator[Any]:
    """The elements of an input stream, decoded."""
    return decode_records(_payloads(rx), kind)


async def pump_output(
    items: AsyncIterator[Any], tx: Sends, kind: type[Message] | type[bytes]
) -> None:
    """Sends every element ``items`` yields, then ends the stream. If ``items``
    raises, the stream is reset with the error's code (APPLICATION_ERROR for a
    plain exception) and the error goes on up; a cancel resets it CANCELLED."""
    try:
        async for item in items:
            await tx.send(encode_record(item, kind))
    except asyncio.CancelledError:
        await _quiet_reset(tx, ErrorCode.CANCELLED, "call cancelled")
        raise
    except ActrError as e:
        await _quiet_reset(tx, e.raw_code, e.message)
        raise
    except Exception as e:
        await _quiet_reset(tx, ErrorCode.APPLICATION_ERROR, f"{type(e).__name__}: {e}")
        raise
    await tx.end()


async def _quiet_reset(tx: Sends, code: int, message: str) -> None:
    """A reset on a stream that may have ended or failed already: best effort."""
    try:
        await tx.reset(int(code), message)
    except Exception as e:  # the connection went: the reader gets UNAVAILABLE anyway
        log.debug("stream_reset_failed error=%r", e)
