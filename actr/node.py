"""The runtime node, the composition root: it builds the parts, wires them, and runs
their lifecycle. A node without an actor is a client: it calls, it hosts nothing.

Who does what on the path of one call (ARCHITECTURE.md):
- calling out: actr/calls.py (routes, REQUEST/TELL, waiting on the pending table);
- inbound: actr/inbound.py decides (sans-IO), actr/inbound_shell.py carries it out;
- the mailbox (actr/mailbox.py) keeps every accepted request;
- actr/scheduler.py hands requests to handlers, acks and answers;
- actr/handling.py runs one handler; actr/runtime_routes.py answers EXT-1's routes;
- actr/timer.py fires the cores' deadlines (time is their input);
- actr/hello.py (X-HELLO-1), actr/cancel.py (X-CALL-1), actr/local.py (X-LOCAL-1).
The node itself only wires these, starts and stops them, and runs the actor's
lifecycle hooks; its call API delegates to ``Calls`` (it is the ``Runtime`` a
``Context`` speaks to).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message

from actr import data_dir, local
from actr.acl import acl_allows
from actr.actor import Actor, Context
from actr.admin import AdminGate
from actr.call_api import CallApi
from actr.calls import Calls
from actr.config import ConfigError, NodeConfig
from actr.data_dir import DataDirLock
from actr.errors import ActrError, InvalidArgument, Unavailable
from actr.handling import Handling
from actr.hello import STREAM_CREDIT, STREAM_WINDOW, send_hello
from actr.identity import id_text, parse_type
from actr.inbound import STATS_ROUTE, InboundCore
from actr.inbound_shell import Inbound
from actr.local import LocalPeer
from actr.mailbox import Mailbox
from actr.pending import PendingTable
from actr.protocol.actr_pb2 import ActrId, DataStream, PayloadType, RpcEnvelope
from actr.realm_secret import check_client_secret
from actr.runtime_routes import RuntimeRoutes
from actr.scheduler import Scheduler
from actr.service_spec import actor_service_spec
from actr.signaling_client import SignalingClient
from actr.stream_calls import StreamCalls
from actr.streams import StreamRegistry
from actr.timer import Timer
from actr.transport import Peer, Transport

if TYPE_CHECKING:
    from actr.ops_http import OpsServer

__all__ = ["CLIENT_TYPE", "STATS_ROUTE", "Node", "StartAborted"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

CLIENT_TYPE = "actr:client:1.0"


class StartAborted(Exception):
    """The actor's on_start hook failed; the daemon does not start."""


