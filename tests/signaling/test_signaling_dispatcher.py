"""signaling/dispatcher.py with time passed in: presence and its grace (SIG-7), expired
credentials (SIG-3), stale sockets (SIG-8), and what another node announced (SIG-10)."""

from __future__ import annotations

from units_kit import T0, _actor, _setup

from actr.protocol.signaling_pb2 import (
    ActrToSignaling,
    Ping,
    SignalingEnvelope,
    SubscribeActrUpRequest,
)
from signaling.dispatcher import Action, Announce, Deliver, Disconnect, Dispatcher, Forward
from signaling.events import (
    Offline,
    Online,
)
from signaling.registry import LAPSE_SLACK_SECS, ActorRecord


def _frame(record: ActorRecord, body: ActrToSignaling) -> bytes:
    env = SignalingEnvelope(envelope_version=2, envelope_id="e1")
    env.actr_to_server.CopyFrom(body)
    env.actr_to_server.source.CopyFrom(record.actr_id)
    env.actr_to_server.credential.CopyFrom(record.credential)
    return env.SerializeToString()


def _delivered(actions: list[Action]) -> list[Deliver]:
    return [a for a in actions if isinstance(a, Deliver)]


def _event_kind(action: Deliver) -> str | None:
    env = SignalingEnvelope()
    env.ParseFromString(action.data)
    return env.server_to_actr.WhichOneof("payload")


def _watch(dispatcher: Dispatcher, watcher: ActorRecord, target: ActorRecord) -> None:
    sub = ActrToSignaling(
        subscribe_actr_up_request=SubscribeActrUpRequest(target_type=target.actr_id.type)
    )
    dispatcher.frame(watcher.key, _frame(watcher, sub), T0)


def test_sig7_silent_actor_expires_after_three_intervals() -> None:
    registry, authority, dispatcher, stats = _setup(heartbeat=10)
    echo = _actor(registry, authority, "acme:echo:1.0")
    watcher = _actor(registry, authority, "acme:client:1.0")
    dispatcher.connected(watcher.key, 1, T0)
    _watch(dispatcher, watcher, echo)
    up = _delivered(dispatcher.connected(echo.key, 2, T0))
    assert [a.to for a in up] == [watcher.key]

    # Pings keep both alive; 30 s of silence is still within the limit.
    dispatcher.frame(watcher.key, _frame(watcher, ActrToSignaling(ping=Ping())), T0 + 25)
    assert _delivered(dispatcher.sweep(T0 + 30)) == []
    # echo never pinged: past 3 intervals it goes offline and watchers hear of it at once.
    actions = dispatcher.sweep(T0 + 31)
    assert Disconnect(echo.key, 1001, "no ping received") in actions
    assert Announce(Offline(echo.key, "local", grace=False, generation=1)) in actions
    downs = _delivered(actions)
    assert [a.to for a in downs] == [watcher.key]
    event = SignalingEnvelope()
    event.ParseFromString(downs[0].data)
    assert event.server_to_actr.actr_down_event.actor_id == echo.actr_id
    assert not echo.live and watcher.live
    assert stats.presence_expired == 1
    # Its socket closing later does not announce it twice.
    assert dispatcher.disconnected(echo.key, 2, T0 + 32) == []


def test_sig7_down_event_after_grace_unless_back() -> None:
    registry, authority, dispatcher, _ = _setup(heartbeat=100_000)
    dispatcher.grace_secs = 30
    echo = _actor(registry, authority, "acme:echo:1.0")
    watcher = _actor(registry, authority, "acme:client:1.0")
    dispatcher.connected(watcher.key, 1, T0)
    _watch(dispatcher, watcher, echo)
    dispatcher.connected(echo.key, 2, T0)
    # Closed: out of route candidates at once, no event yet.
    assert _delivered(dispatcher.disconnected(echo.key, 2, T0 + 1)) == []
    assert registry.route_candidates(watcher.actr_id, echo.actr_id.type, 8) == []
    assert _delivered(dispatcher.sweep(T0 + 30)) == []
    # Back within the grace: live again, and no event either way.
    assert _delivered(dispatcher.connected(echo.key, 3, T0 + 30)) == []
    assert registry.route_candidates(watcher.actr_id, echo.actr_id.type, 8) == [echo.actr_id]
    # Gone again, and this time the grace runs out: one down event.
    dispatcher.disconnected(echo.key, 3, T0 + 40)
    assert _delivered(dispatcher.sweep(T0 + 69)) == []
    downs = _delivered(dispatcher.sweep(T0 + 70))
    assert [(a.to, _event_kind(a)) for a in downs] == [(watcher.key, "actr_down_event")]
    assert _delivered(dispatcher.sweep(T0 + 80)) == []
    # Coming back after that is an up event.
    ups = _delivered(dispatcher.connected(echo.key, 4, T0 + 90))
    assert [(a.to, _event_kind(a)) for a in ups] == [(watcher.key, "actr_up_event")]


