"""The stream registry: (sender, stream_id) -> subscriber, chunks handed over in
sequence order.

A receiver registers a stream_id *from one sender* (an ActrId's text form) and
iterates its chunks; chunks that arrive out of order wait in a bounded reorder
buffer; ``end_of_stream`` closes the stream once every earlier chunk was
delivered. A stream is its sender's: the same stream_id from another peer is
another stream, so nobody can feed chunks into a stream someone else
announced (F7). Chunks for a stream nobody registered are dropped and counted
(``chunk_from_other_sender`` when the stream_id is registered for another
sender); so are the chunks of a sender the actor's ACL refuses, before they
reach any stream (``refuse``, ACL-2).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from actr.protocol.actr_pb2 import DataStream

log = logging.getLogger(__name__)

# A flood of bad chunks must not flood the log: the first drop of each reason is
# logged, then every LOG_EVERY-th; the counters have them all.
LOG_EVERY = 1000

_END = object()


class StreamOverflow(Exception):
    """The reorder buffer of a stream overflowed; the stream is broken."""


@dataclass
class StreamReceiver:
    """One registered stream; iterate it to get payload chunks in order."""

    stream_id: str
    sender: str = ""  # the ActrId text of the only peer whose chunks it takes
    max_reorder: int = 1024
    next_sequence: int = 0
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
    _streams: dict[tuple[str, str], StreamReceiver] = field(default_factory=dict)
    # stream_id -> how many senders it is registered for (to name a drop's reason).
    _ids: Counter[str] = field(default_factory=Counter)

    def register(self, stream_id: str, sender: str, max_reorder: int = 1024) -> StreamReceiver:
        """The stream ``stream_id`` of ``sender`` (an ActrId text form)."""
        key = (sender, stream_id)
        if key in self._streams and not self._streams[key].closed:
            raise ValueError(f"stream {stream_id!r} from {sender} is already registered")
        if key not in self._streams:
            self._ids[stream_id] += 1
        rx = StreamReceiver(stream_id, sender, max_reorder=max_reorder)
        self._streams[key] = rx
        return rx

    def unregister(self, stream_id: str, sender: str) -> None:
        self._remove((sender, stream_id))

    def _remove(self, key: tuple[str, str]) -> None:
        if self._streams.pop(key, None) is not None:
            self._ids[key[1]] -= 1
            if not self._ids[key[1]]:
                del self._ids[key[1]]

    def refuse(self, sender: str, chunk: DataStream) -> None:
        """A chunk from a sender the actor's ACL refuses: counted, touches no stream."""
        self._count("sender_refused_by_acl", chunk, sender)

    def deliver(self, sender: str, chunk: DataStream) -> None:
        key = (sender, chunk.stream_id)
        rx = self._streams.get(key)
        if rx is None:
            other = chunk.stream_id in self._ids
            self._count(
                "chunk_from_other_sender" if other else "unregistered_stream", chunk, sender
            )
            return
        reason = rx._offer(chunk)
        if reason is not None:
            self._count(reason, chunk, sender)
        if rx.closed:
            self._remove(key)

    def fail_sender(self, sender: str, err: Exception) -> None:
        """Breaks every open stream from ``sender`` (its connection is gone)."""
        for key, rx in list(self._streams.items()):
            if key[0] == sender:
                rx._fail(err)
                self._remove(key)

    def _count(self, reason: str, chunk: DataStream, sender: str) -> None:
        self.drops[reason] += 1
        n = self.drops[reason]
        if n == 1 or n % LOG_EVERY == 0:
            log.warning(
                "stream_drop reason=%s sender=%s stream=%s seq=%d total=%d",
                reason,
                sender,
                chunk.stream_id,
                chunk.sequence,
                n,
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
