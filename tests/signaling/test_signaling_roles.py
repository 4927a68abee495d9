"""The dispatcher's side of connection setup, without sockets: roles assigned by the
server (SIG-6), signing keys (SIG-6a), service specs (SIG-6b), revocation on
unregister (SIG-7), and the relay path a negotiation opens (ACL-2, F9/F12)."""

from __future__ import annotations

import itertools

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actr.errors import ErrorCode
from actr.identity import parse_type, role_key
from actr.protocol.actr_pb2 import Acl, AclRule, ServiceSpec
from actr.protocol.signaling_pb2 import ActrToSignaling, SignalingEnvelope
from actr.protocol.webrtc_pb2 import RoleNegotiation
from signaling.credentials import CredentialAuthority
from signaling.dispatcher import (
    Announce,
    Deliver,
    Dispatcher,
    Forward,
    offerer_is_asker,
)
from signaling.events import Contact, Online
from signaling.registry import NEGOTIATION_TTL_SECS, ActorRecord, Registry
from signaling.stats import Stats

T0 = 1_800_000_000.0


def _setup() -> tuple[Registry, CredentialAuthority, Dispatcher, Stats]:
    registry, stats = Registry(), Stats()
    authority = CredentialAuthority(Ed25519PrivateKey.generate(), key_id=7, lifetime_secs=3600)
    return registry, authority, Dispatcher(registry, authority, stats, 10), stats


def _actor(
    registry: Registry,
    authority: CredentialAuthority,
    actr_type: str,
    *,
    acl: Acl | None = None,
    spec: ServiceSpec | None = None,
    connection: int | None = None,
    dispatcher: Dispatcher | None = None,
    answer_only: bool = False,
) -> ActorRecord:
    record = registry.register(parse_type(actr_type), 1, acl, "", T0, service_spec=spec)
    record.grant(authority.issue(record.actr_id, T0), int(T0) + 3600, b"token")
    if dispatcher is not None and connection is not None:
        dispatcher.connected(record.key, connection, T0, answer_only=answer_only)
    return record


def _negotiate(asker: ActorRecord, peer: ActorRecord, envelope_id: str = "n1") -> bytes:
    env = SignalingEnvelope(envelope_version=2, envelope_id=envelope_id)
    r = env.actr_relay
    r.source.CopyFrom(asker.actr_id)
    r.credential.CopyFrom(asker.credential)
    r.target.CopyFrom(peer.actr_id)
    r.role_negotiation.CopyFrom(
        RoleNegotiation(realm_id=1, **{"from": asker.actr_id, "to": peer.actr_id})
    )
    return env.SerializeToString()


def _relay_sdp(source: ActorRecord, target: ActorRecord) -> bytes:
    env = SignalingEnvelope(envelope_version=2, envelope_id="s1")
    r = env.actr_relay
    r.source.CopyFrom(source.actr_id)
    r.credential.CopyFrom(source.credential)
    r.target.CopyFrom(target.actr_id)
    r.session_description.type = 1  # ANSWER
    r.session_description.sdp = "v=0"
    return env.SerializeToString()


def _decode(data: bytes) -> SignalingEnvelope:
    env = SignalingEnvelope()
    env.ParseFromString(data)
    return env


def _assignments(actions: list[object]) -> dict[str, SignalingEnvelope]:
    out = {}
    for a in actions:
        if isinstance(a, Deliver | Forward):
            env = _decode(a.data)
            if env.WhichOneof("flow") == "actr_relay":
                out[a.to] = env
    return out


def _to_server(record: ActorRecord, body: ActrToSignaling) -> bytes:
    env = SignalingEnvelope(envelope_version=2, envelope_id="q1")
    env.actr_to_server.CopyFrom(body)
    env.actr_to_server.source.CopyFrom(record.actr_id)
    env.actr_to_server.credential.CopyFrom(record.credential)
    return env.SerializeToString()


def _answer(actions: list[object], to: str) -> SignalingEnvelope:
    (deliver,) = [a for a in actions if isinstance(a, Deliver) and a.to == to]
    return _decode(deliver.data)


# ---- SIG-6: who offers ----


