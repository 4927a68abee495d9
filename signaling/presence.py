"""Presence: sockets coming and going, here and on other nodes (PROTOCOL.md SIG-7,
SIG-10). No I/O: time is passed in.

A socket that closes takes its actor out of route candidates and relay at once;
subscribers hear ``actr_down_event`` only when it has not come back within
``grace_secs`` (a reconnect within the grace sends no event at all). Missing 3
ping intervals, unregistering, or outliving the credential takes the actor down
at once. An actor's ``actr_up`` subscriptions live as long as its presence: a
reconnect within the grace keeps them, and they end when its down is announced
(the node that held the socket tells the others).

``Presence`` turns each such change into actions (``signaling.actions``): the
change announced to the other nodes, up/down events for the subscribers on this
node, a socket to close. What other nodes announce comes in through ``apply``.
"""

from __future__ import annotations

import logging

from actr.protocol.signaling_pb2 import ActrDownEvent, ActrUpEvent, SignalingToActr
from actr.wire import CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY
from signaling.actions import Action, Announce, Deliver, Disconnect
from signaling.config_limits import Limits
from signaling.envelopes import to_actr
from signaling.events import Backlog, Contact, Event, Granted, Offline, Online, Subscription
from signaling.record import ActorRecord
from signaling.registry import Registry
from signaling.stats import Stats

__all__ = ["MISSED_PINGS", "Presence"]

log = logging.getLogger(__name__)

# SIG-7: an actor that missed this many ping intervals is taken offline.
MISSED_PINGS = 3