def test_sig7_lapsed_registration_forgotten_after_newest_credential_expired() -> None:
    registry, authority, dispatcher, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    expires = record.credential_expires_at
    dispatcher.sweep(expires + LAPSE_SLACK_SECS - 1)
    assert registry.get(record.key) is not None
    dispatcher.sweep(expires + LAPSE_SLACK_SECS)
    assert registry.get(record.key) is None


def test_sig7_live_actor_outliving_its_credential_is_closed() -> None:
    registry, authority, dispatcher, stats = _setup(heartbeat=100_000)
    record = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(record.key, 1, T0)
    actions = dispatcher.sweep(record.credential_expires_at)
    assert Disconnect(record.key, 1008, "credential expired") in actions
    assert not record.live
    assert stats.rejects["credential_outlived"] == 1


def test_sig3_expired_current_credential_refused() -> None:
    registry, authority, dispatcher, stats = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(record.key, 1, T0)
    (answer,) = dispatcher.frame(
        record.key, _frame(record, ActrToSignaling(ping=Ping())), record.credential_expires_at
    )
    assert isinstance(answer, Deliver)
    env = SignalingEnvelope()
    env.ParseFromString(answer.data)
    assert env.server_to_actr.error.code == 10103
    assert stats.rejects["unauthenticated_credential_expired"] == 1


def test_sig8_stale_socket_close_does_not_take_actor_offline() -> None:
    registry, authority, dispatcher, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(record.key, 1, T0)
    dispatcher.connected(record.key, 2, T0)  # reconnect replaced socket 1
    assert dispatcher.disconnected(record.key, 1, T0) == []
    assert record.live and record.connection == 2


def test_sig10_remote_online_is_a_candidate_and_relay_is_forwarded() -> None:
    registry, authority, dispatcher, stats = _setup()
    caller = _actor(registry, authority, "acme:client:1.0")
    echo = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(caller.key, 1, T0)
    dispatcher.apply(Online(echo.key, "node-b", 1), T0)
    assert registry.route_candidates(caller.actr_id, echo.actr_id.type, 8) == [echo.actr_id]
    env = SignalingEnvelope(envelope_version=2, envelope_id="r1")
    env.actr_relay.source.CopyFrom(caller.actr_id)
    env.actr_relay.credential.CopyFrom(caller.credential)
    env.actr_relay.target.CopyFrom(echo.actr_id)
    env.actr_relay.ice_candidate.candidate = "candidate:1 1 udp 1 127.0.0.1 5 typ host"
    data = env.SerializeToString()
    actions = dispatcher.frame(caller.key, data, T0)
    assert actions == [Forward("node-b", echo.key, data)]
    assert stats.relays_forwarded == 1
    # That node lost: offline at once, down only after the grace.
    dispatcher.node_lost("node-b", T0 + 1)
    assert not echo.live
    assert registry.route_candidates(caller.actr_id, echo.actr_id.type, 8) == []


def test_sig10_actor_moving_to_another_node_closes_its_socket_here() -> None:
    registry, authority, dispatcher, _ = _setup()
    echo = _actor(registry, authority, "acme:echo:1.0")
    dispatcher.connected(echo.key, 7, T0)
    # An announcement of an attach no newer than the one here is stale: ignored.
    assert dispatcher.apply(Online(echo.key, "node-b", 1), T0) == []
    assert echo.connection == 7
    actions = dispatcher.apply(Online(echo.key, "node-b", 2), T0)
    assert Disconnect(echo.key, 1000, "replaced by a connection on another node") in actions
    assert echo.node == "node-b" and echo.connection is None
    # Its old socket closing here changes nothing.
    assert dispatcher.disconnected(echo.key, 7, T0) == []
    assert echo.live
    # A stale offline from a node it left changes nothing either.
    dispatcher.apply(Offline(echo.key, "node-a", grace=False, generation=1), T0)
    assert echo.live
    # Nor does an older offline from the node it is on.
    dispatcher.apply(Offline(echo.key, "node-b", grace=False, generation=1), T0)
    assert echo.live
