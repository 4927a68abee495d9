"""Data streams for asyncio: ``StreamRegistry`` (what the runtime feeds chunks to),
``StreamReceiver`` (an async iterator over one stream's chunks, in order) and
``StreamSender`` (numbered chunks, then the end).

The rules (ordering, end of stream, bounds, F7 ownership, drops, idle expiry)
are ``actr.stream_core``'s; this layer wakes the reader of each stream the core
says has news, and reads the clock (the running loop's time) for it.

A receiver is one iteration: leaving it (``break``, an exception, ``aclose``, or
the iterator being dropped), ``close()``, or ``async with`` ending, closes the
stream and takes it out of the registry; so do its end, a break, its sender's
connection failing, and ``expire`` once it was idle for ``idle_timeout``. The
node's timer drives ``expire(now)`` at ``next_deadline()``; ``on_deadline`` is
told each new stream's deadline (to re-arm that timer).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType

from actr.protocol.actr_pb2 import DataStream
from actr.stream_core import LOG_EVERY, Stream, StreamCore, StreamOverflow

__all__ = [
    "LOG_EVERY",
    "StreamOverflow",
    "StreamReceiver",
    "StreamRegistry",
    "StreamSender",
]


def _loop_time() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class StreamReceiver:
    """One registered stream; iterate it (once) to get its payload chunks in order.
    Raises, after what was released before, why the stream broke: StreamOverflow,
    the sender's connection error, or TimedOut once idle for too long."""

    def __init__(self, registry: StreamRegistry, stream: Stream) -> None:
        self._registry = registry
        self._stream = stream
        self._news = asyncio.Event()
        self._over = asyncio.Event()
        stream.reader = self

    @property
    def stream_id(self) -> str:
        return self._stream.stream_id

    @property
    def sender(self) -> str:
        """The ActrId text of the only peer whose chunks it takes."""
        return self._stream.sender

    @property
    def next_sequence(self) -> int:
        return self._stream.next_sequence

    @property
    def closed(self) -> bool:
        """No chunk will come any more (ended, broken, expired or closed)."""
        return not self._stream.registered

    def __aiter__(self) -> AsyncIterator[DataStream]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[DataStream]:
        stream = self._stream
        try:
            while True:
                chunk = stream.take(self._registry.now())
                if chunk is not None:
                    yield chunk
                    continue
                if not stream.registered:
                    if stream.error is not None:
                        raise stream.error
                    return
                self._news.clear()
                await self._news.wait()
        finally:
            self.close()

    async def collect(self) -> list[DataStream]:
        return [c async for c in self]

    def close(self) -> None:
        """Done with it: it leaves the registry (later chunks are dropped as
        unregistered) and what it held is freed. Idempotent."""
        self._registry.core.close(self._stream)
        self._wake()

    async def wait_closed(self) -> None:
        """Returns once no chunk will come any more."""
        await self._over.wait()

    async def __aenter__(self) -> StreamReceiver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _wake(self) -> None:
        self._news.set()
        if not self._stream.registered:
            self._over.set()


def _wake(stream: Stream) -> None:
    if isinstance(stream.reader, StreamReceiver):
        stream.reader._wake()


class StreamRegistry:
    """The streams an actor receives, keyed by (sender, stream_id)."""

    def __init__(
        self,
        *,
        max_reorder: int = 1024,
        max_buffered_bytes: int = 16 * 1024 * 1024,
        idle_timeout: float | None = 300.0,
        clock: Callable[[], float] = _loop_time,
    ) -> None:
        self.core = StreamCore(
            max_reorder=max_reorder,
            max_buffered_bytes=max_buffered_bytes,
            idle_timeout=idle_timeout,
        )
        self.now = clock
        # Told each new stream's deadline: the node re-arms its timer with it.
        self.on_deadline: Callable[[float], object] | None = None

    @property
    def drops(self) -> Counter[str]:
        """Chunks dropped, by reason (and ``stream_expired``: streams)."""
        return self.core.drops

    def __len__(self) -> int:
        return len(self.core)

    def register(
        self,
        stream_id: str,
        sender: str,
        max_reorder: int | None = None,
        *,
        max_buffered_bytes: int | None = None,
    ) -> StreamReceiver:
        """The stream ``stream_id`` of ``sender`` (an ActrId text form)."""
        now = self.now()
        stream = self.core.open(
            stream_id, sender, now, max_reorder=max_reorder, max_buffered_bytes=max_buffered_bytes
        )
        rx = StreamReceiver(self, stream)
        if self.on_deadline is not None and self.core.idle_timeout is not None:
            self.on_deadline(now + self.core.idle_timeout)
        return rx

    def unregister(self, stream_id: str, sender: str) -> None:
        stream = self.core.get(stream_id, sender)
        if stream is not None:
            self.core.close(stream)
            _wake(stream)

    def deliver(self, sender: str, chunk: DataStream) -> None:
        stream = self.core.receive(sender, chunk, self.now())
        if stream is not None:
            _wake(stream)

    def fail_sender(self, sender: str, err: Exception) -> None:
        """Breaks every open stream from ``sender`` (its connection is gone)."""
        for stream in self.core.fail_sender(sender, err):
            _wake(stream)

    def expire(self, now: float | None = None) -> int:
        """Ends the streams idle for ``idle_timeout`` (their readers get TimedOut)."""
        gone = self.core.expire(self.now() if now is None else now)
        for stream in gone:
            _wake(stream)
        return len(gone)

    def next_deadline(self) -> float | None:
        return self.core.next_deadline()


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
