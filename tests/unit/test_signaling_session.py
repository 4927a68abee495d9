"""The signaling session, sans-IO (PROTOCOL.md 4.2): envelopes this side builds, and
the event each server frame makes; no socket, no event loop, no clock."""

from __future__ import annotations

from actr.errors import NotFound, PermissionDenied, Unavailable
from actr.identity import parse_id
from actr.protocol.actr_pb2 import AIdCredential, ErrorResponse, RegisterOk
from actr.protocol.signaling_pb2 import (
    ActrRelay,
    ActrToSignaling,
    Ping,
    SignalingEnvelope,
    SignalingToActr,
)
from actr.signaling_session import (
    Answered,
    Dropped,
    Failed,
    PresenceChanged,
    RelayReceived,
    RelayRefused,
    Session,
    Unmatched,
)
from actr.wire import ENVELOPE_VERSION

ME = parse_id("5@1/acme:client:1.0")
PEER = parse_id("7@1/acme:echo:1.0")
REG = RegisterOk(actr_id=ME, credential=AIdCredential(key_id=3, claims=b"c", signature=b"s"))


def decode(data: bytes) -> SignalingEnvelope:
    env = SignalingEnvelope()
    env.ParseFromString(data)
    return env


def from_server(reply_for: str = "", **payload: object) -> bytes:
    env = SignalingEnvelope(envelope_version=2, envelope_id="srv-1", reply_for=reply_for)
    env.server_to_actr.CopyFrom(SignalingToActr(target=ME, **payload))  # type: ignore[arg-type]
    return env.SerializeToString()


def ping_request(s: Session[str], waiter: str) -> str:
    envelope_id, _ = s.request(ActrToSignaling(ping=Ping(mailbox_backlog=1.0)), REG, waiter)
    return envelope_id


def test_request_envelope_is_version_2_fresh_id_and_stamped() -> None:
    s: Session[str] = Session()
    first, data = s.request(ActrToSignaling(ping=Ping()), REG, "w1")
    second, _ = s.request(ActrToSignaling(ping=Ping()), REG, "w2")
    env = decode(data)
    assert env.envelope_version == ENVELOPE_VERSION == 2
    assert env.envelope_id == first != second
    assert env.actr_to_server.source == ME
    assert env.actr_to_server.credential == REG.credential
    assert env.actr_to_server.HasField("ping")
    assert env.IsInitialized()
    assert len(s) == 2


def test_answer_goes_to_the_waiter_its_reply_for_names_once() -> None:
    s: Session[str] = Session()
    a = ping_request(s, "wa")
    b = ping_request(s, "wb")
    event = s.receive(from_server(b, pong={"seq": 1}))
    assert isinstance(event, Answered) and event.waiter == "wb"
    assert event.body.pong.seq == 1
    assert len(s) == 1
    # A second answer for the same request is nobody's any more.
    assert s.receive(from_server(b, pong={"seq": 2})) is None
    event = s.receive(from_server(a, pong={"seq": 3}))
    assert isinstance(event, Answered) and event.waiter == "wa"
    assert len(s) == 0


def test_error_answer_fails_the_waiter_with_its_typed_error() -> None:
    s: Session[str] = Session()
    rid = ping_request(s, "w")
    event = s.receive(from_server(rid, error=ErrorResponse(code=10003, message="no such")))
    assert isinstance(event, Failed) and event.waiter == "w"
    assert isinstance(event.error, NotFound) and event.error.message == "no such"


def test_envelope_error_fails_the_waiter_or_is_only_logged() -> None:
    s: Session[str] = Session()
    rid = ping_request(s, "w")
    env = SignalingEnvelope(envelope_version=2, envelope_id="e", reply_for=rid)
    env.envelope_error.CopyFrom(ErrorResponse(code=10008, message="could not decode yours"))
    event = s.receive(env.SerializeToString())
    assert isinstance(event, Failed) and event.waiter == "w"
    assert event.error.raw_code == 10008
    # The same for a request nobody waits on: something to log.
    event = s.receive(env.SerializeToString())
    assert event == Unmatched("envelope_error", 10008, "could not decode yours")


def test_forgotten_request_takes_no_late_answer() -> None:
    s: Session[str] = Session()
    rid = ping_request(s, "w")
    s.forget(rid)
    s.forget(rid)  # twice is harmless
    assert len(s) == 0
    assert s.receive(from_server(rid, pong={"seq": 1})) is None