@pytest.mark.parametrize("asker_first", [True, False])
def test_sig6_both_sides_told_the_larger_key_offers_nothing_forwarded(asker_first: bool) -> None:
    registry, authority, dispatcher, stats = _setup()
    a = _actor(registry, authority, "acme:client:1.0", connection=1, dispatcher=dispatcher)
    b = _actor(registry, authority, "acme:echo:1.0", connection=2, dispatcher=dispatcher)
    asker, peer = (a, b) if asker_first else (b, a)
    actions = dispatcher.frame(asker.key, _negotiate(asker, peer), T0)
    told = _assignments(actions)
    assert set(told) == {asker.key, peer.key}
    larger = b  # registered second: the larger serial
    for key, env in told.items():
        relay = env.actr_relay
        assert relay.WhichOneof("payload") == "role_assignment"
        # actrix's shape: source = the asker, target = the peer, on both copies.
        assert relay.source == asker.actr_id and relay.target == peer.actr_id
        assert relay.role_assignment.is_offerer == (key == larger.key)
        # The asker's credential never reaches the peer.
        assert relay.credential.signature == b""
    assert told[asker.key].reply_for == "n1"
    # Not forwarded: no frame carries role_negotiation.
    assert all(
        _decode(a.data).actr_relay.WhichOneof("payload") != "role_negotiation"
        for a in actions
        if isinstance(a, Deliver)
    )
    assert stats.role_assignments == 1


def test_sig6_key_order_is_realm_serial_manufacturer_name() -> None:
    registry, authority, _, _ = _setup()
    records = [_actor(registry, authority, t) for t in ("acme:a:1.0", "acme:b:1.0", "zeta:a:1.0")]
    for x, y in itertools.permutations(records, 2):
        assert offerer_is_asker(x, y) == (role_key(x.actr_id) > role_key(y.actr_id))
        assert offerer_is_asker(x, y) != offerer_is_asker(y, x)
    # Serial dominates manufacturer and name.
    assert offerer_is_asker(records[2], records[0])
    assert not offerer_is_asker(records[0], records[2])


@pytest.mark.parametrize(
    ("asker_answer", "peer_answer", "asker_larger", "asker_offers"),
    [
        (True, False, True, False),  # the asker asked to answer: the peer offers
        (True, False, False, False),
        (False, True, True, True),  # the peer asked to answer: the asker offers
        (False, True, False, True),
        (True, True, True, True),  # both asked: the key order decides
        (True, True, False, False),
        (False, False, True, True),
        (False, False, False, False),
    ],
)
def test_sig6_webrtc_role_answer(
    asker_answer: bool, peer_answer: bool, asker_larger: bool, asker_offers: bool
) -> None:
    registry, authority, dispatcher, _ = _setup()
    small = _actor(registry, authority, "acme:a:1.0")
    large = _actor(registry, authority, "acme:b:1.0")
    asker, peer = (large, small) if asker_larger else (small, large)
    dispatcher.connected(asker.key, 1, T0, answer_only=asker_answer)
    dispatcher.connected(peer.key, 2, T0, answer_only=peer_answer)
    told = _assignments(dispatcher.frame(asker.key, _negotiate(asker, peer), T0))
    assert told[asker.key].actr_relay.role_assignment.is_offerer == asker_offers
    assert told[peer.key].actr_relay.role_assignment.is_offerer == (not asker_offers)


def test_sig6_answer_only_travels_with_online_to_other_nodes() -> None:
    registry, authority, dispatcher, _ = _setup()
    asker = _actor(registry, authority, "acme:b:1.0", connection=1, dispatcher=dispatcher)
    remote = _actor(registry, authority, "acme:a:1.0")
    remote_larger = _actor(registry, authority, "acme:c:1.0")
    dispatcher.apply(Online(remote.key, "node-b", 1, answer_only=True), T0)
    dispatcher.apply(Online(remote_larger.key, "node-b", 1, answer_only=True), T0)
    actions = dispatcher.frame(asker.key, _negotiate(asker, remote_larger), T0)
    # The peer on node-b gets its copy through its node; it asked to answer, so asker offers.
    assert any(isinstance(a, Forward) and a.to == remote_larger.key for a in actions)
    told = _assignments(actions)
    assert told[asker.key].actr_relay.role_assignment.is_offerer
    assert not told[remote_larger.key].actr_relay.role_assignment.is_offerer


