"""signaling/events.py: the events nodes exchange and the stored record, round trip
(SIG-10)."""

from __future__ import annotations

import pytest
from units_kit import T0, _actor, _setup

from signaling.events import (
    Backlog,
    Contact,
    EventDecodeError,
    Granted,
    Offline,
    Online,
    Subscription,
    decode_event,
    encode_event,
    record_fields,
    record_from_fields,
)
from signaling.registry import TokenStanding


def test_sig10_events_and_stored_record_round_trip() -> None:
    registry, authority, _, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    record.grant(record.credential, record.credential_expires_at, b"token2", spent=b"other")
    record.grant(record.credential, record.credential_expires_at, b"token", spent=b"token2")
    record.subscriptions.add(("acme", "x", "1"))
    for event in (
        Granted(record.key),
        Online(record.key, "n1", 3),
        Offline(record.key, "n1", grace=True, generation=3),
        Backlog(record.key, 2.5),
        Subscription(record.key, ("acme", "x", "1"), on=True),
        Contact(record.key, "2@1/acme:x:1", T0 + 60),
        Online(record.key, "n1", 4, answer_only=True),
    ):
        assert decode_event(encode_event(event, "n9")) == ("n9", event)
    with pytest.raises(EventDecodeError):
        decode_event(b'{"t":"nope","k":"x","from":"n"}')
    with pytest.raises(EventDecodeError):
        decode_event(b"\xff")
    fields = {k.encode(): v for k, v in record_fields(record).items()}
    back = record_from_fields(fields)
    assert back.actr_id == record.actr_id and back.key == record.key
    assert back.credential == record.credential
    assert back.credential_expires_at == record.credential_expires_at
    assert back.token_standing(b"token") is TokenStanding.VALID
    assert back.spent_hashes == record.spent_hashes
    assert back.subscriptions == {("acme", "x", "1")}
    with pytest.raises(ValueError):
        record_from_fields({b"id": b"\xff\xff"})
