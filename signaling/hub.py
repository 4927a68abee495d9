"""Live signaling sockets by actor, and the carrying out of the dispatcher's actions.

Each socket has an outbox drained by its own writer task, so a slow reader never
stalls the socket that relays to it (SIG-9: one connection does not affect
another). The outbox is bounded in frames (``OUTBOX_LIMIT``) and in bytes
(``max_outbox_bytes``, counting the frame being written, F4): a frame that would
take it past either bound closes the socket with 1013 (``slow_consumer``), drops
what was queued, and aborts the connection if the close does not go out within
``CLOSE_TIMEOUT``: the peer is not keeping up and will reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from aiohttp import web

from actr.wire import CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN_LATER
from signaling.actions import Action, Announce, Deliver, Disconnect, Forward
from signaling.events import Event
from signaling.stats import Stats

__all__ = ["Connection", "Hub"]

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 1024
# How long a closing socket may take to finish its close handshake.
CLOSE_TIMEOUT = 5.0


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


_STOP = object()


class Connection:
    """One actor's signaling socket: ``send`` queues, the writer task writes in order."""

    _ids = itertools.count(1)

    def __init__(
        self,
        ws: web.WebSocketResponse,
        actor: str,
        stats: Stats,
        max_bytes: int = 0,
        abort: Callable[[], None] | None = None,
        dropped: Callable[[], None] | None = None,
    ) -> None:
        """``max_bytes``: the outbox's bound in bytes (0: none); ``abort``: drops the
        connection without a close handshake (a peer that reads nothing gets none);
        ``dropped``: called soon after the socket is given up for falling behind, so its
        actor leaves relay and route candidates before the close completes."""
        self.ws = ws
        self.actor = actor
        self.id = next(Connection._ids)
        self._stats = stats
        self._max_bytes = max_bytes
        self._abort_transport = abort
        self._dropped = dropped
        self._outbox: asyncio.Queue[bytes | _Close | object] = asyncio.Queue(OUTBOX_LIMIT)
        # Bytes queued plus the frame being written.
        self._queued_bytes = 0
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._abort: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin writing; call once the WebSocket handshake is done. Earlier sends wait."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")

    @property
    def closing(self) -> bool:
        """Replaced, unregistered or shutting down: it no longer speaks for its actor."""
        return self._closing

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def send(self, data: bytes) -> None:
        if self._closing:
            return
        over_bytes = self._max_bytes > 0 and self._queued_bytes + len(data) > self._max_bytes
        if over_bytes or self._outbox.full():
            self._slow_consumer(len(data))
            return
        self._queued_bytes += len(data)
        self._outbox.put_nowait(data)

    def _slow_consumer(self, size: int) -> None:
        """F4: the peer does not read fast enough; what it was owed is dropped."""
        self._stats.reject("slow_consumer")
        log.warning(
            "socket_slow_consumer actor=%s connection=%d queued_frames=%d queued_bytes=%d "
            "frame_bytes=%d",
            self.actor,
            self.id,
            self._outbox.qsize(),
            self._queued_bytes,
            size,
        )
        self._closing = True
        while not self._outbox.empty():
            item = self._outbox.get_nowait()
            if isinstance(item, bytes):
                self._queued_bytes -= len(item)
        if self._dropped is not None:
            asyncio.get_running_loop().call_soon(self._dropped)
        self._abort = asyncio.create_task(
            self._close_or_abort(CLOSE_TRY_AGAIN_LATER, "outbox full")
        )

    async def _close_or_abort(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode()[:120]), CLOSE_TIMEOUT
            )
        except (TimeoutError, ConnectionError, RuntimeError) as e:
            log.info("socket_aborted actor=%s connection=%d error=%r", self.actor, self.id, e)
            if self._abort_transport is not None:
                self._abort_transport()

    def close(self, code: int, reason: str) -> None:
        """Close after everything queued before has been written."""
        if self._closing:
            return
        self._closing = True
        try:
            self._outbox.put_nowait(_Close(code, reason))
        except asyncio.QueueFull:
            self._abort = asyncio.create_task(self._close_or_abort(code, reason))

    async def _write_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            if item is _STOP:
                return
            try:
                if isinstance(item, _Close):
                    await self.ws.close(code=item.code, message=item.reason.encode()[:120])
                    return
                assert isinstance(item, bytes)
                try:
                    await self.ws.send_bytes(item)
                finally:
                    self._queued_bytes -= len(item)
            except (ConnectionError, RuntimeError) as e:
                # The peer went away; the reader sees the close and cleans up.
                log.debug(
                    "socket_write_failed actor=%s connection=%d error=%s", self.actor, self.id, e
                )
                return
            except Exception:
                log.exception("socket_writer_failed actor=%s connection=%d", self.actor, self.id)
                return

    async def finish(self) -> None:
        """After the reader stopped: let a close in progress end, then stop the writer."""
        self._closing = True
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._outbox.put_nowait(_STOP)
            try:
                await asyncio.wait_for(asyncio.shield(writer), CLOSE_TIMEOUT)
            except TimeoutError:
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if self._abort is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._abort


class Fanout(Protocol):
    """The way to the other nodes (``signaling.cluster``); both calls queue, never block."""

    def forward(self, node: str, to: str, data: bytes) -> None: ...

    def announce(self, event: Event) -> None: ...


class Hub:
    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self._by_actor: dict[str, Connection] = {}
        # Set when Redis is configured; with one node, announcements go nowhere.
        self.fanout: Fanout | None = None

    def __len__(self) -> int:
        return len(self._by_actor)

    def get(self, actor: str) -> Connection | None:
        return self._by_actor.get(actor)

    def attach(self, conn: Connection) -> Connection | None:
        """Make ``conn`` its actor's socket; returns the socket it replaces, if any."""
        old = self._by_actor.get(conn.actor)
        self._by_actor[conn.actor] = conn
        return old

    def detach(self, conn: Connection) -> None:
        if self._by_actor.get(conn.actor) is conn:
            del self._by_actor[conn.actor]

    def apply(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, Announce):
                if self.fanout is not None:
                    self.fanout.announce(action.event)
                continue
            if isinstance(action, Forward):
                if self.fanout is not None:
                    self.fanout.forward(action.node, action.to, action.data)
                else:
                    self._stats.reject("relay_no_cluster")
                continue
            conn = self._by_actor.get(action.to)
            if conn is None:
                # Went away between the decision and now; its close already cleaned up.
                log.debug("action_target_gone actor=%s action=%s", action.to, type(action).__name__)
                continue
            if isinstance(action, Deliver):
                conn.send(action.data)
            elif isinstance(action, Disconnect):
                conn.close(action.code, action.reason)

    def deliver_forwarded(self, to: str, data: bytes) -> None:
        """A relay another node forwarded here (SIG-10)."""
        conn = self._by_actor.get(to)
        if conn is None or conn.closing:
            # It moved on between that node's decision and now; the sender retries.
            self._stats.reject("relay_target_gone")
            log.info("forwarded_relay_target_gone actor=%s", to)
            return
        self._stats.relays_received += 1
        conn.send(data)

    async def close_all(self) -> None:
        conns = list(self._by_actor.values())
        for conn in conns:
            conn.close(CLOSE_GOING_AWAY, "server shutting down")
        await asyncio.gather(*(conn.finish() for conn in conns), return_exceptions=True)
