"""The deployment's shared state in Redis (PROTOCOL.md SIG-10): the keys and what
reads and writes them. ``signaling.cluster`` carries the pub/sub around it.

- ``{p}:serial:{realm}``: INCR allocates serials, unique across nodes (ID-2), raised
  to a floor when below it: the clock's (``signaling.serials``) or above every serial
  this node has seen, whichever is higher (a Redis that lost the key must not count
  from 1 again, F1).
- ``{p}:actor:{actor id}``: a hash with the registration (``events.record_fields``)
  plus ``node`` (where its socket is), ``gen`` (HINCRBY numbers each socket
  attach, so a late announcement never undoes a newer one) and ``backlog``; it
  expires a minute after the newest credential, as the registry forgets it
  (``LAPSE_SLACK_SECS``). Presence updates change it only while it exists (they
  must not resurrect an expired hash without a TTL). A renewal is stored only if
  no other renewal of the chain was stored since it was read (F8).
- ``{p}:node:{node}``: set with a TTL of 3 heartbeat intervals and refreshed
  every interval; a node whose key vanished is dead and its actors are offline.

Every call that fails on Redis raises ``ClusterUnavailable``, except the writes
queued into a pipeline (``update``), which fail with the pipeline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from signaling.events import (
    Backlog,
    Event,
    Granted,
    Offline,
    Online,
    Subscription,
    encode_event,
    record_fields,
    record_from_fields,
)
from signaling.record import ActorRecord, TypeKey
from signaling.registry import LAPSE_SLACK_SECS

__all__ = ["ClusterConflict", "ClusterStore", "ClusterUnavailable", "as_bytes"]

log = logging.getLogger(__name__)

SCAN_COUNT = 500

# HSET only while the registration exists: a presence update must not resurrect
# an expired hash (it would have no TTL and live forever).
_HSET_IF_EXISTS = """
if redis.call('exists', KEYS[1]) == 1 then
  redis.call('hset', KEYS[1], unpack(ARGV))
end
return 0
"""
# The next attach number of an actor, only while its registration exists (0: it does not).
_NEXT_GENERATION = """
if redis.call('exists', KEYS[1]) == 1 then
  return redis.call('hincrby', KEYS[1], 'gen', 1)
end
return 0
"""
# INCR, but never below the floor (ARGV[1]) taken from the clock. Lua numbers are
# doubles: exact for serials below 2**53 (the floor is about 2**47 in 2026).
_NEXT_SERIAL = """
local v = redis.call('incr', KEYS[1])
local floor = tonumber(ARGV[1])
if v < floor then
  redis.call('set', KEYS[1], ARGV[1])
  return floor
end
return v
"""
# Store a registration (ARGV[6..]: field, value, ...), expire it at ARGV[3] and announce
# it (ARGV[5] on channel ARGV[4]); with ARGV[1] == '1' only if its renewal tokens are
# still ARGV[2], as read before the renewal (F8: two renewals of one chain cannot both win).
_STORE = """
if ARGV[1] == '1' and (redis.call('hget', KEYS[1], 'tokens') or '') ~= ARGV[2] then
  return 0
end
redis.call('hset', KEYS[1], unpack(ARGV, 6))
redis.call('expireat', KEYS[1], ARGV[3])
redis.call('publish', ARGV[4], ARGV[5])
return 1
"""
# Clear ``node`` only if it still names us: the actor may have moved on already.
_HDEL_NODE_IF_OURS = """
if redis.call('hget', KEYS[1], 'node') == ARGV[1] then
  redis.call('hdel', KEYS[1], 'node')