class Node(CallApi):
    def __init__(self, config: NodeConfig, actor: Actor | None = None) -> None:
        self.config = config
        self.actor = actor
        type_text = config.actr_type or (actor.actr_type if actor else "") or CLIENT_TYPE
        self.actr_type = parse_type(type_text)
        self.counters: Counter[str] = Counter()
        self.pending: PendingTable[asyncio.Future[RpcEnvelope]] = PendingTable(
            max_pending=config.max_pending_calls
        )
        self.streams = StreamRegistry(window=STREAM_WINDOW)
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
        self.core = InboundCore(
            owner=lambda: self.actr_id,
            admits=self._admits if actor is not None else None,
            admin=AdminGate(config.admin) if actor is not None else None,
        )
        self.transport = Transport(
            self.signaling,
            config.transport,
            self._on_message,
            self._on_peer_closed,
            self._on_peer_ready,
        )
        # F6: a connection the peer started is admitted by the actor's ACL before any
        # resource is spent on it; a client takes only connections it asked for.
        self.transport.admit = self._admits if actor is not None else (lambda _remote: False)
        self.signaling.on_connection_change = self._on_signaling_change
        self.timer = Timer()
        self.calls = Calls(self.signaling, self.transport, self.pending, self.timer.poke)
        self.calls.local, self.calls.counters = partial(local.peer_to, self), self.counters
        self.timer.watch(self.pending.next_deadline, self.calls.expire)
        # Idle streams end at their time to live (their readers get TimedOut).
        self.timer.watch(self.streams.next_deadline, self.streams.expire)
        self.streams.on_deadline = self.timer.poke
        self.streams.send_control = self._send_stream_control
        self.stream_calls = StreamCalls(self.calls, self.streams, self.transport, self.counters)
        self.runtime_routes = RuntimeRoutes(
            self.counters,
            self.core,
            self.transport,
            self.pending,
            self.streams,
            self.signaling,
            lambda: len(self.scheduler.running) if self.scheduler is not None else 0,
            lambda: (self.mailbox.count, self.mailbox.bytes) if self.mailbox else None,
        )
        self.inbound = Inbound(
            self.core,
            self.transport,
            self.pending,
            self.streams,
            self.counters,
            self._spawn,
            self.runtime_routes.answer,
        )
        self.inbound.on_hello, self.inbound.on_cancel = self.on_hello, self._on_cancel
        self.inbound.stream_calls = self.stream_calls
        self.mailbox: Mailbox | None = None
        self.scheduler: Scheduler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._dir_lock: DataDirLock | None = None
        # The operators' endpoint ([admin] listen): /metrics, /healthz, /readyz. Loaded
        # only here: a client node (actr call from a shell) needs none of its HTTP
        # server and metrics SDK, a good part of the command's start-up.
        self.ops: OpsServer | None = None
        if actor is not None and config.admin.listen:
            from actr.ops_http import OpsServer

            self.ops = OpsServer(self)

    @property
    def actr_id(self) -> ActrId:
        return self.signaling.actr_id

    def _admits(self, caller: ActrId) -> bool:
        assert self.actor is not None
        return acl_allows(self.actor.acl, self.actr_id, caller)

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
                await self._open_mailbox()
                if self.ops is not None:
                    await self.ops.start()
            await self.signaling.start()
            local.register(self, actor=self.actor is not None)  # X-LOCAL-1
            if self.actor is not None:
                try:
                    await self.actor.on_start(Context(self))
                except Exception as e:
                    raise StartAborted(f"on_start raised {type(e).__name__}: {e}") from e
                assert self.scheduler is not None
                self.scheduler.start()
        except BaseException:
            self._stopping = True
            self.core.stopping = True
            await self._close_parts()
            raise
        log.info("node_started actor=%s", id_text(self.actr_id))
        if self.ops is not None:
            self.ops.ready = True
        if self.actor is not None:
            self._hook(self.actor.on_ready(Context(self)))

    async def _open_mailbox(self) -> None:
        assert self.actor is not None and self.config.data_dir is not None
        box = await Mailbox.open(self.config.data_dir / "mailbox.db", limits=self.config.mailbox)
        self.mailbox = box
        self.inbound.mailbox = box
        # Route candidates favour actors with the smaller backlog (SIG-7).
        self.signaling.mailbox_backlog = lambda: float(box.count)
        box.on_backpressure = self._on_backpressure
        handling = Handling(self.actor, self, self.counters, self._hook)
        handling.stream_calls = self.stream_calls
        self.scheduler = Scheduler(
            box,
            handling,
            self.inbound.answer,
            self.counters,
            max_concurrent=self.config.max_concurrent_handlers,
            stop_grace=self.config.stop_grace,
            # An fsync per commit: taking more rows per commit pays (64 in flight,
            # one handler: ~2,700 -> ~3,500 round trips/s measured).
            ahead=64 if self.config.mailbox.durability == "power" else 16,
        )
        self.scheduler.on_finished = self.stream_calls.finished

    async def stop(self) -> None:
        if self._stopping:
            return
        # New requests are refused from here on (UNAVAILABLE, so callers retry elsewhere).
        self._stopping = True
        self.core.stopping = True
        if self.scheduler is not None:
            await self.scheduler.stop()
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
        local.unregister(self)
        if self.ops is not None:
            await self.ops.stop()
        self.timer.close()
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

    # -- what the parts report -------------------------------------------------

    def _on_message(self, peer: Peer, ptype: int, data: bytes) -> None:
        self.inbound.on_message(peer, ptype, data)

    def stats(self) -> dict[str, Any]:
        return self.runtime_routes.stats()

    def _hook(self, coro: Coroutine[Any, Any, None]) -> None:
        """Runs a lifecycle hook in the background; its failure is logged, not fatal."""

        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("hook_failed hook=%s", getattr(coro, "__qualname__", coro))

        self._spawn(guarded())

    def _on_backpressure(self, active: bool) -> None:
        self.counters["backpressure_on" if active else "backpressure_off"] += 1
        if self.actor is not None:
            self._hook(self.actor.on_backpressure(Context(self), active))

    def _on_signaling_change(self, up: bool) -> None:
        if self.actor is not None and not self._stopping:
            self._hook(self.actor.on_signaling(Context(self), up))

    def _on_peer_ready(self, peer: Peer) -> None:
        if self._stopping:
            return
        self._spawn(send_hello(peer, self.counters))  # X-HELLO-1
        if self.actor is not None:
            self._hook(self.actor.on_peer(Context(self), peer.remote, True))

    def on_hello(self, peer: Peer) -> None:
        """A peer's Hello arrived (X-HELLO-1): the streams learn whether it speaks
        stream-credit and the window it grants (X-STR-3)."""
        self.streams.set_peer(
            peer.key, STREAM_CREDIT in peer.features, peer.stream_window or STREAM_WINDOW
        )

    def _send_stream_control(self, key: str, frame: DataStream) -> None:
        """A stream's credit or reset (X-STR-3/4), on STREAM_RELIABLE."""
        peer = self.transport.peer(key)
        if peer is None:
            self.counters["stream_control_unsent"] += 1
            return
        self._spawn(_send_quietly(peer, frame.SerializeToString(), self.counters))

    def _on_cancel(self, caller: str, request_id: str) -> None:
        """X-CALL-1: ``caller`` gave up its call ``request_id``."""
        found = self.scheduler.cancel(caller, request_id) if self.scheduler else "unknown"
        self.counters[f"cancel_{found}"] += 1

    def _on_peer_closed(self, peer: Peer) -> None:
        if self.actor is not None and not self._stopping and not isinstance(peer, LocalPeer):
            self._hook(self.actor.on_peer(Context(self), peer.remote, False))
        err = peer.failure or Unavailable(f"connection to {peer.key} lost")
        # DC-6: every call pending on it fails now, not at its deadline.
        for entry in self.pending.fail_peer(peer.key):
            if not entry.waiter.done():
                entry.waiter.set_exception(Unavailable(err.message))
        self.streams.fail_sender(peer.key, Unavailable(err.message))
        # X-STR-6: a call with streams does not outlive its caller's connection.
        for request_id in self.stream_calls.calls_of(peer.key):
            self._on_cancel(peer.key, request_id)
        self.calls.forget_route(peer.key)


async def _send_quietly(peer: Peer, data: bytes, counters: Counter[str]) -> None:
    try:
        await peer.send(PayloadType.STREAM_RELIABLE, data)
    except ActrError:
        counters["stream_control_unsent"] += 1
