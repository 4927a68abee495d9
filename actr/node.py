"""The runtime node: ties signaling, transport, gate, pending table, mailbox and
stream registry together, runs the scheduler (mailbox -> handler -> answer) and
offers the call API. A node without an actor is a client: it calls, it hosts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message
from opentelemetry.trace import SpanKind

from actr import data_dir, telemetry
from actr.acl import acl_allows
from actr.actor import Actor, Context, Route
from actr.admin import AdminGate
from actr.config import ConfigError, NodeConfig
from actr.data_dir import DataDirLock
from actr.envelopes import error_answer, payload_answer
from actr.errors import (
    ActrError,
    DecodeFailure,
    ErrorCode,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    TimedOut,
    Unavailable,
)
from actr.gate import Chunk, Drop, Enqueue, Gate, Reject, Resolve
from actr.identity import IdentityError, id_text, parse_id, parse_type
from actr.mailbox import Mailbox, MailboxRecord, Outcome
from actr.pending import PendingTable
from actr.protocol.actr_pb2 import (
    ActrId,
    DataStream,
    Direction,
    PayloadType,
    RpcEnvelope,
)
from actr.realm_secret import check_client_secret
from actr.service_spec import actor_service_spec
from actr.signaling_client import SignalingClient
from actr.streams import StreamReceiver, StreamRegistry, StreamSender
from actr.transport import Peer, Transport

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

CLIENT_TYPE = "actr:client:1.0"
# Answered by the runtime itself with JSON counters (see Node.stats).
STATS_ROUTE = "actr.v1.Runtime.Stats"


def _encode(message: Message | bytes) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


class StartAborted(Exception):
    """The actor's on_start hook failed; the daemon does not start."""


