"""The stream registry: stream_id -> subscriber, chunks handed over in sequence order.

A receiver registers a stream_id and iterates its chunks; chunks that arrive
out of order wait in a bounded reorder buffer; ``end_of_stream`` closes the
stream once every earlier chunk was delivered. Chunks for a stream nobody
registered are dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from actr.protocol.actr_pb2 import DataStream

log = logging.getLogger(__name__)

_END = object()


class StreamOverflow(Exception):
    """The reorder buffer of a stream overflowed; the stream is broken."""


@dataclass
class StreamReceiver:
    """One registered stream; iterate it to get payload chunks in order."""

    stream_id: str
    max_reorder: int = 1024
    next_sequence: int = 0
    sender: str | None = None
    _queue: asyncio.Queue[DataStream | object] = field(default_factory=asyncio.Queue)
    _held: dict[int, DataStream] = field(default_factory=dict)
    _end_at: int | None = None
    _closed: bool = False
    _error: Exception | None = None

    def __aiter__(self) -> AsyncIterator[DataStream]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[DataStream]:
        while True:
            item = await self._queue.get()
            if item is _END:
                if self._error is not None:
                    raise self._error
                return
            assert isinstance(item, DataStream)
            yield item

    async def collect(self) -> list[DataStream]:
        return [c async for c in self]

    @property
    def closed(self) -> bool:
        return self._closed

    def _offer(self, chunk: DataStream) -> str | None:
        """Takes one chunk; returns a drop reason or None."""
        if self._closed:
            return "chunk_after_end"
        seq = chunk.sequence
        if seq < self.next_sequence or seq in self._held:
            return "duplicate_chunk"
        if self._end_at is not None and seq > self._end_at:
            return "chunk_after_end"
        if chunk.end_of_stream:
            self._end_at = seq
        if seq != self.next_sequence:
            if len(self._held) >= self.max_reorder:
                self._fail(StreamOverflow(f"stream {self.stream_id}: reorder buffer full"))
                return "reorder_overflow"
            self._held[seq] = chunk
            return None
        self._deliver(chunk)
        while self.next_sequence in self._held:
            self._deliver(self._held.pop(self.next_sequence))
        return None

    def _deliver(self, chunk: DataStream) -> None:
        self.next_sequence = chunk.sequence + 1
        # An end-of-stream chunk with an empty payload only closes the stream.
        if chunk.payload or not chunk.end_of_stream:
            self._queue.put_nowait(chunk)
        if chunk.end_of_stream:
            self._closed = True
            self._queue.put_nowait(_END)

    def _fail(self, err: Exception) -> None:
        self._error = err
        self._closed = True
        self._held.clear()
        self._queue.put_nowait(_END)


@dataclass
class StreamRegistry:
    drops: Counter[str] = field(default_factory=Counter)
    _streams: dict[str, StreamReceiver] = field(default_factory=dict)

    def register(self, stream_id: str, max_reorder: int = 1024) -> StreamReceiver:
        if stream_id in self._streams and not self._streams[stream_id].closed:
            raise ValueError(f"stream {stream_id!r} is already registered")
        rx = StreamReceiver(stream_id, max_reorder=max_reorder)
        self._streams[stream_id] = rx
        return rx

    def unregister(self, stream_id: str) -> None:
        self._streams.pop(stream_id, None)

    def deliver(self, sender: str, chunk: DataStream) -> None:
        rx = self._streams.get(chunk.stream_id)
        if rx is None:
            self._count("unregistered_stream", chunk)
            return
        if rx.sender is None:
            rx.sender = sender
        elif rx.sender != sender:
            self._count("chunk_from_other_sender", chunk)
            return
        reason = rx._offer(chunk)
        if reason is not None:
            self._count(reason, chunk)
        if rx.closed:
            del self._streams[chunk.stream_id]

    def fail_sender(self, sender: str, err: Exception) -> None:
        """Breaks every open stream from ``sender`` (its connection is gone)."""
        for sid, rx in list(self._streams.items()):
            if rx.sender == sender:
                rx._fail(err)
                del self._streams[sid]

    def _count(self, reason: str, chunk: DataStream) -> None:
        self.drops[reason] += 1
        log.warning(
            "stream_drop reason=%s stream=%s seq=%d", reason, chunk.stream_id, chunk.sequence
        )


class StreamSender:
    """The sending end of one stream: numbered chunks, then ``end``."""

    def __init__(self, stream_id: str, send: Callable[[DataStream], Awaitable[None]]) -> None:
        self.stream_id = stream_id
        self._send = send
        self._sequence = 0
        self._ended = False

    async def send(self, payload: bytes, metadata: dict[str, str] | None = None) -> None:
        await self._emit(payload, metadata, end=False)

    async def end(self, payload: bytes = b"") -> None:
        """Sends the last chunk, flagged ``end_of_stream``."""
        await self._emit(payload, None, end=True)

    async def _emit(self, payload: bytes, metadata: dict[str, str] | None, *, end: bool) -> None:
        if self._ended:
            raise RuntimeError(f"stream {self.stream_id} already ended")
        chunk = DataStream(stream_id=self.stream_id, sequence=self._sequence, payload=payload)
        for k, v in (metadata or {}).items():
            chunk.metadata.add(key=k, value=v)
        if end:
            chunk.end_of_stream = True
            self._ended = True
        self._sequence += 1
        await self._send(chunk)
