"""Several server processes as one deployment, through Redis (PROTOCOL.md SIG-10).

Every node keeps the whole deployment's registry in memory, so the dispatcher
answers route candidates, discovery and ACL checks without a round trip; Redis
carries what keeps those views the same. The keys (serials, registrations, node
liveness) are ``signaling.cluster_store``'s; this module is the node's part of
the traffic:

- channel ``{p}:events``: every change of shared state (``events.Event``), applied
  by every other node, each telling its own subscribers (``Dispatcher.apply``);
- channel ``{p}:relay:{node}``: relays for actors whose socket is on that node;
- the node's liveness key, refreshed every heartbeat interval, and the other
  nodes' keys, checked as often: a node whose key vanished is dead
  (``Dispatcher.node_lost``).

Publishing is queued and written in pipelined batches by one task, in order;
reads happen where a request needs them (registration, renewal, a socket of an
actor this node has not heard of yet). When the subscription drops, the node
reconnects with backoff and reloads every registration, so a missed event
costs a reload, not a stale view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from signaling.cluster_store import ClusterConflict, ClusterStore, ClusterUnavailable
from signaling.events import (
    Contact,
    Event,
    EventDecodeError,
    Granted,
    Online,
    Subscription,
    decode_event,
    encode_event,
    record_from_fields,
)
from signaling.record import ActorRecord, TypeKey

if TYPE_CHECKING:
    from signaling.state import State

__all__ = ["Cluster", "ClusterConflict", "ClusterUnavailable", "new_node_id"]

log = logging.getLogger(__name__)

# Queued publishes past this are dropped and counted: Redis is not keeping up.
QUEUE_LIMIT = 65536
# Commands per pipelined write.
BATCH = 512
# Reconnect backoff to Redis: full jitter, capped.
BACKOFF_BASE = 0.2
BACKOFF_CAP = 5.0
START_TIMEOUT = 15.0


def new_node_id() -> str:
    return uuid.uuid4().hex[:12]


class Cluster:
    def __init__(self, url: str, prefix: str, node: str, heartbeat_secs: int) -> None:
        self.url = url
        self.prefix = prefix
        self.node = node
        self.heartbeat_secs = heartbeat_secs
        self.node_ttl_secs = 3 * heartbeat_secs
        self.healthy = False
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url)
        self._events_channel = f"{prefix}:events"
        self._relay_channel = self.relay_channel(node)
        self.redis_store = ClusterStore(self._redis, prefix, node, self._events_channel)
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(QUEUE_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []
        self._state: State | None = None
        self._subscribed = asyncio.Event()
        # Notified after each message from the other nodes is applied (see ``settled``).
        self._applied = asyncio.Condition()

    def relay_channel(self, node: str) -> str:
        return f"{self.prefix}:relay:{node}"

    # ---- lifecycle ----

    async def start(self, state: State) -> None:
        """Connect, subscribe, load every registration; raises ClusterUnavailable."""
        self._state = state
        try:
            await self._redis.ping()
            await self.redis_store.refresh_node(self.node_ttl_secs)
        except (RedisError, OSError) as e:
            await self._redis.aclose()
            raise ClusterUnavailable(f"cannot reach redis at {self.url}: {e}") from None
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="cluster-listener"),
            asyncio.create_task(self._write_forever(), name="cluster-writer"),
            asyncio.create_task(self._liveness_forever(), name="cluster-liveness"),
        ]
        # Serve only once subscribed and loaded: no event falls between the two.
        try:
            await asyncio.wait_for(self._subscribed.wait(), START_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise ClusterUnavailable(f"cannot subscribe on redis at {self.url}") from None
        log.info(
            "cluster_joined node=%s prefix=%s actors=%d",
            self.node,
            self.prefix,
            len(state.registry),
        )

    async def close(self) -> None:
        # Publishes still queued (offline announcements at shutdown) go out first.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 2.0)
        for t in self._tasks:
            t.cancel()
        # Bounded: a Redis that went away first (a crash, a test's teardown) must not
        # hold the server's stop on client retries.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(self.redis_store.drop_node(), 2.0)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(self._redis.aclose(), 2.0)
        log.info("cluster_left node=%s", self.node)

    async def settled(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate`` holds, checked after each applied message (tests, tools)."""
        async with asyncio.timeout(timeout), self._applied:
            await self._applied.wait_for(predicate)

    # ---- requests that wait for Redis (signaling.cluster_store) ----

    async def next_serial(self, realm_id: int, floor: int = 1) -> int:
        return await self.redis_store.next_serial(realm_id, floor)

    async def next_generation(self, key: str) -> int:
        """Number a new socket of ``key`` across nodes; 0 when the registration is gone."""
        return await self.redis_store.next_generation(key)

    async def store(self, record: ActorRecord, expect_tokens: bytes | None = None) -> None:
        """Write the registration, then tell the other nodes to read it (ClusterConflict
        when ``expect_tokens`` are no longer the stored renewal tokens)."""
        await self.redis_store.store(record, expect_tokens)

    async def fetch(self, key: str) -> ActorRecord | None:
        """The stored registration of ``key``, or None when there is none (or it is damaged)."""
        return await self.redis_store.fetch(key)

    # ---- queued: never block the caller ----

    def forward(self, node: str, to: str, data: bytes) -> None:
        to_b = to.encode()
        payload = len(to_b).to_bytes(2, "big") + to_b + data
        self._enqueue(("publish", self.relay_channel(node), payload))

    def announce(self, event: Event) -> None:
        self._enqueue(("event", event))

    def _enqueue(self, op: tuple[Any, ...]) -> None:
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            assert self._state is not None
            self._state.stats.reject("cluster_queue_full")
            log.warning("cluster_queue_full node=%s op=%s", self.node, op[0])

    # ---- the writer ----

    async def _write_forever(self) -> None:
        while True:
            ops = [await self._queue.get()]
            while len(ops) < BATCH and not self._queue.empty():
                ops.append(self._queue.get_nowait())
            try:
                await self._write(ops)
            except (RedisError, OSError) as e:
                # Lost writes are repaired by the reload that follows the reconnect.
                assert self._state is not None
                self._state.stats.reject("cluster_write_failed")
                log.warning("cluster_write_failed node=%s ops=%d error=%s", self.node, len(ops), e)
                await asyncio.sleep(random.uniform(0, BACKOFF_CAP))
            except Exception:
                log.exception("cluster_writer_failed node=%s", self.node)
            finally:
                for _ in ops:
                    self._queue.task_done()

    async def _write(self, ops: list[tuple[Any, ...]]) -> None:
        assert self._state is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for op in ops:
                if op[0] == "publish":
                    pipe.publish(op[1], op[2])
                    continue
                event: Event = op[1]
                if not isinstance(event, Granted | Contact):
                    await self.redis_store.update(pipe, event, self._subscriptions(event))
                pipe.publish(self._events_channel, encode_event(event, self.node))
            await pipe.execute()

    def _subscriptions(self, event: Event) -> list[TypeKey]:
        """All subscriptions of the actor a Subscription event is about, as stored."""
        assert self._state is not None
        if not isinstance(event, Subscription):
            return []
        record = self._state.registry.get(event.key)
        return sorted(record.subscriptions) if record is not None else []

    # ---- the listener ----

    async def _listen_forever(self) -> None:
        attempt = 0
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._events_channel, self._relay_channel)
                await self._reload()
                self.healthy = True
                attempt = 0
                self._subscribed.set()
                async for message in pubsub.listen():
                    await self._on_message(message)
                    async with self._applied:
                        self._applied.notify_all()
                raise ConnectionError("subscription ended")
            except (RedisError, OSError) as e:
                self.healthy = False
                assert self._state is not None
                self._state.stats.reject("cluster_link_lost")
                log.warning("cluster_link_lost node=%s attempt=%d error=%s", self.node, attempt, e)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
            attempt += 1

    async def _on_message(self, message: dict[str, Any]) -> None:
        assert self._state is not None
        state = self._state
        channel = message["channel"].decode()
        data: bytes = message["data"]
        if channel == self._relay_channel:
            n = int.from_bytes(data[:2], "big")
            state.hub.deliver_forwarded(data[2 : 2 + n].decode(), data[2 + n :])
            return
        try:
            sender, event = decode_event(data)
        except EventDecodeError as e:
            state.stats.reject("cluster_bad_event")
            log.warning("cluster_bad_event node=%s error=%s", self.node, e)
            return
        if sender == self.node:
            return
        try:
            if isinstance(event, Granted) or (
                isinstance(event, Online) and state.registry.get(event.key) is None
            ):
                record = await self.fetch(event.key)
                if record is not None:
                    state.registry.merge(record)
            state.hub.apply(state.dispatcher.apply(event, state.clock()))
        except ClusterUnavailable as e:
            log.warning("cluster_event_dropped node=%s error=%s", self.node, e)
        except Exception:
            log.exception("cluster_event_failed node=%s event=%s", self.node, event)

    async def _reload(self) -> None:
        """Every stored registration into the registry, with presence on live nodes."""
        assert self._state is not None
        state = self._state
        count = 0
        nodes_alive: dict[str, bool] = {}
        async for akey, fields in self.redis_store.registrations():
            try:
                record = state.registry.merge(record_from_fields(fields))
            except ValueError as e:
                log.warning("stored_registration_damaged key=%s error=%s", akey, e)
                continue
            count += 1
            node = fields.get(b"node", b"").decode()
            generation = int(fields.get(b"gen", b"0"))
            if b"backlog" in fields:
                with contextlib.suppress(ValueError):
                    record.mailbox_backlog = float(fields[b"backlog"])
            if not node or node == self.node or record.local:
                continue
            if node not in nodes_alive:
                nodes_alive[node] = await self.redis_store.node_alive(node)
            if nodes_alive[node]:
                online = Online(record.key, node, generation)
                state.hub.apply(state.dispatcher.apply(online, state.clock()))
        log.info("cluster_reloaded node=%s actors=%d", self.node, count)

    # ---- node liveness ----

    async def _liveness_forever(self) -> None:
        assert self._state is not None
        state = self._state
        while True:
            await asyncio.sleep(self.heartbeat_secs)
            try:
                await self.redis_store.refresh_node(self.node_ttl_secs)
                nodes = sorted(state.registry.remote_nodes())
                if not nodes:
                    continue
                alive = await self.redis_store.nodes_alive(nodes)
                for node, up in zip(nodes, alive, strict=True):
                    if not up:
                        log.warning("cluster_node_lost node=%s lost=%s", self.node, node)
                        state.hub.apply(state.dispatcher.node_lost(node, state.clock()))
            except (RedisError, OSError) as e:
                log.warning("cluster_liveness_failed node=%s error=%s", self.node, e)
