"""Calling out: the caller's half of the path of one call (ARCHITECTURE.md).

``Calls`` resolves a target (a type through route candidates, SIG-7, cached; or
an id), gets a ready connection from the transport, writes the REQUEST, TELL or
stream chunks, and waits for the answer that the inbound shell hands to the
pending table. Deadlines live in the pending table alone: the node's one timer
(actr/timer.py) fires at the next one and fails what expired with TIMED_OUT, so
a call waits on its future and nothing else.

A call made while a handler runs gets at most the handler's remaining time
(X-CALL-2, ``actr.actor.DEADLINE``); a call whose task is cancelled tells the
callee (X-CALL-1, actr/cancel.py); user metadata is written to the envelope,
keys starting ``actr.`` refused (X-CALL-3); a target that is a node of this
process is reached through its ``LocalPeer`` (X-LOCAL-1, actr/local.py).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from opentelemetry.trace import SpanKind

from actr import telemetry
from actr.actor import DEADLINE
from actr.cancel import CallHandle, send_cancel
from actr.envelopes import REQUEST, TELL, encode
from actr.errors import (
    ActrError,
    DecodeFailure,
    Internal,
    InvalidArgument,
    NotFound,
    TimedOut,
)
from actr.identity import IdentityError, id_text, parse_id, parse_type
from actr.pending import PendingTable
from actr.protocol.actr_pb2 import (
    ActrId,
    MetadataEntry,
    PayloadType,
    RpcEnvelope,
)
from actr.signaling_client import SignalingClient
from actr.transport import Peer, Transport

__all__ = ["Calls", "check_metadata", "payload_of"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

_RELIABLE = PayloadType.RPC_RELIABLE  # plain values, read once (the hot path)
_SIGNAL = PayloadType.RPC_SIGNAL


def payload_of(answer: RpcEnvelope) -> bytes:
    """ENV-4: exactly one of payload or error; anything else is not a success."""
    has_payload = answer.HasField("payload")
    has_error = answer.HasField("error")
    if has_error and not has_payload:
        raise ActrError.from_proto(answer.error)
    if has_payload and not has_error:
        return answer.payload
    raise Internal("response carries both or neither of payload and error")


RUNTIME_KEYS = "actr."


def check_metadata(metadata: Mapping[str, str] | None) -> None:
    """X-CALL-3: keys starting ``actr.`` are the runtime's, refused from users."""
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgument("metadata maps strings to strings")
        if key.startswith(RUNTIME_KEYS):
            raise InvalidArgument(f"metadata key {key!r}: keys starting 'actr.' are the runtime's")


def _write_metadata(env: RpcEnvelope, *parts: Mapping[str, str] | None) -> None:
    for part in parts:
        for key, value in (part or {}).items():
            env.metadata.append(MetadataEntry(key=key, value=value))