def test_fail_all_hands_back_every_waiter_once() -> None:
    s: Session[str] = Session()
    for w in ("w1", "w2", "w3"):
        ping_request(s, w)
    assert sorted(s.fail_all()) == ["w1", "w2", "w3"]
    assert s.fail_all() == [] and len(s) == 0


def test_relay_envelope_is_stamped_and_a_refusal_names_its_target() -> None:
    s: Session[str] = Session()
    relay = ActrRelay(target=PEER)
    relay.role_negotiation.realm_id = 1
    getattr(relay.role_negotiation, "from").CopyFrom(ME)
    relay.role_negotiation.to.CopyFrom(PEER)
    env = decode(s.relay(relay, REG))
    assert env.envelope_version == 2 and env.actr_relay.source == ME
    assert env.actr_relay.credential == REG.credential and env.actr_relay.target == PEER
    refused = from_server(env.envelope_id, error=ErrorResponse(code=10003, message="gone"))
    event = s.receive(refused)
    assert isinstance(event, RelayRefused) and event.target == "7@1/acme:echo:1.0"
    assert isinstance(event.error, NotFound)
    # Told once: the same refusal again is only logged.
    assert s.receive(refused) == Unmatched("server_to_actr", 10003, "gone")


def test_relay_targets_are_bounded_oldest_forgotten_first() -> None:
    s: Session[str] = Session(max_relay_targets=2)
    ids = [decode(s.relay(ActrRelay(target=PEER), REG)).envelope_id for _ in range(3)]
    denied = ErrorResponse(code=10004, message="denied")
    oldest = s.receive(from_server(ids[0], error=denied))
    assert isinstance(oldest, Unmatched)
    for rid in ids[1:]:
        event = s.receive(from_server(rid, error=denied))
        assert isinstance(event, RelayRefused) and isinstance(event.error, PermissionDenied)


def test_relay_from_a_peer_is_handed_on() -> None:
    s: Session[str] = Session()
    env = SignalingEnvelope(envelope_version=2, envelope_id="r1")
    env.actr_relay.CopyFrom(ActrRelay(source=PEER, credential=REG.credential, target=ME))
    env.actr_relay.role_assignment.is_offerer = True
    event = s.receive(env.SerializeToString())
    assert isinstance(event, RelayReceived)
    assert event.relay.source == PEER and event.relay.role_assignment.is_offerer


def test_sig7_presence_events() -> None:
    s: Session[str] = Session()
    up = s.receive(from_server(actr_up_event={"actor_id": PEER}))
    down = s.receive(from_server(actr_down_event={"actor_id": PEER}))
    assert up == PresenceChanged(True, PEER)
    assert down == PresenceChanged(False, PEER)


def test_an_answer_without_a_waiter_is_ignored() -> None:
    s: Session[str] = Session()
    assert s.receive(from_server("", pong={"seq": 1})) is None
    assert s.receive(from_server("never-sent", pong={"seq": 1})) is None


def test_frames_that_cannot_be_used_are_dropped_with_a_reason() -> None:
    s: Session[str] = Session()
    assert s.receive(b"\xff\xff\xff") == Dropped("undecodable_frame", "size=3")
    # Parses, but a required field (envelope_id) is missing.
    partial = SignalingEnvelope(envelope_version=2).SerializePartialToString()
    event = s.receive(partial)
    assert isinstance(event, Dropped) and event.reason == "incomplete_frame"
    # A flow meant for the server.
    env = SignalingEnvelope(envelope_version=2, envelope_id="x")
    env.actr_to_server.CopyFrom(ActrToSignaling(source=ME, credential=REG.credential))
    env.actr_to_server.ping.CopyFrom(Ping())
    assert s.receive(env.SerializeToString()) == Dropped("unexpected_flow", "flow=actr_to_server")
    assert len(s) == 0


def test_a_refusal_is_an_unavailable_only_when_the_server_says_so() -> None:
    s: Session[str] = Session()
    rid = ping_request(s, "w")
    event = s.receive(from_server(rid, error=ErrorResponse(code=10001, message="later")))
    assert isinstance(event, Failed) and isinstance(event.error, Unavailable)