def test_sig6_negotiation_must_name_the_socket_and_the_target() -> None:
    registry, authority, dispatcher, stats = _setup()
    a = _actor(registry, authority, "acme:a:1.0", connection=1, dispatcher=dispatcher)
    b = _actor(registry, authority, "acme:b:1.0", connection=2, dispatcher=dispatcher)
    c = _actor(registry, authority, "acme:c:1.0", connection=3, dispatcher=dispatcher)
    env = _decode(_negotiate(a, b))
    getattr(env.actr_relay.role_negotiation, "from").CopyFrom(c.actr_id)
    actions = dispatcher.frame(a.key, env.SerializeToString(), T0)
    assert [x.to for x in actions if isinstance(x, Deliver)] == [a.key]
    assert _answer(actions, a.key).envelope_error.code == ErrorCode.INVALID_ARGUMENT
    assert stats.rejects["role_negotiation_mismatch"] == 1


def test_sig6_negotiation_with_an_absent_or_refusing_peer_is_not_found() -> None:
    registry, authority, dispatcher, _ = _setup()
    a = _actor(registry, authority, "acme:a:1.0", connection=1, dispatcher=dispatcher)
    offline = _actor(registry, authority, "acme:b:1.0")
    deny = Acl(rules=[AclRule(permission=AclRule.DENY, from_type=a.actr_id.type, any_realm=True)])
    guarded = _actor(
        registry, authority, "acme:vault:1.0", acl=deny, connection=3, dispatcher=dispatcher
    )
    for peer in (offline, guarded):
        actions = dispatcher.frame(a.key, _negotiate(a, peer), T0)
        answer = _answer(actions, a.key)
        assert answer.server_to_actr.error.code == ErrorCode.NOT_FOUND
        # F12: the same words for both.
        assert answer.server_to_actr.error.message == f"actor {peer.key} is not reachable"
        assert len(actions) == 1


# ---- F9: the path back is scoped to the negotiation ----


def _client_only_acl(owner_type: str) -> Acl:
    # Admits nobody but its own type: a caller that never lists the actors it calls.
    return Acl(
        rules=[AclRule(permission=AclRule.ALLOW, from_type=parse_type(owner_type), any_realm=True)]
    )


def test_f9_answer_path_opens_for_the_negotiation_only_and_expires() -> None:
    registry, authority, dispatcher, _ = _setup()
    caller = _actor(
        registry,
        authority,
        "acme:client:1.0",
        acl=_client_only_acl("acme:client:1.0"),
        connection=1,
        dispatcher=dispatcher,
    )
    callee = _actor(registry, authority, "acme:echo:1.0", connection=2, dispatcher=dispatcher)
    # Before any negotiation the callee may not relay to the caller.
    refused = dispatcher.frame(callee.key, _relay_sdp(callee, caller), T0)
    assert _answer(refused, callee.key).server_to_actr.error.code == ErrorCode.NOT_FOUND
    actions = dispatcher.frame(caller.key, _negotiate(caller, callee), T0)
    assert _announce(caller, callee, T0) in actions
    ok = dispatcher.frame(callee.key, _relay_sdp(callee, caller), T0 + 1)
    assert ok == [Deliver(caller.key, _relay_sdp(callee, caller))]
    # Expired: closed again.
    late = dispatcher.frame(callee.key, _relay_sdp(callee, caller), T0 + NEGOTIATION_TTL_SECS)
    assert _answer(late, callee.key).server_to_actr.error.code == ErrorCode.NOT_FOUND
    # A third actor never got a path.
    other = _actor(registry, authority, "acme:other:1.0", connection=4, dispatcher=dispatcher)
    third = dispatcher.frame(other.key, _relay_sdp(other, caller), T0 + 1)
    assert _answer(third, other.key).server_to_actr.error.code == ErrorCode.NOT_FOUND


def _announce(asker: ActorRecord, peer: ActorRecord, now: float) -> object:
    return Announce(Contact(asker.key, peer.key, now + NEGOTIATION_TTL_SECS))


def test_f9_negotiation_never_overrides_a_deny() -> None:
    registry, authority, dispatcher, _ = _setup()
    callee = _actor(registry, authority, "acme:echo:1.0", connection=2, dispatcher=dispatcher)
    deny_echo = Acl(
        rules=[
            AclRule(permission=AclRule.DENY, from_type=callee.actr_id.type, any_realm=True),
            AclRule(
                permission=AclRule.ALLOW, from_type=parse_type("acme:client:1.0"), any_realm=True
            ),
        ]
    )
    caller = _actor(
        registry, authority, "acme:client:1.0", acl=deny_echo, connection=1, dispatcher=dispatcher
    )
    dispatcher.frame(caller.key, _negotiate(caller, callee), T0)
    back = dispatcher.frame(callee.key, _relay_sdp(callee, caller), T0 + 1)
    assert _answer(back, callee.key).server_to_actr.error.code == ErrorCode.NOT_FOUND