class Calls:
    def __init__(
        self,
        signaling: SignalingClient,
        transport: Transport,
        pending: PendingTable[asyncio.Future[RpcEnvelope]],
        deadline_added: Callable[[float], None],
    ) -> None:
        self.signaling = signaling
        self.transport = transport
        self.pending = pending
        # Tells the node's timer of a new deadline (it re-arms if that one is earlier).
        self._deadline_added = deadline_added
        # Type text -> its route and the route's id text (kept, not rebuilt per call).
        self._routes_by_type: dict[str, tuple[ActrId, str]] = {}
        # X-LOCAL-1: the peer for a node of this process with that id text, if any.
        self.local: Callable[[str], Peer | None] = lambda _key: None
        self.counters: Counter[str] = Counter()  # the node's, once it sets them

    # ---- routes ----

    async def resolve(self, target: str | ActrId) -> ActrId:
        if isinstance(target, ActrId):
            return target
        try:
            if "@" in target:
                return parse_id(target)
            wanted = parse_type(target)
        except IdentityError as e:
            raise InvalidArgument(str(e)) from e
        cached = self._routes_by_type.get(target)
        if cached is not None:
            return cached[0]
        candidates = await self.signaling.route_candidates(wanted, count=1)
        if not candidates:
            raise NotFound(f"no live actor of type {target}")
        self._routes_by_type[target] = (candidates[0], id_text(candidates[0]))
        return candidates[0]

    def ready_peer(self, target: str | ActrId) -> Peer | None:
        """The hot path: a known route with a ready connection, found without awaiting
        (a node of this process first, X-LOCAL-1)."""
        if isinstance(target, ActrId):
            key = id_text(target)
        elif (route := self._routes_by_type.get(target)) is not None:
            key = route[1]
        elif "@" in target:
            key = target
        else:
            return None
        peer = self.local(key) or self.transport.peer(key)
        return peer if peer is not None and peer.ready.is_set() else None

    async def peer_for(self, target: str | ActrId) -> Peer:
        remote = await self.resolve(target)
        local = self.local(id_text(remote))
        if local is not None:
            return local
        try:
            return await self.transport.connect(remote)
        except ActrError:
            self.forget_route(id_text(remote))
            raise

    async def connected(self, target: str | ActrId, timeout: float, route_key: str) -> Peer:
        """A ready peer for ``target`` (the hot path awaits nothing), else one
        connected within ``timeout`` (TIMED_OUT past it)."""
        peer = self.ready_peer(target)
        if peer is not None:
            return peer
        try:
            return await asyncio.wait_for(self.peer_for(target), timeout)
        except TimeoutError as e:
            where = target if isinstance(target, str) else id_text(target)
            raise TimedOut(f"{route_key}: no connection to {where} within {timeout:g}s") from e

    def forget_route(self, key: str) -> None:
        for t, (_, route_key) in list(self._routes_by_type.items()):
            if route_key == key:
                del self._routes_by_type[t]

    # ---- calls ----

    async def call(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        response_type: type[M],
        *,
        timeout: float = 10.0,
        request_id: str | None = None,
        signal: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> M:
        payload = await self.call_raw(
            target,
            route_key,
            request,
            timeout=timeout,
            request_id=request_id,
            signal=signal,
            metadata=metadata,
        )
        reply = response_type()
        try:
            reply.ParseFromString(payload)
        except DecodeError as e:
            raise DecodeFailure(f"answer to {route_key} is not a {response_type.__name__}") from e
        return reply

    def start_call(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        *,
        timeout: float = 10.0,
        request_id: str | None = None,
        signal: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> CallHandle[bytes]:
        """``call_raw`` as a handle: await it, or ``cancel()`` it (X-CALL-1)."""
        check_metadata(metadata)
        rid = request_id or uuid.uuid4().hex
        work = self.call_raw(
            target,
            route_key,
            request,
            timeout=timeout,
            request_id=rid,
            signal=signal,
            metadata=metadata,
        )
        return CallHandle(rid, work)

    async def call_raw(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        *,
        timeout: float = 10.0,
        request_id: str | None = None,
        signal: bool = False,
        metadata: Mapping[str, str] | None = None,
        runtime_metadata: Mapping[str, str] | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> bytes:
        """``metadata`` is the user's (no ``actr.`` key, X-CALL-3);
        ``runtime_metadata`` the runtime's own keys (X-STR-6), written as given;
        ``on_sent`` is told once the REQUEST is handed to the transport."""
        if timeout <= 0:
            raise InvalidArgument("timeout must be > 0")
        check_metadata(metadata)
        loop = asyncio.get_running_loop()
        inherited = DEADLINE.get()
        if inherited is not None:
            # X-CALL-2: a call from a handler gets at most the handler's remaining time.
            left = inherited - loop.time()
            if left <= 0:
                self.counters["call_past_handler_deadline"] += 1
                raise TimedOut(f"{route_key}: the calling handler's deadline has passed")
            timeout = min(timeout, left)
        deadline = loop.time() + timeout
        peer = await self.connected(target, timeout, route_key)
        rid = request_id or uuid.uuid4().hex
        env = RpcEnvelope(
            route_key=route_key,
            payload=encode(request),
            direction=REQUEST,
            request_id=rid,
            timeout_ms=max(1, int((deadline - loop.time()) * 1000)),
        )
        _write_metadata(env, metadata, runtime_metadata)
        if not telemetry.tracing():
            # No tracer provider installed: no span, no W3C context to carry (the
            # no-op spans still cost ~10 us a call).
            answer = await self._exchange(peer, env, deadline, signal, route_key, timeout, on_sent)
            return payload_of(answer)
        with telemetry.tracer.start_as_current_span(
            f"actr.call {route_key}",
            kind=SpanKind.CLIENT,
            attributes={
                "actr.route_key": route_key,
                "actr.target": peer.key,
                "actr.request_id": rid,
            },
        ) as span:
            telemetry.inject(env)
            answer = await self._exchange(peer, env, deadline, signal, route_key, timeout, on_sent)
            if answer.HasField("error"):
                span.set_attribute("actr.error_code", answer.error.code)
            return payload_of(answer)

    async def _exchange(
        self,
        peer: Peer,
        env: RpcEnvelope,
        deadline: float,
        signal: bool,
        route_key: str,
        timeout: float,
        on_sent: Callable[[], None] | None = None,
    ) -> RpcEnvelope:
        """Sends the REQUEST and waits for its answer in the pending table."""
        rid = env.request_id
        fut: asyncio.Future[RpcEnvelope] = asyncio.get_running_loop().create_future()
        self.pending.add(rid, peer.key, deadline, fut)
        self._deadline_added(deadline)
        try:
            ptype = _SIGNAL if signal else _RELIABLE
            await peer.send(ptype, env.SerializeToString())
            if on_sent is not None:
                on_sent()
            # Failed with TIMED_OUT by the node's timer at the deadline, with
            # UNAVAILABLE when the connection goes (DC-6).
            return await fut
        except TimedOut as e:
            raise TimedOut(f"{route_key} to {peer.key}: no answer within {timeout:g}s") from e
        except asyncio.CancelledError:
            # X-CALL-1: given up before its answer (the task's cancel cancels the
            # future it waits on); the callee stops working on it.
            if not fut.done() or fut.cancelled():
                self.counters["calls_cancelled"] += 1
                send_cancel(peer, rid, self.counters)
            raise
        finally:
            self.pending.remove(rid)

    def expire(self, now: float) -> None:
        """The timer's part: calls whose deadline passed fail with TIMED_OUT."""
        for entry in self.pending.expire(now):
            if not entry.waiter.done():
                entry.waiter.set_exception(TimedOut(f"no answer by the deadline ({entry.peer})"))

    async def tell(
        self,
        target: str | ActrId,
        route_key: str,
        message: Message | bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        runtime_metadata: Mapping[str, str] | None = None,
    ) -> None:
        check_metadata(metadata)
        peer = self.ready_peer(target) or await self.peer_for(target)
        env = RpcEnvelope(
            route_key=route_key,
            payload=encode(message),
            direction=TELL,
            request_id=uuid.uuid4().hex,
            timeout_ms=0,
        )
        _write_metadata(env, metadata, runtime_metadata)
        await peer.send(_RELIABLE, env.SerializeToString())
