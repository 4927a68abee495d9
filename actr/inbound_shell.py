"""Carrying out the inbound core's decisions (actr/inbound.py) with I/O.

``Inbound.on_message`` is the transport's message callback: it asks the core
what to do with one message, then does it: commit an accepted request to the
mailbox (MBX-1) and answer what the mailbox says of it (a stored answer for a
duplicate, ENV-6; RESOURCE_EXHAUSTED past the bound, MBX-5; UNAVAILABLE when
the database fails), wake a pending call, deliver a chunk, or send an answer
the core built, record a peer's Hello (X-HELLO-1) and tell ``on_hello``, or pass
a caller's Cancel (X-CALL-1) to ``on_cancel``. ``answer`` sends any RESPONSE back
to its caller; the scheduler uses it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from actr.envelopes import REQUEST, error_answer
from actr.errors import ActrError, ErrorCode, ResourceExhausted
from actr.inbound import (
    Accept,
    Answer,
    Cancel,
    Deliver,
    Hello,
    InboundCore,
    Resolve,
    RuntimeRoute,
)
from actr.mailbox import Mailbox, Outcome
from actr.pending import PendingTable
from actr.protocol.actr_pb2 import RpcEnvelope
from actr.stream_calls import StreamCalls
from actr.streams import StreamRegistry
from actr.transport import Peer, Transport

__all__ = ["Inbound"]

log = logging.getLogger(__name__)


class Inbound:
    def __init__(
        self,
        core: InboundCore,
        transport: Transport,
        pending: PendingTable[asyncio.Future[RpcEnvelope]],
        streams: StreamRegistry,
        counters: Counter[str],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        runtime_route: Callable[[RpcEnvelope], bytes],
    ) -> None:
        self.core = core
        self.transport = transport
        self.pending = pending
        self.streams = streams
        self.counters = counters
        self.mailbox: Mailbox | None = None  # set once opened; None on a client
        self._spawn = spawn
        # The body of an admitted runtime route's answer (EXT-1).
        self._runtime_route = runtime_route
        # A peer's Hello was recorded on it (X-HELLO-1); a caller cancelled its call
        # (caller key, request_id; X-CALL-1). The node sets both.
        self.on_hello: Callable[[Peer], None] = lambda _peer: None
        self.on_cancel: Callable[[str, str], None] = lambda _caller, _request_id: None
        self.stream_calls: StreamCalls | None = None  # calls with streams (X-STR-6)

    def on_message(self, peer: Peer, ptype: int, data: bytes) -> None:
        now = asyncio.get_running_loop().time()
        action = self.core.receive(peer.remote, ptype, data, now)
        if isinstance(action, Resolve):
            env = action.envelope
            entry = self.pending.resolve(env.request_id, peer.key)
            if entry is not None and not entry.waiter.done():
                entry.waiter.set_result(env)
        elif isinstance(action, Accept):
            self._accept(peer.key, action)
        elif isinstance(action, Deliver):
            self.streams.deliver(peer.key, action.chunk)
        elif isinstance(action, Answer):
            self._spawn(self.answer(peer.key, action.payload_type, action.data))
        elif isinstance(action, RuntimeRoute):
            body = self._runtime_route(action.envelope)
            self._spawn(self.answer(peer.key, action.payload_type, body))
        elif isinstance(action, Hello):
            self.counters["hello_received"] += 1
            peer.got_hello(action.features, action.window)
            self.on_hello(peer)
        elif isinstance(action, Cancel):
            self.on_cancel(peer.key, action.request_id)
        # Drop: counted by the core.

    def _accept(self, caller: str, action: Accept) -> asyncio.Future[Any]:
        """Submits the request to the mailbox (MBX-1); what the commit says of it is
        carried out by a callback on its future, not by a task per message. From the
        same commit the scheduler gets the row. Returns the future (tests await it)."""
        env = action.envelope
        box = self.mailbox
        assert box is not None  # the core accepts nothing on a node without one
        # X-STR-6: its input stream is registered now, before the handler runs (its
        # chunks may come before it; they are held until then, X-STR-8).
        streams = False
        if env.metadata and self.stream_calls is not None:
            try:
                streams = self.stream_calls.accepted(caller, env)
            except ResourceExhausted as e:
                # Past the caps on open streams: refused, not queued (memory stays
                # bounded by streams x window).
                self.counters["refused_stream_limit"] += 1
                done = asyncio.get_running_loop().create_future()
                done.set_result(None)
                if env.direction == REQUEST:
                    self._spawn(
                        self._refuse(caller, action, ErrorCode.RESOURCE_EXHAUSTED, e.message)
                    )
                return done
        try:
            fut: asyncio.Future[Any] = box.enqueue(
                caller=caller,
                request_id=env.request_id,
                priority=action.priority,
                payload_type=action.payload_type,
                envelope=action.raw,
            )
        except RuntimeError as e:  # closed: the node is stopping
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(e)
        fut.add_done_callback(lambda f: self._accepted(caller, action, f, streams))
        return fut

    def _accepted(
        self, caller: str, action: Accept, fut: asyncio.Future[Any], streams: bool = False
    ) -> None:
        env = action.envelope
        is_request = env.direction == REQUEST
        e = fut.exception()
        if e is None and fut.result().outcome is Outcome.QUEUED:
            return
        if streams and self.stream_calls is not None:
            self.stream_calls.finished(caller, env.request_id)  # not queued: not run
        if e is None:
            result = fut.result()
            if result.outcome is Outcome.DUPLICATE_ANSWERED:
                self.counters["duplicate_answered"] += 1
                if is_request and result.answer is not None:
                    self._spawn(self.answer(caller, action.payload_type, result.answer))
            else:
                self.counters["duplicate_pending"] += 1
        elif isinstance(e, ResourceExhausted):
            # MBX-5: refused, never silently dropped; the caller sees why.
            self.counters["refused_mailbox_full"] += 1
            if is_request:
                self._spawn(self._refuse(caller, action, ErrorCode.RESOURCE_EXHAUSTED, e.message))
        else:
            # Not committed (disk full, I/O error): refused, so the caller retries
            # rather than waits for its deadline.
            self.counters["refused_mailbox_error"] += 1
            log.error("enqueue_failed caller=%s request_id=%s error=%r", caller, env.request_id, e)
            if is_request:
                self._spawn(
                    self._refuse(caller, action, ErrorCode.UNAVAILABLE, f"mailbox failed: {e}")
                )

    async def _refuse(self, caller: str, action: Accept, code: ErrorCode, message: str) -> None:
        reply = error_answer(action.envelope, code, message)
        await self.answer(caller, action.payload_type, reply.SerializeToString())

    async def answer(self, caller: str, ptype: int, data: bytes) -> None:
        peer = self.transport.peer(caller)
        if peer is None:
            # The caller retries with the same request_id and gets the stored answer.
            self.counters["answer_undeliverable"] += 1
            log.warning("answer_undeliverable caller=%s", caller)
            return
        try:
            await peer.send(ptype, data)
        except ActrError as e:
            self.counters["answer_undeliverable"] += 1
            log.warning("answer_send_failed caller=%s error=%s", caller, e)
