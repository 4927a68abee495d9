"""Data streams for asyncio: ``StreamRegistry`` (what the runtime feeds chunks and
control frames to), ``StreamReceiver`` (an async iterator over one stream's
chunks, in order) and ``StreamSender`` (``actr.stream_sender``: numbered chunks
paced by the receiver's credit, then the end or a reset).

The rules (ordering, end of stream, bounds, F7 ownership, credit, resets, gaps,
early chunks, drops, idle expiry) are ``actr.stream_core``'s; this layer applies
its ``Effects``: wakes readers and senders, hands control frames to
``send_control``, and tells ``on_deadline`` of new deadlines.

A receiver is one iteration: leaving it (``break``, an exception, ``aclose``, or
the iterator being dropped), ``close()``, or ``async with`` ending, closes the
stream and takes it out of the registry; so do its end, a break, a reset, its
sender's connection failing, and ``expire`` once it was idle for
``idle_timeout``. The node's timer drives ``expire(now)`` at ``next_deadline()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

from actr.errors import ActrError
from actr.protocol.actr_pb2 import DataStream
from actr.stream_core import (
    LOG_EVERY,
    Effects,
    Gap,
    Stream,
    StreamCore,
    StreamLimit,
    StreamOverflow,
)
from actr.stream_credit import DEFAULT_WINDOW
from actr.stream_hold import EarlyHold
from actr.stream_sender import StreamSender

__all__ = [
    "LOG_EVERY",
    "Gap",
    "StreamLimit",
    "StreamOverflow",
    "StreamReceiver",
    "StreamRegistry",
    "StreamSender",
    "new_stream_id",
]

log = logging.getLogger(__name__)

MAX_GAPS = 1024  # gaps a receiver remembers (the newest); ``lost`` counts them all


def new_stream_id() -> str:
    """A fresh stream id (X-STR-6: "s-" and 32 hex digits)."""
    return "s-" + uuid.uuid4().hex


def _loop_time() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class StreamReceiver:
    """One registered stream; iterate it (once) to get its payload chunks in order.
    Raises, after what was released before, why the stream broke: StreamOverflow,
    the sender's reset (an ActrError), the connection's error, or TimedOut once
    idle for too long. A latency-first stream's gaps are in ``gaps``; ``events()``
    yields them in place, between the chunks."""

    def __init__(self, registry: StreamRegistry, stream: Stream) -> None:
        self._registry = registry
        self._stream = stream
        self._news = asyncio.Event()
        self._over = asyncio.Event()
        self.gaps: list[Gap] = []
        stream.reader = self
        if not stream.registered:
            self._over.set()

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
    def lost(self) -> int:
        """Chunks of a latency-first stream its reader never got (in the gaps)."""
        return self._stream.lost

    @property
    def closed(self) -> bool:
        """No chunk will come any more (ended, broken, reset, expired or closed)."""
        return not self._stream.registered

    def __aiter__(self) -> AsyncIterator[DataStream]:
        return self._chunks()

    def events(self) -> AsyncIterator[DataStream | Gap]:
        """The chunks and, in their place, the gaps (latency-first streams)."""
        return self._iterate()

    async def _chunks(self) -> AsyncIterator[DataStream]:
        try:
            async for item in self._iterate():
                if isinstance(item, DataStream):
                    yield item
        finally:
            self.close()  # leaving this one leaves the inner one too, now

    async def _iterate(self) -> AsyncIterator[DataStream | Gap]:
        stream = self._stream
        try:
            while True:
                item = self._registry._take(stream)
                if item is not None:
                    if isinstance(item, Gap):
                        self.gaps.append(item)
                        if len(self.gaps) > 2 * MAX_GAPS:
                            del self.gaps[:MAX_GAPS]
                    yield item
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

    def close(self, err: ActrError | None = None) -> None:
        """Done with it: it leaves the registry (later chunks are dropped), what it
        held is freed, and a sender that reads control frames is told CANCELLED if
        the stream had not ended. With ``err``, the reader raises it and the sender
        is reset with its code (a call stream whose call failed). Idempotent."""
        core = self._registry.core
        self._registry._apply(core.close(self._stream, self._registry.now(), err))
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


class StreamRegistry:
    """The streams an actor receives, keyed by (sender, stream_id), and those it
    sends, keyed by (receiver, stream_id)."""

    def __init__(
        self,
        *,
        max_reorder: int = 1024,
        max_buffered_bytes: int = 16 * 1024 * 1024,
        idle_timeout: float | None = 300.0,
        clock: Callable[[], float] = _loop_time,
        window: int = DEFAULT_WINDOW,
        gap_wait: float = 0.05,
        gap_chunks: int = 32,
        max_unread: int = 256,
        hold: EarlyHold | None = None,
        max_streams_per_sender: int = 16,
        max_streams: int = 256,
    ) -> None:
        self.core = StreamCore(
            max_reorder=max_reorder,
            max_buffered_bytes=max_buffered_bytes,
            idle_timeout=idle_timeout,
            window=window,
            gap_wait=gap_wait,
            gap_chunks=gap_chunks,
            max_unread=max_unread,
            hold=hold,
            max_streams_per_sender=max_streams_per_sender,
            max_streams=max_streams,
        )
        self.now = clock
        # Told each new deadline: the node re-arms its timer with it.
        self.on_deadline: Callable[[float], object] | None = None
        # (peer key, control frame): the node sends it on STREAM_RELIABLE.
        self.send_control: Callable[[str, DataStream], None] | None = None

    @property
    def drops(self) -> Counter[str]:
        """Chunks dropped, by reason (and ``stream_expired``: streams)."""
        return self.core.drops

    def __len__(self) -> int:
        return len(self.core)

    def stats(self) -> dict[str, Any]:
        return {**self.core.stats(), "drops": dict(self.core.drops)}

    def register(
        self,
        stream_id: str,
        sender: str,
        max_reorder: int | None = None,
        *,
        max_buffered_bytes: int | None = None,
        credit: bool = False,
        latency_first: bool = False,
        window: int | None = None,
    ) -> StreamReceiver:
        """The stream ``stream_id`` of ``sender`` (an ActrId text form). ``credit``:
        the sender speaks stream-credit (also taken from ``set_peer``). StreamLimit
        (a ResourceExhausted) if the sender, or all, have as many open as allowed."""
        now = self.now()
        stream, fx = self.core.open(
            stream_id,
            sender,
            now,
            max_reorder=max_reorder,
            max_buffered_bytes=max_buffered_bytes,
            credit=credit,
            latency_first=latency_first,
            window=window,
        )
        rx = StreamReceiver(self, stream)
        if self.on_deadline is not None and self.core.idle_timeout is not None:
            self.on_deadline(now + self.core.idle_timeout)
        self._apply(fx)
        return rx

    def unregister(self, stream_id: str, sender: str) -> None:
        stream = self.core.get(stream_id, sender)
        if stream is not None:
            self._apply(self.core.close(stream, self.now()))
            _wake(stream)

    def deliver(self, sender: str, chunk: DataStream) -> None:
        """A chunk or a control frame from ``sender``."""
        self._apply(self.core.receive(sender, chunk, self.now()))

    def set_peer(self, sender: str, credit: bool, window: int = DEFAULT_WINDOW) -> None:
        """What ``sender``'s Hello said: whether it speaks stream-credit, and the
        window it grants the streams we send it."""
        self._apply(self.core.set_peer(sender, credit=credit, window=window, now=self.now()))

    def fail_sender(self, sender: str, err: Exception) -> None:
        """Breaks every open stream from and to ``sender`` (its connection is gone)."""
        self._apply(self.core.fail_sender(sender, err))

    def expire(self, now: float | None = None) -> int:
        """Ends the streams idle for ``idle_timeout`` (their readers get TimedOut),
        skips latency-first gaps and drops early chunks that waited too long.
        Returns the number of streams ended idle."""
        fx = self.core.expire(self.now() if now is None else now)
        self._apply(fx)
        return fx.expired

    def next_deadline(self) -> float | None:
        return self.core.next_deadline()

    def open_sender(
        self,
        peer_key: str,
        stream_id: str,
        send: Callable[[DataStream], Awaitable[None]],
        *,
        credit: bool | None = None,
        window: int | None = None,
        latency_first: bool = False,
    ) -> StreamSender:
        """The sending end of ``stream_id`` to ``peer_key``; ``send`` puts a frame on
        the stream's channel. ``credit``/``window``: whether the peer speaks
        stream-credit and its Hello's window (default: what ``set_peer`` said)."""
        known = self.core.speaks_credit(peer_key)
        controls = known if credit is None else credit
        if window is None:
            window = self.core.peer_window(peer_key) or DEFAULT_WINDOW
        out = self.core.out.open(
            peer_key, stream_id, controls=controls, window=window, latency_first=latency_first
        )
        return StreamSender(stream_id, send, registry=self, out=out)

    # -- inside ------------------------------------------------------------------

    def _take(self, stream: Stream) -> DataStream | Gap | None:
        item, grants = self.core.take(stream, self.now())
        for peer, frame in grants:
            self._send_control(peer, frame)
        return item

    def _apply(self, fx: Effects) -> None:
        for stream in fx.wake:
            _wake(stream)
        for out in fx.senders:
            if isinstance(out.writer, StreamSender):
                out.writer._wake()
        for peer, frame in fx.send:
            self._send_control(peer, frame)
        if fx.deadline is not None and self.on_deadline is not None:
            self.on_deadline(fx.deadline)

    def _send_control(self, peer: str, frame: DataStream) -> None:
        if self.send_control is None:
            self.core.drops["control_unsent"] += 1  # nobody wired: counted, not lost silently
            return
        try:
            self.send_control(peer, frame)
        except Exception:
            log.exception("stream_control_failed peer=%s stream=%s", peer, frame.stream_id)


def _wake(stream: Stream) -> None:
    if isinstance(stream.reader, StreamReceiver):
        stream.reader._wake()