end
return 0
"""


class ClusterUnavailable(Exception):
    """Redis cannot be reached; the request that needed it fails (HTTP 503)."""


class ClusterConflict(Exception):
    """Another node stored a renewal of the same chain first (HTTP 409: retry)."""


def as_bytes(fields: Mapping[Any, Any]) -> dict[bytes, bytes]:
    # The client is made without decode_responses, so keys and values are bytes already.
    return {
        (k if isinstance(k, bytes) else str(k).encode()): (
            v if isinstance(v, bytes) else str(v).encode()
        )
        for k, v in fields.items()
    }


class ClusterStore:
    def __init__(self, redis: aioredis.Redis, prefix: str, node: str, events_channel: str) -> None:
        """``node``: this node, named in what it stores; ``events_channel``: where a
        stored registration is announced (``Granted``)."""
        self.redis = redis
        self.prefix = prefix
        self.node = node
        self.events_channel = events_channel
        self._hset_if_exists = redis.register_script(_HSET_IF_EXISTS)
        self._hdel_node_if_ours = redis.register_script(_HDEL_NODE_IF_OURS)
        self._next_generation = redis.register_script(_NEXT_GENERATION)
        self._next_serial = redis.register_script(_NEXT_SERIAL)
        self._store = redis.register_script(_STORE)

    def actor_key(self, key: str) -> str:
        return f"{self.prefix}:actor:{key}"

    def node_key(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    # ---- registrations ----

    async def next_serial(self, realm_id: int, floor: int = 1) -> int:
        key = f"{self.prefix}:serial:{realm_id}"
        try:
            return int(await self._next_serial(keys=[key], args=[str(floor)]))
        except (RedisError, OSError) as e:
            raise ClusterUnavailable(f"serial allocation failed: {e}") from None

    async def next_generation(self, key: str) -> int:
        """Number a new socket of ``key`` across nodes; 0 when the registration is gone."""
        try:
            return int(await self._next_generation(keys=[self.actor_key(key)]))
        except (RedisError, OSError) as e:
            raise ClusterUnavailable(f"numbering the socket failed: {e}") from None

    async def store(self, record: ActorRecord, expect_tokens: bytes | None = None) -> None:
        """Write the registration, then tell the other nodes to read it.

        ``expect_tokens``: store only if the stored renewal tokens are still these
        (ClusterConflict otherwise).
        """
        key = self.actor_key(record.key)
        args: list[bytes | str | int] = [
            "0" if expect_tokens is None else "1",
            expect_tokens or b"",
            record.credential_expires_at + LAPSE_SLACK_SECS,
            self.events_channel,
            encode_event(Granted(record.key), self.node),
        ]
        for field, value in record_fields(record).items():
            args += [field, value]
        try:
            stored = await self._store(keys=[key], args=args)
        except (RedisError, OSError) as e:
            raise ClusterUnavailable(f"storing the registration failed: {e}") from None
        if not stored:
            raise ClusterConflict("another renewal of this actor was stored first: retry")

    async def fetch(self, key: str) -> ActorRecord | None:
        """The stored registration of ``key``, or None when there is none (or it is damaged)."""
        try:
            fields = as_bytes(await self.redis.hgetall(self.actor_key(key)))
        except (RedisError, OSError) as e:
            raise ClusterUnavailable(f"reading the registration failed: {e}") from None
        if not fields:
            return None
        try:
            return record_from_fields(fields)
        except ValueError as e:
            log.warning("stored_registration_damaged actor=%s error=%s", key, e)
            return None

    async def registrations(self) -> AsyncIterator[tuple[bytes, dict[bytes, bytes]]]:
        """Every stored registration, as (its Redis key, its fields); raises RedisError."""
        async for akey in self.redis.scan_iter(match=f"{self.prefix}:actor:*", count=SCAN_COUNT):
            fields = as_bytes(await self.redis.hgetall(akey))
            if fields:
                yield akey, fields

    async def update(self, pipe: Any, event: Event, subscriptions: list[TypeKey]) -> None:
        """Queue on ``pipe`` what ``event`` changes in the stored registration: where its
        socket is, its backlog, its subscriptions (``subscriptions``: all of them now)."""
        if isinstance(event, Online):
            await self._hset_if_exists(
                keys=[self.actor_key(event.key)], args=["node", event.node], client=pipe
            )
        elif isinstance(event, Offline):
            await self._hdel_node_if_ours(
                keys=[self.actor_key(event.key)], args=[event.node], client=pipe
            )
        elif isinstance(event, Backlog):
            await self._hset_if_exists(
                keys=[self.actor_key(event.key)], args=["backlog", repr(event.value)], client=pipe
            )
        elif isinstance(event, Subscription):
            await self._hset_if_exists(
                keys=[self.actor_key(event.key)],
                args=["subs", json.dumps(subscriptions)],
                client=pipe,
            )

    # ---- node liveness ----

    async def refresh_node(self, ttl_secs: int) -> None:
        """This node is alive for ``ttl_secs`` more; raises RedisError."""
        await self.redis.set(self.node_key(self.node), b"1", ex=ttl_secs)

    async def node_alive(self, node: str) -> bool:
        return bool(await self.redis.exists(self.node_key(node)))

    async def nodes_alive(self, nodes: list[str]) -> list[bool]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for node in nodes:
                pipe.exists(self.node_key(node))
            return [bool(up) for up in await pipe.execute()]

    async def drop_node(self) -> None:
        """This node is leaving: its liveness key goes now, not when its TTL ends."""
        await self.redis.delete(self.node_key(self.node))
