"""Calls with streams (docs/protocol.md X-STR-6), both ends, with I/O.

Caller: ``open_call`` checks the peer speaks ``call-streams`` (X-HELLO-1),
allocates the stream ids, registers the answer stream's receiver *before* the
REQUEST goes, opens the input stream's sender, and sends the REQUEST with the
ids in its runtime metadata; the user gets a ``StreamCall``. A failed call
closes its answer stream with the call's error; cancelling it tells the callee
(X-CALL-1) and resets both streams.

Callee: ``accepted`` registers a REQUEST's input stream when the request is
accepted (before the mailbox: its chunks may come first, X-STR-8 holds them
until then); the handler later takes it (``input``) and opens its answer
stream (``output``); ``finished`` closes what the handler left. A caller whose
connection goes takes its calls with streams with it: ``calls_of`` names them,
for the node to cancel.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

from google.protobuf.message import Message

from actr.call_streams import STREAM_IN_KEY, STREAM_OUT_KEY, stream_ids, typed_input
from actr.calls import Calls
from actr.errors import (
    ActrError,
    Cancelled,
    Internal,
    NotImplementedByPeer,
    ResourceExhausted,
    Unavailable,
)
from actr.hello import CALL_STREAMS, CANCEL, peer_features
from actr.protocol.actr_pb2 import ActrId, DataStream, PayloadType, RpcEnvelope
from actr.stream_call import StreamCall
from actr.stream_sender import StreamSender
from actr.streams import StreamReceiver, StreamRegistry, new_stream_id
from actr.transport import Peer, Transport

__all__ = ["StreamCalls"]

log = logging.getLogger(__name__)

Kind = type[Message] | type[bytes]


class StreamCalls:
    def __init__(
        self,
        calls: Calls,
        streams: StreamRegistry,
        transport: Transport,
        counters: Counter[str],
    ) -> None:
        self.calls = calls
        self.streams = streams
        self.transport = transport
        self.counters = counters
        # Callee: input streams of accepted requests, until their handler takes them.
        self._inputs: dict[tuple[str, str], StreamReceiver] = {}
        # Callee: requests with streams, accepted and not finished, by caller.
        self._active: dict[str, set[str]] = {}

    # ---- caller ----

    async def open_call(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes = b"",
        *,
        send: Kind | None = None,
        out: Kind | None = None,
        response_type: type[Message] | None = None,
        timeout: float = 60.0,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> StreamCall[Any]:
        """Starts a call whose handler takes a stream of ``send`` elements and/or
        streams ``out`` elements back (X-STR-6); see ``StreamCall``."""
        if send is None and out is None:
            raise ValueError("open_call needs send= or out= (a unary call is call())")
        peer = await self.calls.connected(target, timeout, route_key)
        if CALL_STREAMS not in await peer_features(peer):
            raise NotImplementedByPeer(f"{peer.key} does not take calls with streams")
        rid = request_id or uuid.uuid4().hex
        meta: dict[str, str] = {}
        rx: StreamReceiver | None = None
        tx: StreamSender | None = None
        if out is not None:
            meta[STREAM_OUT_KEY] = new_stream_id()
            rx = self.streams.register(meta[STREAM_OUT_KEY], peer.key)
        if send is not None:
            meta[STREAM_IN_KEY] = new_stream_id()
            tx = self.streams.open_sender(peer.key, meta[STREAM_IN_KEY], _sends_to(peer))
        sent = asyncio.Event()
        answer = asyncio.ensure_future(
            self.calls.call_raw(
                peer.remote,
                route_key,
                request,
                timeout=timeout,
                request_id=rid,
                metadata=metadata,
                runtime_metadata=meta,
                on_sent=sent.set,
            )
        )

        def end_streams(err: ActrError, *, tell: bool) -> None:
            """The call is over: its answer stream ends with ``err``, and so does its
            input stream (a sender waiting for credit wakes with it); ``tell``: the
            callee is told by a reset frame (else its own end of the call does it)."""
            if rx is not None and not rx.closed:
                rx.close(err)
            if tx is not None and not tx.closed:
                if tell:
                    reset = asyncio.ensure_future(tx.reset(err.raw_code, err.message))
                    reset.add_done_callback(_quiet)
                else:
                    tx._finish(err)  # closed here, nothing sent

        def answered(fut: asyncio.Future[bytes]) -> None:
            if fut.cancelled():
                # Cancelled (X-CALL-1): a callee that speaks cancel ends its side of
                # both streams itself; a reset frame first would fail its input
                # before its handler sees the cancellation.
                end_streams(Cancelled("call cancelled"), tell=CANCEL not in peer.features)
                return
            err = fut.exception()  # retrieved here: an unread failure is no warning
            if isinstance(err, ActrError):
                end_streams(err, tell=True)

        answer.add_done_callback(answered)
        # The REQUEST goes before the first chunk, so the callee registers the input
        # stream on time (what comes earlier anyway is held a while, X-STR-8).
        waiting = asyncio.ensure_future(sent.wait())
        try:
            await asyncio.wait({answer, waiting}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            answer.cancel()
            raise
        finally:
            waiting.cancel()
        if answer.done() and not sent.is_set():
            # Refused before anything was sent (bad metadata, no time left...).
            raise answer.exception() or Internal("call ended before its request was sent")

        def cancel() -> None:
            self.counters["stream_calls_cancelled"] += 1
            answer.cancel()  # its exchange sends the Cancel; ``answered`` ends the streams

        self.counters["stream_calls_opened"] += 1
        return StreamCall(
            rid,
            answer,
            rx=rx,
            tx=tx,
            send_type=send,
            out_type=out,
            response_type=response_type,
            on_cancel=cancel,
        )

    async def open_stream(
        self, target: str | ActrId, stream_id: str, *, latency_first: bool = False
    ) -> StreamSender:
        """A sender of one plain stream (the receiver registers ``stream_id`` for us).
        With a peer that speaks stream-credit (its Hello, awaited at most HELLO_WAIT
        on a new connection) it is paced by the receiver's grants (X-STR-3);
        ``latency_first`` uses the unordered channel with at most 3 retransmissions
        (DC-1), whose receiver skips a lost chunk's gap (X-STR-7)."""
        peer = await self.calls.peer_for(target)
        await peer_features(peer)
        ptype = PayloadType.STREAM_LATENCY_FIRST if latency_first else PayloadType.STREAM_RELIABLE
        return self.streams.open_sender(
            peer.key, stream_id, _sends_to(peer, ptype), latency_first=latency_first
        )

    # ---- callee ----

    def accepted(self, caller: str, env: RpcEnvelope) -> bool:
        """A REQUEST was accepted: its input stream, if any, is registered now.
        True if this made it a call with streams under way (a duplicate of one
        already under way is not: its streams are the first's)."""
        in_id, out_id = stream_ids(env)
        if not (in_id or out_id):
            return False
        active = self._active.setdefault(caller, set())
        if env.request_id in active:
            return False
        if in_id:
            try:
                self._inputs[(caller, env.request_id)] = self.streams.register(in_id, caller)
            except ValueError:  # the id is open already: hostile or broken caller
                self.counters["stream_call_id_in_use"] += 1
            except ResourceExhausted:  # too many open streams: the request is refused
                if not active:
                    del self._active[caller]
                raise
        active.add(env.request_id)
        return True

    def finished(self, caller: str, request_id: str) -> None:
        """The request is done (handled, refused as a duplicate, cancelled): what
        its handler left of its input stream goes (the sender is reset)."""
        rx = self._inputs.pop((caller, request_id), None)
        if rx is not None:
            rx.close()
        active = self._active.get(caller)
        if active is not None:
            active.discard(request_id)
            if not active:
                del self._active[caller]

    def input(self, caller: str, request_id: str, kind: Kind) -> AsyncIterator[Any]:
        """The handler's input stream, decoded. A request redelivered after a restart
        has none any more: it raises UNAVAILABLE (call streams are not durable)."""
        rx = self._inputs.get((caller, request_id))
        if rx is None:
            return _lost()
        return typed_input(rx, kind)

    def output(self, caller: str, stream_id: str) -> StreamSender:
        """The sending end of the handler's answer stream (UNAVAILABLE if its caller's
        connection is gone already)."""
        peer = self.transport.peer(caller)
        if peer is None:
            raise Unavailable(f"connection to {caller} lost")
        return self.streams.open_sender(caller, stream_id, _sends_to(peer))

    def calls_of(self, caller: str) -> list[str]:
        """Request ids of the calls with streams ``caller`` has under way."""
        return sorted(self._active.get(caller, ()))


def _sends_to(peer: Peer, ptype: int = PayloadType.STREAM_RELIABLE) -> Any:
    async def send(frame: DataStream) -> None:
        await peer.send(ptype, frame.SerializeToString())

    return send


async def _lost() -> AsyncIterator[Any]:
    raise Unavailable("the call's input stream is gone (the request was redelivered)")
    yield  # an async generator


def _quiet(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("stream_reset_failed error=%r", task.exception())
