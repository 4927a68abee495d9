"""X-STR-6's typed streams: handler shapes and the delimited-record splitter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actr.call_streams import (
    Delimited,
    StreamShape,
    decode_records,
    encode_record,
    shape_of,
)
from actr.errors import DecodeFailure, InvalidArgument
from examples.echo_pb2 import SayReply, SayRequest


class _Shapes:
    async def unary(self, req: SayRequest, ctx: object) -> SayReply:
        return SayReply()

    async def server(self, req: SayRequest, ctx: object) -> AsyncIterator[SayReply]:
        yield SayReply()

    async def client(self, reqs: AsyncIterator[SayRequest], ctx: object) -> SayReply:
        return SayReply()

    async def bidi(self, reqs: AsyncIterator[SayRequest], ctx: object) -> AsyncIterator[bytes]:
        yield b""

    async def untyped_out(self, req: bytes, ctx: object):  # type: ignore[no-untyped-def]
        yield b""


def test_shapes_read_off_signatures() -> None:
    s = _Shapes
    assert shape_of(s.unary) == StreamShape() and shape_of(s.unary).unary
    assert shape_of(s.server) == StreamShape(None, SayReply)
    assert shape_of(s.client) == StreamShape(SayRequest, None)
    assert shape_of(s.bidi) == StreamShape(SayRequest, bytes)
    assert shape_of(s.untyped_out) == StreamShape(None, bytes)


def test_stream_of_something_else_is_refused() -> None:
    class Bad:
        async def h(self, reqs: AsyncIterator[int], ctx: object) -> None: ...

    with pytest.raises(TypeError):
        shape_of(Bad.h)


def test_encode_checks_the_element_type() -> None:
    with pytest.raises(InvalidArgument):
        encode_record(b"x", SayRequest)
    with pytest.raises(InvalidArgument):
        encode_record(SayRequest(text="a"), bytes)
    assert encode_record(b"raw", bytes) == b"raw"


@given(
    texts=st.lists(st.text(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30),
)
def test_records_survive_any_chunking(texts: list[str], cuts: list[int]) -> None:
    data = b"".join(encode_record(SayRequest(text=t), SayRequest) for t in texts)
    splitter = Delimited()
    out: list[bytes] = []
    i = 0
    k = 0
    while i < len(data):
        n = cuts[k % len(cuts)]
        out += splitter.feed(data[i : i + n])
        i += n
        k += 1
    splitter.finish()
    got = [SayRequest.FromString(b).text for b in out]
    assert got == texts
    assert splitter.pending == 0


@given(st.binary(max_size=64))
def test_hostile_bytes_never_hang_or_overbuffer(data: bytes) -> None:
    splitter = Delimited(max_record=32)
    try:
        splitter.feed(data)
    except DecodeFailure:
        return
    # Whatever is held is the start of one record no longer than the limit.
    assert splitter.pending <= 10 + 32


def test_oversized_length_is_refused_before_buffering() -> None:
    splitter = Delimited(max_record=1024)
    with pytest.raises(DecodeFailure):
        splitter.feed(b"\xff\xff\xff\xff\x0f")  # a 4 GiB length
    with pytest.raises(DecodeFailure):
        Delimited().feed(b"\x80" * 11)  # not a varint


def test_a_stream_ending_inside_a_record_is_a_decode_failure() -> None:
    async def payloads() -> AsyncIterator[bytes]:
        yield encode_record(SayRequest(text="whole"), SayRequest)
        yield encode_record(SayRequest(text="cut"), SayRequest)[:-1]

    async def run() -> list[str]:
        got: list[str] = []
        async for m in decode_records(payloads(), SayRequest):
            got.append(m.text)
        return got

    with pytest.raises(DecodeFailure):
        asyncio.run(run())


def test_bytes_streams_pass_chunks_through() -> None:
    async def payloads() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    async def run() -> list[bytes]:
        return [b async for b in decode_records(payloads(), bytes)]

    assert asyncio.run(run()) == [b"ab", b"cd"]