class Node:
    def __init__(self, config: NodeConfig, actor: Actor | None = None) -> None:
        self.config = config
        self.actor = actor
        type_text = config.actr_type or (actor.actr_type if actor else "") or CLIENT_TYPE
        self.actr_type = parse_type(type_text)
        self.routes: dict[str, Route] = type(actor).routes() if actor else {}
        self.counters: Counter[str] = Counter()
        self.gate = Gate()
        self.pending: PendingTable[asyncio.Future[RpcEnvelope]] = PendingTable(
            max_pending=config.max_pending_calls
        )
        self.streams = StreamRegistry()
        self.admin = AdminGate(config.admin)
        self.signaling = SignalingClient(
            config.signaling.all_urls(),
            realm=config.signaling.realm,
            realm_secret=config.signaling.realm_secret,
            actr_type=self.actr_type,
            acl=actor.acl if actor else None,
            service=actor.service if actor else "",
            service_spec=actor_service_spec(type(actor), self.actr_type) if actor else None,
            state_path=config.data_dir / "identity.pb" if config.data_dir else None,
        )
        self.transport = Transport(
            self.signaling,
            config.transport,
            self._on_message,
            self._on_peer_closed,
            self._on_peer_ready,
        )
        self.transport.admit = self._admits_connection
        self.signaling.on_connection_change = self._on_signaling_change
        self.mailbox: Mailbox | None = None
        self._routes_by_type: dict[str, ActrId] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._scheduler: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()  # handlers at work
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self._dir_lock: DataDirLock | None = None

    @property
    def actr_id(self) -> ActrId:
        return self.signaling.actr_id

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        if self.actor is not None and self.config.data_dir is None:
            raise InvalidArgument("an actor needs a data_dir for its mailbox")
        sig = self.config.signaling
        try:
            # F14: a placeholder or short secret never leaves loopback.
            check_client_secret(sig.realm_secret, sig.all_urls())
        except ValueError as e:
            raise ConfigError(f"[signaling] {e}") from None
        try:
            if self.config.data_dir is not None:
                # Owner-only, and one daemon per directory: a second one would fight
                # this one over its ActrId and mailbox.
                data_dir.prepare(self.config.data_dir)
                self._dir_lock = DataDirLock.acquire(self.config.data_dir)
            if self.actor is not None:
                assert self.config.data_dir is not None
                self.mailbox = await Mailbox.open(
                    self.config.data_dir / "mailbox.db", limits=self.config.mailbox
                )
                box = self.mailbox
                # Route candidates favour actors with the smaller backlog (SIG-7).
                self.signaling.mailbox_backlog = lambda: float(box.count)
                box.on_backpressure = self._on_backpressure
            await self.signaling.start()
            if self.actor is not None:
                try:
                    await self.actor.on_start(Context(self))
                except Exception as e:
                    raise StartAborted(f"on_start raised {type(e).__name__}: {e}") from e
                self._scheduler = asyncio.create_task(self._run_scheduler())
        except BaseException:
            self._stopping = True
            await self._close_parts()
            raise
        log.info("node_started actor=%s", id_text(self.actr_id))
        if self.actor is not None:
            self._hook(self.actor.on_ready(Context(self)))

    async def stop(self) -> None:
        if self._stopping:
            return
        # New requests are refused from here on (UNAVAILABLE, so callers retry elsewhere).
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
            if self._running:
                # Running handlers finish and answer within the grace; then they are
                # cancelled and their requests go back to the queue.
                await asyncio.wait(self._running, timeout=self.config.stop_grace)
                for task in list(self._running):
                    task.cancel()
                await asyncio.gather(*self._running, return_exceptions=True)
        # Requests being written to the mailbox are committed before it closes.
        accepting = [t for t in self._tasks if not t.done()]
        if accepting:
            await asyncio.wait(accepting, timeout=2.0)
        if self.actor is not None:
            try:
                await self.actor.on_stop(Context(self))
            except Exception:
                log.exception("on_stop_failed")
        await self._close_parts()
        log.info("node_stopped")

    async def _close_parts(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await self.transport.close()
        await self.signaling.close()
        for entry in self.pending.fail_peer_all():
            if not entry.waiter.done():
                entry.waiter.set_exception(Unavailable("node stopped"))
        if self.mailbox is not None:
            await self.mailbox.close()
        if self._dir_lock is not None:
            self._dir_lock.release()

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- outbound --------------------------------------------------------------

    async def _resolve(self, target: str | ActrId) -> ActrId:
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
            return cached
        candidates = await self.signaling.route_candidates(wanted, count=1)
        if not candidates:
            raise NotFound(f"no live actor of type {target}")
        self._routes_by_type[target] = candidates[0]
        return candidates[0]

    def _ready_peer(self, target: str | ActrId) -> Peer | None:
        """The hot path: a known route with a ready connection, found without awaiting."""
        remote = target if isinstance(target, ActrId) else self._routes_by_type.get(target)
        if remote is None:
            if isinstance(target, str) and "@" in target:
                return self.transport.peer(target)
            return None
        peer = self.transport.peer(id_text(remote))
        return peer if peer is not None and peer.ready.is_set() else None

    async def _peer_for(self, target: str | ActrId) -> Peer:
        remote = await self._resolve(target)
        try:
            return await self.transport.connect(remote)
        except ActrError:
            self._forget_route(id_text(remote))
            raise

    def _forget_route(self, key: str) -> None:
        for t, rid in list(self._routes_by_type.items()):
            if id_text(rid) == key:
                del self._routes_by_type[t]

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
    ) -> M:
        payload = await self.call_raw(
            target, route_key, request, timeout=timeout, request_id=request_id, signal=signal
        )
        reply = response_type()
        try:
            reply.ParseFromString(payload)
        except DecodeError as e:
            raise DecodeFailure(f"answer to {route_key} is not a {response_type.__name__}") from e
        return reply

    async def call_raw(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        *,
        timeout: float = 10.0,
        request_id: str | None = None,
        signal: bool = False,
    ) -> bytes:
        if timeout <= 0:
            raise InvalidArgument("timeout must be > 0")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        peer = self._ready_peer(target)
        if peer is None:
            try:
                peer = await asyncio.wait_for(self._peer_for(target), timeout)
            except TimeoutError as e:
                where = target if isinstance(target, str) else id_text(target)
                raise TimedOut(f"{route_key}: no connection to {where} within {timeout:g}s") from e
        rid = request_id or uuid.uuid4().hex
        env = RpcEnvelope(
            route_key=route_key,
            payload=_encode(request),
            direction=Direction.DIRECTION_REQUEST,
            request_id=rid,
            timeout_ms=max(1, int((deadline - loop.time()) * 1000)),
        )
        fut: asyncio.Future[RpcEnvelope] = loop.create_future()
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
            self.pending.add(rid, peer.key, deadline, fut)
            try:
                ptype = PayloadType.RPC_SIGNAL if signal else PayloadType.RPC_RELIABLE
                await peer.send(ptype, env.SerializeToString())
                answer = await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
            except TimeoutError as e:
                raise TimedOut(f"{route_key} to {peer.key}: no answer within {timeout:g}s") from e
            finally:
                self.pending.remove(rid)
            if answer.HasField("error"):
                span.set_attribute("actr.error_code", answer.error.code)
            return self._payload_of(answer)

    @staticmethod
    def _payload_of(answer: RpcEnvelope) -> bytes:
        has_payload = answer.HasField("payload")
        has_error = answer.HasField("error")
        if has_error and not has_payload:
            raise ActrError.from_proto(answer.error)
        if has_payload and not has_error:
            return answer.payload
        # ENV-4: exactly one of payload or error; anything else is not a success.
        raise Internal("response carries both or neither of payload and error")

    async def tell(self, target: str | ActrId, route_key: str, message: Message | bytes) -> None:
        peer = await self._peer_for(target)
        env = RpcEnvelope(
            route_key=route_key,
            payload=_encode(message),
            direction=Direction.DIRECTION_TELL,
            request_id=uuid.uuid4().hex,
            timeout_ms=0,
        )
        await peer.send(PayloadType.RPC_RELIABLE, env.SerializeToString())

    async def open_stream(
        self, target: str | ActrId, stream_id: str, *, latency_first: bool = False
    ) -> StreamSender:
        """A sender of one stream. ``latency_first`` uses the unordered channel with at
        most 3 retransmissions (DC-1): the receiver still delivers in sequence order,
        but a lost chunk stalls the stream, so use it for data that tolerates that."""
        peer = await self._peer_for(target)
        ptype = PayloadType.STREAM_LATENCY_FIRST if latency_first else PayloadType.STREAM_RELIABLE

        async def send(chunk: DataStream) -> None:
            await peer.send(ptype, chunk.SerializeToString())

        return StreamSender(stream_id, send)

    def receive_stream(self, stream_id: str, sender: str | ActrId) -> StreamReceiver:
        """Registers the stream ``stream_id`` of ``sender`` (an ActrId or its text):
        only that peer's chunks reach it. Register it before the sender starts."""
        if isinstance(sender, ActrId):
            key = id_text(sender)
        else:
            try:
                key = id_text(parse_id(sender))
            except IdentityError as e:
                raise InvalidArgument(f"stream sender: {e}") from e
        return self.streams.register(stream_id, key)

    # -- inbound ---------------------------------------------------------------

    def _on_message(self, peer: Peer, ptype: int, data: bytes) -> None:
        action = self.gate.route(ptype, data)
        if isinstance(action, Resolve):
            env = action.envelope
            entry = self.pending.resolve(env.request_id, peer.key)
            if entry is not None and not entry.waiter.done():
                entry.waiter.set_result(env)
        elif isinstance(action, Enqueue):
            if action.envelope.route_key == STATS_ROUTE and self.actor is not None:
                # A client (no actor) never answers it: its _accept refuses every request.
                self._spawn(self._answer_stats(peer, action))
            else:
                self._spawn(self._accept(peer, action))
        elif isinstance(action, Chunk):
            acl = self.actor.acl if self.actor is not None else None
            if acl_allows(acl, self.actr_id, peer.remote):
                self.streams.deliver(peer.key, action.chunk)
            else:
                # ACL-2 holds for stream chunks too: dropped and counted before they
                # reach any stream (a connection this actor opened to a peer its ACL
                # refuses carries chunks as well as answers).
                self.streams.refuse(peer.key, action.chunk)
        elif isinstance(action, Reject):
            reply = error_answer(action.envelope, action.code, action.message)
            self._spawn(self._answer(peer.key, action.payload_type, reply.SerializeToString()))
        elif isinstance(action, Drop):
            self.counters["dropped_" + action.reason] += 1

    async def _accept(self, peer: Peer, action: Enqueue) -> None:
        env = action.envelope
        is_request = env.direction == Direction.DIRECTION_REQUEST
        refusal: tuple[ErrorCode, str] | None = None
        if self.actor is None or self.mailbox is None:
            refusal = (ErrorCode.NOT_IMPLEMENTED, "this node hosts no actor")
        elif self._stopping:
            refusal = (ErrorCode.UNAVAILABLE, "actor is stopping")
        elif not acl_allows(self.actor.acl, self.actr_id, peer.remote):
            # ACL-2: enforced here too, whatever path the request took.
            refusal = (ErrorCode.PERMISSION_DENIED, f"{peer.key} may not call this actor")
        if refusal is not None:
            self.counters["refused_" + refusal[0].name.lower()] += 1
            if is_request:
                reply = error_answer(env, refusal[0], refusal[1])
                await self._answer(peer.key, action.payload_type, reply.SerializeToString())
            return
        assert self.mailbox is not None
        try:
            result = await self.mailbox.enqueue(
                caller=peer.key,
                request_id=env.request_id,
                priority=action.priority,
                payload_type=action.payload_type,
                envelope=action.raw,
            )
        except ResourceExhausted as e:
            # MBX-5: refused, never silently dropped; the caller sees why.
            self.counters["refused_mailbox_full"] += 1
            if is_request:
                reply = error_answer(env, ErrorCode.RESOURCE_EXHAUSTED, e.message)
                await self._answer(peer.key, action.payload_type, reply.SerializeToString())
            return
        except Exception as e:
            # Not committed (disk full, I/O error): refused, so the caller retries
            # rather than waits for its deadline.
            self.counters["refused_mailbox_error"] += 1
            log.error(
                "enqueue_failed caller=%s request_id=%s error=%r", peer.key, env.request_id, e
            )
            if is_request:
                reply = error_answer(env, ErrorCode.UNAVAILABLE, f"mailbox failed: {e}")
                await self._answer(peer.key, action.payload_type, reply.SerializeToString())
            return
        if result.outcome is Outcome.DUPLICATE_ANSWERED:
            self.counters["duplicate_answered"] += 1
            if is_request and result.answer is not None:
                await self._answer(peer.key, action.payload_type, result.answer)
        elif result.outcome is Outcome.DUPLICATE_PENDING:
            self.counters["duplicate_pending"] += 1

    def stats(self) -> dict[str, Any]:
        """Counters of every layer, by reason: what was dropped, refused, retried."""
        return {
            "actor": id_text(self.actr_id) if self.signaling.registration else None,
            "node": dict(self.counters),
            "gate": dict(self.gate.drops),
            "transport": dict(self.transport.counters),
            "pending": {**self.pending.counters, "in_flight": len(self.pending)},
            "streams": dict(self.streams.drops),
            "signaling": {
                "connected": self.signaling.connected.is_set(),
                "reconnects": self.signaling.reconnects,
            },
            "handling": len(self._running),
            "peers": {
                key: {"selected_pair": peer.selected_pair()}
                for key, peer in self.transport._peers.items()
            },
        }

    async def _answer_stats(self, peer: Peer, action: Enqueue) -> None:
        """The runtime's own route: answered at once, not through the mailbox, to a
        caller the actor's ACL and ``[admin] stats_from`` admit, within the admin
        rate (actr/admin.py)."""
        assert self.actor is not None
        env = action.envelope
        if env.direction != Direction.DIRECTION_REQUEST:
            self.counters["stats_tell_ignored"] += 1
            return
        refusal: tuple[ErrorCode, str] | None
        if not acl_allows(self.actor.acl, self.actr_id, peer.remote):
            refusal = (ErrorCode.PERMISSION_DENIED, f"{peer.key} may not call this actor")
        else:
            refusal = self.admin.refusal(self.actr_id, peer.remote, time.monotonic())
        if refusal is not None:
            self.counters["stats_refused_" + refusal[0].name.lower()] += 1
            reply = error_answer(env, *refusal)
        else:
            self.counters["stats_answered"] += 1
            reply = payload_answer(env, json.dumps(self.stats()).encode())
        await self._answer(peer.key, action.payload_type, reply.SerializeToString())

    async def _answer(self, caller: str, ptype: int, data: bytes) -> None:
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

    def _hook(self, coro: Coroutine[Any, Any, None]) -> None:
        """Runs a lifecycle hook in the background; its failure is logged, not fatal."""

        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("hook_failed hook=%s", getattr(coro, "__qualname__", coro))

        self._spawn(guarded())

    def _admits_connection(self, remote: ActrId) -> bool:
        """F6: a connection the peer started, before any resource is spent on it: the
        actor's ACL decides; a client node (no actor) takes only connections it asked for."""
        return self.actor is not None and acl_allows(self.actor.acl, self.actr_id, remote)

    def _on_backpressure(self, active: bool) -> None:
        self.counters["backpressure_on" if active else "backpressure_off"] += 1
        if self.actor is not None:
            self._hook(self.actor.on_backpressure(Context(self), active))

    def _on_signaling_change(self, up: bool) -> None:
        if self.actor is not None and not self._stopping:
            self._hook(self.actor.on_signaling(Context(self), up))

    def _on_peer_ready(self, peer: Peer) -> None:
        if self.actor is not None and not self._stopping:
            self._hook(self.actor.on_peer(Context(self), peer.remote, True))

    def _on_peer_closed(self, peer: Peer) -> None:
        if self.actor is not None and not self._stopping:
            self._hook(self.actor.on_peer(Context(self), peer.remote, False))
        err = peer.failure or Unavailable(f"connection to {peer.key} lost")
        for entry in self.pending.fail_peer(peer.key):
            if not entry.waiter.done():
                entry.waiter.set_exception(Unavailable(err.message))
        self.streams.fail_sender(peer.key, Unavailable(err.message))
        self._forget_route(peer.key)

    # -- scheduler -------------------------------------------------------------

    async def _run_scheduler(self) -> None:
        """Mailbox -> handlers, at most ``max_concurrent_handlers`` at a time.

        Rows are taken from the mailbox only when a handler is free to run them, so
        the database's order decides (HIGH first: an RPC_SIGNAL request overtakes
        every queued RPC_RELIABLE one) and a row handed out is a row being handled,
        which is what the dead-letter count (MBX-4) counts. The previous handler's
        ack and the next dequeue share one commit.
        """
        assert self.mailbox is not None
        box = self.mailbox
        limit = self.config.max_concurrent_handlers
        while not self._stopping and not box.closed:
            free = limit - len(self._running)
            if free <= 0:
                await self._a_handler_finished()
                continue
            # A long poll: a request reaching an idle actor is queued and handed out
            # in one commit.
            taking = box.dequeue(free, wait=True)
            try:
                batch = await taking
            except asyncio.CancelledError:
                # Stopped just as rows were handed out: no handler got them.
                if taking.done() and not taking.cancelled() and taking.exception() is None:
                    for record in taking.result():
                        box.give_back(record)
                raise
            except Exception:
                # The database is failing (disk full, I/O error): keep trying, slowly.
                log.exception("scheduler_dequeue_failed")
                self.counters["dequeue_failed"] += 1
                await asyncio.sleep(1.0)
                continue
            if len(batch) == 1 and box.recovered(batch[0]):
                await self._run_alone(batch[0])
                continue
            for record in batch:
                if self._stopping:
                    box.give_back(record)
                    continue
                self._start_handler(record)

    async def _run_alone(self, record: MailboxRecord) -> None:
        """Runs a request its process died with (the mailbox hands it out alone)
        with no other handler beside it: if it is what kills the process, only its
        own attempts count towards the dead letters (MBX-4), not those of the
        requests that ran with it. Handlers already running get ``stop_grace`` to
        finish first; one still running then (it may wait for a request queued
        behind this one) runs on beside it rather than stall the actor."""
        assert self.mailbox is not None
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.stop_grace):
                    while self._running:
                        await self._a_handler_finished()
        except asyncio.CancelledError:
            self.mailbox.give_back(record)  # stopped before it ran
            raise
        if self._stopping:
            self.mailbox.give_back(record)
            return
        await asyncio.wait({self._start_handler(record)})

    def _start_handler(self, record: MailboxRecord) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run_one(record))
        self._running.add(task)
        task.add_done_callback(self._handler_done)
        return task

    async def _a_handler_finished(self) -> None:
        self._slot_freed.clear()
        await self._slot_freed.wait()

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slot_freed.set()

    async def _run_one(self, record: MailboxRecord) -> None:
        assert self.mailbox is not None
        try:
            answer = await self._process(record)
        except asyncio.CancelledError:
            # Stopped before it was answered: it goes back to the queue.
            await asyncio.shield(self.mailbox.requeue(record))
            raise
        except Exception as e:
            # A fault of the runtime, not of the handler (its errors are answers). Left
            # in flight, the request would wait for a restart and its caller's retries
            # be refused as pending: it goes again until it has failed max_attempts
            # times, then to the dead letters, whose answer its caller's retry gets
            # (MBX-4).
            log.exception("process_failed seq=%d request_id=%s", record.seq, record.request_id)
            self.counters["process_failed"] += 1
            try:
                if await self.mailbox.fail(record, f"runtime error: {e!r}"):
                    self.counters["dead_lettered"] += 1
            except Exception:
                # The database fails too: in flight until a restart redelivers it.
                log.exception("process_failed_left_in_flight seq=%d", record.seq)
            return
        # Acked (submitted) already: whatever happens to the send, the request is
        # done; it is never requeued or dead-lettered from here on (its caller's
        # retry gets the stored answer).
        if answer is not None:
            try:
                await self._answer(record.caller, record.payload_type, answer)
            except Exception:
                self.counters["answer_undeliverable"] += 1
                log.exception("answer_failed caller=%s seq=%d", record.caller, record.seq)

    async def _process(self, record: MailboxRecord) -> bytes | None:
        """Runs the request's handler and submits its ack; returns the answer to
        send (None for a tell, or a request dead-lettered here)."""
        assert self.mailbox is not None and self.actor is not None
        env = RpcEnvelope()
        try:
            env.ParseFromString(record.envelope)
        except DecodeError:
            # MBX-4: a stored envelope that does not decode never will: dead letter at once.
            await self.mailbox.dead_letter(record, "stored envelope does not decode")
            self.counters["dead_lettered"] += 1
            return None
        is_request = env.direction == Direction.DIRECTION_REQUEST
        # ENV-7: both spans are children of the caller's span from the envelope.
        with telemetry.remote_parent(env):
            attrs = {
                "actr.route_key": env.route_key,
                "actr.caller": record.caller,
                "actr.request_id": env.request_id,
            }
            wait = telemetry.tracer.start_span(
                "actr.mailbox_wait",
                attributes=attrs,
                start_time=int(record.accepted_at * 1e9),
            )
            wait.end()
            with telemetry.tracer.start_as_current_span(
                f"actr.handle {env.route_key}", kind=SpanKind.SERVER, attributes=attrs
            ) as span:
                reply = await self._run_handler(record, env)
                if reply.HasField("error"):
                    span.set_attribute("actr.error_code", reply.error.code)
        data = reply.SerializeToString() if is_request else None
        # The ack (with the answer, for duplicates) commits with the next batch while
        # the answer is sent and the next handler starts; a crash before that commit
        # redelivers the request, as a crash during the handler would. Submitted
        # before the send, and the send is outside the requeue-on-stop and fault
        # paths: a request that ran is never put back.
        self._ack(record, data)
        return data

    def _ack(self, record: MailboxRecord, data: bytes | None, delay: float = 0.5) -> None:
        box = self.mailbox
        if box is None or box.closed:
            return  # left in flight: the next start redelivers it

        def done(fut: asyncio.Future[None]) -> None:
            if fut.cancelled() or fut.exception() is None:
                return
            # The database is failing (disk full, I/O error): try again, backing off,
            # or the request's duplicates would be refused as pending until a restart.
            self.counters["ack_failed"] += 1
            log.error(
                "ack_failed seq=%d retry_in=%.1f error=%r", record.seq, delay, fut.exception()
            )
            asyncio.get_running_loop().call_later(
                delay, self._ack, record, data, min(delay * 2, 30.0)
            )

        box.ack_nowait(record, data).add_done_callback(done)

    async def _run_handler(self, record: MailboxRecord, env: RpcEnvelope) -> RpcEnvelope:
        assert self.actor is not None
        if env.direction == Direction.DIRECTION_REQUEST:
            waited = time.time() - record.accepted_at
            if waited * 1000 > env.timeout_ms:
                self.counters["expired_in_mailbox"] += 1
                return error_answer(
                    env, ErrorCode.TIMED_OUT, f"deadline passed after {waited:.3f}s in mailbox"
                )
        route = self.routes.get(env.route_key)
        if route is None:
            return error_answer(env, ErrorCode.UNKNOWN_ROUTE, f"no handler for {env.route_key}")
        request: Message | bytes = env.payload
        if route.request_type is not None:
            msg = route.request_type()
            try:
                msg.ParseFromString(env.payload)
            except DecodeError:
                return error_answer(
                    env,
                    ErrorCode.DECODE_FAILURE,
                    f"payload is not a {route.request_type.DESCRIPTOR.full_name}",
                )
            request = msg
        ctx = Context(
            self,
            caller=parse_id(record.caller),
            request_id=env.request_id,
            metadata={m.key: m.value for m in env.metadata},
            attempt=record.attempts,
        )
        handler = getattr(self.actor, route.method_name)
        try:
            result = await handler(request, ctx)
        except ActrError as e:
            return error_answer(env, e.raw_code, e.message)
        except Exception as e:
            log.warning("handler_failed route=%s error=%r", env.route_key, e)
            self.counters["handler_failed"] += 1
            self._hook(self.actor.on_error(ctx, e))
            return error_answer(env, ErrorCode.APPLICATION_ERROR, f"{type(e).__name__}: {e}")
        try:
            payload = b"" if result is None else _encode(result)
        except Exception as e:
            return error_answer(env, ErrorCode.INTERNAL, f"handler result not encodable: {e}")
        return payload_answer(env, payload)