class Presence:
    def __init__(
        self,
        registry: Registry,
        stats: Stats,
        heartbeat_interval_secs: int,
        grace_secs: float,
        node: str,
        limits: Limits,
    ) -> None:
        self.registry = registry
        self.stats = stats
        self.heartbeat_interval_secs = heartbeat_interval_secs
        self.grace_secs = grace_secs
        self.node = node
        self.limits = limits

    # ---- sockets on this node ----

    def connected(
        self, key: str, connection: int, now: float, generation: int | None, answer_only: bool
    ) -> list[Action]:
        record = self.registry.get(key)
        if record is None:
            return [Disconnect(key, CLOSE_POLICY, "actor is not registered")]
        came_live = self.registry.attach(key, connection, now, generation)
        record.answer_only = answer_only
        log.info(
            "actor_connected actor=%s connection=%d came_live=%s generation=%d",
            key,
            connection,
            came_live,
            record.generation,
        )
        actions: list[Action] = [Announce(Online(key, self.node, record.generation, answer_only))]
        if not record.announced:
            actions.extend(self._up(record))
        return actions

    def disconnected(self, key: str, connection: int, now: float) -> list[Action]:
        record = self.registry.get(key)
        if record is None or not self.registry.detach(key, connection):
            return []
        log.info(
            "actor_offline actor=%s connection=%d grace_secs=%s", key, connection, self.grace_secs
        )
        actions: list[Action] = [
            Announce(Offline(key, self.node, grace=True, generation=record.generation))
        ]
        if self.grace_secs > 0:
            record.offline_since = now
            record.grace_here = True
        else:
            actions.extend(self._down(record, announce=True))
        return actions

    def sweep(self, now: float) -> list[Action]:
        actions: list[Action] = []
        max_silence = MISSED_PINGS * self.heartbeat_interval_secs
        for record in self.registry.silent(now, max_silence):
            self.stats.presence_expired += 1
            log.info(
                "actor_presence_expired actor=%s silent_secs=%.0f",
                record.key,
                now - record.last_seen,
            )
            actions.extend(self.take_offline(record, CLOSE_GOING_AWAY, "no ping received"))
        for record in self.registry.outlived_credential(now):
            self.stats.reject("credential_outlived")
            log.info("actor_credential_outlived actor=%s", record.key)
            actions.extend(self.take_offline(record, CLOSE_POLICY, "credential expired"))
        for record in self.registry.grace_over(now, self.grace_secs):
            log.info("actor_grace_over actor=%s", record.key)
            actions.extend(self._down(record, announce=record.grace_here))
        for record in self.registry.lapsed(now):
            self.registry.forget(record.key)
            log.info("actor_registration_lapsed actor=%s", record.key)
        return actions

    def take_offline(self, record: ActorRecord, code: int, reason: str) -> list[Action]:
        """Offline at once, down event at once, then close the socket."""
        actions: list[Action] = []
        if record.connection is not None:
            self.registry.detach(record.key, record.connection)
            actions.append(
                Announce(Offline(record.key, self.node, grace=False, generation=record.generation))
            )
        actions.extend(self._down(record, announce=True))
        actions.append(Disconnect(record.key, code, reason))
        return actions

    def chain_revoked(self, key: str) -> list[Action]:
        record = self.registry.get(key)
        if record is None or not record.local:
            return []
        self.stats.reject("socket_chain_revoked")
        return self.take_offline(record, CLOSE_POLICY, "renewal token reused: register again")

    # ---- what other nodes announce (SIG-10) ----

    def apply(self, event: Event, now: float) -> list[Action]:
        if isinstance(event, Granted):
            # The cluster read the registration and merged it; one whose renewal chain
            # another node revoked loses its socket here (F8).
            record = self.registry.get(event.key)
            revoked = record is not None and record.chain_revoked
            return self.chain_revoked(event.key) if revoked else []
        if isinstance(event, Contact):
            source = self.registry.get(event.source)
            if source is not None:
                source.note_negotiation(event.target, event.until)
            return []
        record = self.registry.get(event.key)
        if record is None:
            return []
        actions: list[Action] = []
        if isinstance(event, Online):
            if event.generation <= record.generation:
                # An older attach than the one known here (it may be this node's own).
                log.info("stale_online_ignored actor=%s node=%s", event.key, event.node)
                return []
            replaced = self.registry.attach_remote(event.key, event.node, event.generation)
            record.answer_only = event.answer_only
            if replaced is not None:
                log.info("socket_moved actor=%s node=%s", event.key, event.node)
                actions.append(
                    Disconnect(event.key, CLOSE_NORMAL, "replaced by a connection on another node")
                )
            if not record.announced:
                actions.extend(self._up(record))
        elif isinstance(event, Offline):
            if self.registry.detach_remote(event.key, event.node, event.generation):
                if event.grace and self.grace_secs > 0:
                    record.offline_since = now
                else:
                    actions.extend(self._down(record, announce=False))
        elif isinstance(event, Backlog):
            record.mailbox_backlog = event.value
        elif isinstance(event, Subscription):
            if event.on:
                self.registry.subscribe(event.key, event.target, self.limits.max_subscriptions)
            else:
                self.registry.unsubscribe(event.key, event.target)
        return actions

    def node_lost(self, node: str, now: float) -> list[Action]:
        actions: list[Action] = []
        for record in self.registry.on_node(node):
            self.registry.detach_remote(record.key, node)
            if self.grace_secs > 0:
                record.offline_since = now
                # Nobody else is left to tell the others its subscriptions ended.
                record.grace_here = True
            else:
                actions.extend(self._down(record, announce=True))
        return actions

    # ---- up and down events ----

    def _up(self, record: ActorRecord) -> list[Action]:
        record.announced = True
        return self._events(record, up=True)

    def _down(self, record: ActorRecord, *, announce: bool) -> list[Action]:
        """Subscribers hear it is down; its own subscriptions end with its presence
        (F3). ``announce``: this node tells the others they ended."""
        record.offline_since = None
        record.grace_here = False
        actions: list[Action] = []
        for target in sorted(record.subscriptions):
            self.registry.unsubscribe(record.key, target)
            if announce:
                actions.append(Announce(Subscription(record.key, target, on=False)))
        if not record.announced:
            return actions
        record.announced = False
        log.info("actor_down actor=%s", record.key)
        return [*actions, *self._events(record, up=False)]

    def _events(self, record: ActorRecord, *, up: bool) -> list[Action]:
        actions: list[Action] = []
        for sub in self.registry.watchers(record):
            event = SignalingToActr(target=sub.actr_id)
            if up:
                event.actr_up_event.CopyFrom(ActrUpEvent(actor_id=record.actr_id))
            else:
                event.actr_down_event.CopyFrom(ActrDownEvent(actor_id=record.actr_id))
            actions.append(Deliver(sub.key, to_actr(event)))
        return actions
