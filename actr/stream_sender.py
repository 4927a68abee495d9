"""The sending end of a stream, for asyncio: ``StreamSender`` (X-STR-3, X-STR-4).

Its credit and table entry are ``actr.stream_credit.OutStream``, kept in the
registry's core (``actr.streams.StreamRegistry.open_sender``), which wakes it
when a grant, a reset or a failure comes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING

from actr.errors import ActrError, ErrorCode
from actr.protocol.actr_pb2 import DataStream
from actr.stream_credit import CHUNK_SIZE, OutStream, error_code, reset_frame

if TYPE_CHECKING:
    from actr.streams import StreamRegistry

__all__ = ["StreamSender"]

log = logging.getLogger(__name__)


class StreamSender:
    """The sending end of one stream: numbered chunks, then ``end`` or ``reset``.

    ``send`` splits a payload into chunks of at most ``CHUNK_SIZE`` (and the
    window) and, on a credit stream, waits for the receiver's grants; it raises
    the receiver's reset or the connection's failure. Made by
    ``StreamRegistry.open_sender``; ``StreamSender(stream_id, send)`` alone is a
    plain stream (no credit, no control frames). ``async with``: leaving without
    ``end()`` resets the stream (INTERNAL "stream abandoned", or the error that
    left it)."""

    def __init__(
        self,
        stream_id: str,
        send: Callable[[DataStream], Awaitable[None]],
        *,
        registry: StreamRegistry | None = None,
        out: OutStream | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.stream_id = stream_id
        self._send = send
        self._registry = registry
        self._out = out or OutStream("", stream_id)
        self._out.writer = self
        self._chunk_size = chunk_size
        self._news = asyncio.Event()
        self._lock = asyncio.Lock()  # concurrent sends would interleave their chunks
        self._ended = False

    @property
    def peer(self) -> str:
        return self._out.peer

    @property
    def sent(self) -> int:
        """Payload bytes sent."""
        return self._out.sent

    @property
    def credit_limit(self) -> int | None:
        """What the receiver allows in all, None without credit."""
        return self._out.limit if self._out.credit else None

    @property
    def closed(self) -> bool:
        """Ended, reset or failed: nothing more can be sent."""
        return self._ended or self._out.error is not None

    async def send(self, payload: bytes, metadata: dict[str, str] | None = None) -> None:
        """Sends ``payload`` (``metadata`` on its first chunk)."""
        await self._emit(payload, metadata, end=False)

    async def end(self, payload: bytes = b"") -> None:
        """Sends the last chunk, flagged ``end_of_stream``. If that does not happen
        (cancelled while waiting for credit, a send failing), the stream is reset
        (CANCELLED for a cancel) so that its reader is told, and the error raised."""
        try:
            await self._emit(payload, None, end=True)
        except BaseException as e:
            if not self.closed:  # else it was ended, reset or failed already
                if isinstance(e, asyncio.CancelledError):
                    await self.reset(ErrorCode.CANCELLED, "sender cancelled")
                else:
                    await self.reset(*error_code(e))
            raise

    async def reset(self, code: int, message: str) -> None:
        """Ends the stream with an error (X-STR-4): its reader gets it after what it
        was sent. No-op once the stream is over."""
        if self.closed:
            return
        err = ActrError.from_code(int(code), message)
        self._finish(err)
        out = self._out
        if not out.controls:
            return  # the peer does not read control frames: it sees the stream stop
        frame = reset_frame(self.stream_id, int(code), message, from_receiver=False)
        registry = self._registry
        if out.latency_first and registry is not None and registry.send_control is not None:
            registry.send_control(out.peer, frame)  # the lossy channel might lose it
            return
        try:
            await self._send(frame)
        except Exception as e:  # the connection is gone: so is the stream
            log.info("stream_reset_unsent stream=%s error=%s", self.stream_id, e)

    async def __aenter__(self) -> StreamSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.closed:
            return
        if exc is None:
            await self.reset(ErrorCode.INTERNAL, "stream abandoned")
        elif isinstance(exc, asyncio.CancelledError):
            await self.reset(ErrorCode.CANCELLED, "sender cancelled")
        else:
            await self.reset(*error_code(exc))

    async def _emit(self, payload: bytes, metadata: dict[str, str] | None, *, end: bool) -> None:
        async with self._lock:
            self._check()
            if end:
                self._ended = True
            out = self._out
            size = out.chunk_size(self._chunk_size)
            pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
            done = False
            try:
                for i, piece in enumerate(pieces):
                    await self._wait_credit(len(piece))
                    chunk = DataStream(stream_id=self.stream_id, sequence=out.sequence)
                    chunk.payload = piece
                    if i == 0:
                        for k, v in (metadata or {}).items():
                            chunk.metadata.add(key=k, value=v)
                    if end and i == len(pieces) - 1:
                        chunk.end_of_stream = True
                    out.sequence += 1
                    out.sent += len(piece)
                    await self._send(chunk)
                done = True
            finally:
                if end and done:
                    self._finish(None)
                elif end:  # the end did not go: the stream is not over, reset() may tell
                    self._ended = False

    def _check(self) -> None:
        if self._out.error is not None:
            raise self._out.error
        if self._ended:
            raise RuntimeError(f"stream {self.stream_id} already ended")

    async def _wait_credit(self, size: int) -> None:
        out = self._out
        while True:
            if out.error is not None:
                raise out.error
            if out.may_send(size):
                return
            self._news.clear()
            await self._news.wait()

    def _finish(self, err: Exception | None) -> None:
        self._ended = True
        if self._registry is not None:
            self._registry.core.out.close(self._out, err)
        elif err is not None and self._out.error is None:
            self._out.error = err
        self._wake()

    def _wake(self) -> None:
        self._news.set()