def test_f9_contact_from_another_node_opens_the_same_scoped_path() -> None:
    registry, authority, dispatcher, _ = _setup()
    caller = _actor(registry, authority, "acme:client:1.0", acl=_client_only_acl("acme:client:1.0"))
    dispatcher.apply(Online(caller.key, "node-b", 1), T0)
    callee = _actor(registry, authority, "acme:echo:1.0", connection=2, dispatcher=dispatcher)
    dispatcher.apply(Contact(caller.key, callee.key, T0 + 5), T0)
    data = _relay_sdp(callee, caller)
    assert dispatcher.frame(callee.key, data, T0 + 1) == [Forward("node-b", caller.key, data)]
    late = dispatcher.frame(callee.key, data, T0 + 5)
    assert _answer(late, callee.key).server_to_actr.error.code == ErrorCode.NOT_FOUND


# ---- SIG-6a, SIG-6b ----


def test_sig6a_signing_key_by_id_and_unknown_id() -> None:
    registry, authority, dispatcher, _ = _setup()
    a = _actor(registry, authority, "acme:a:1.0", connection=1, dispatcher=dispatcher)
    body = ActrToSignaling()
    body.get_signing_key_request.key_id = 7
    answer = _answer(dispatcher.frame(a.key, _to_server(a, body), T0), a.key)
    assert answer.reply_for == "q1"
    got = answer.server_to_actr.get_signing_key_response
    assert (got.key_id, got.pubkey) == (7, authority.public_key_raw)
    body.get_signing_key_request.key_id = 8
    answer = _answer(dispatcher.frame(a.key, _to_server(a, body), T0), a.key)
    assert answer.server_to_actr.error.code == ErrorCode.NOT_FOUND


def _spec(name: str) -> ServiceSpec:
    spec = ServiceSpec(name=name, fingerprint="sha256:00")
    spec.protobufs.add(package="echo.v1", content='syntax = "proto3";', fingerprint="sha256:01")
    return spec


def test_sig6b_service_spec_by_name_unknown_and_invisible() -> None:
    registry, authority, dispatcher, _ = _setup()
    a = _actor(registry, authority, "acme:a:1.0", connection=1, dispatcher=dispatcher)
    _actor(registry, authority, "acme:echo:1.0", spec=_spec("echo.v1.Echo"))
    deny = Acl(rules=[AclRule(permission=AclRule.DENY, from_type=a.actr_id.type, any_realm=True)])
    _actor(registry, authority, "acme:vault:1.0", acl=deny, spec=_spec("vault.v1.Vault"))
    body = ActrToSignaling()
    body.get_service_spec_request.name = "echo.v1.Echo"
    answer = _answer(dispatcher.frame(a.key, _to_server(a, body), T0), a.key)
    got = answer.server_to_actr.get_service_spec_response
    assert got.WhichOneof("result") == "success" and got.success == _spec("echo.v1.Echo")
    for name in ("nope.v1.Nope", "vault.v1.Vault"):
        body.get_service_spec_request.name = name
        answer = _answer(dispatcher.frame(a.key, _to_server(a, body), T0), a.key)
        got = answer.server_to_actr.get_service_spec_response
        assert got.WhichOneof("result") == "error"
        assert got.error.code == ErrorCode.NOT_FOUND


# ---- SIG-7 / F15: unregister revokes ----


def test_sig7_unregister_revokes_every_credential_issued_so_far() -> None:
    registry, authority, dispatcher, _ = _setup()
    a = _actor(registry, authority, "acme:a:1.0", connection=1, dispatcher=dispatcher)
    old = a.credential
    body = ActrToSignaling()
    body.unregister_request.actr_id.CopyFrom(a.actr_id)
    dispatcher.frame(a.key, _to_server(a, body), T0)
    assert a.revoked_through == a.credential_expires_at
    claims = authority.verify(old, T0)
    assert claims.expires_at <= a.revoked_through
