"""signaling/registry.py: serials never reused (ID-2), renewal tokens (AIS-3) and their
chain with reuse detection (F8)."""

from __future__ import annotations

from units_kit import T0, _actor, _setup

from actr.identity import parse_type
from signaling.registry import Registry, TokenStanding


def test_id2_serials_never_reused_after_forget() -> None:
    registry = Registry()
    first = registry.register(parse_type("a:b:1"), 1, None, "", T0)
    registry.forget(first.key)
    second = registry.register(parse_type("a:b:1"), 1, None, "", T0)
    assert second.actr_id.serial_number == first.actr_id.serial_number + 1


def test_ais3_previous_renewal_token_valid_once_more() -> None:
    registry, authority, _, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")  # token b"token"
    record.grant(record.credential, record.credential_expires_at, b"second", spent=b"token")
    assert record.token_standing(b"token") is TokenStanding.VALID
    assert record.token_standing(b"second") is TokenStanding.VALID
    record.grant(record.credential, record.credential_expires_at, b"third", spent=b"second")
    assert record.token_standing(b"token") is TokenStanding.REUSED
    assert record.token_standing(b"second") is TokenStanding.VALID
    assert record.token_standing(b"third") is TokenStanding.VALID
    assert record.token_standing(b"never issued") is TokenStanding.UNKNOWN


def test_f8_grace_token_renews_once_and_spends_the_unused_successor() -> None:
    registry, authority, _, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    record.grant(record.credential, record.credential_expires_at, b"t2", spent=b"token")
    # A crash before t2 was saved: the daemon renews with the token before it ...
    record.grant(record.credential, record.credential_expires_at, b"t3", spent=b"token")
    assert record.token_standing(b"t3") is TokenStanding.VALID
    # ... after which neither t2 (never used) nor the token itself renews again.
    assert record.token_standing(b"t2") is TokenStanding.REUSED
    assert record.token_standing(b"token") is TokenStanding.REUSED


def test_f8_revoked_chain_renews_nothing_and_revokes_its_credentials() -> None:
    registry, authority, _, _ = _setup()
    record = _actor(registry, authority, "acme:echo:1.0")
    record.grant(record.credential, record.credential_expires_at, b"t2", spent=b"token")
    assert not record.chain_revoked
    record.revoke_chain()
    assert record.chain_revoked
    assert record.token_standing(b"t2") is TokenStanding.REUSED
    assert record.revoked_through == record.credential_expires_at
