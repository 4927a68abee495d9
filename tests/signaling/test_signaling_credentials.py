"""signaling/credentials.py: issuing and verifying credentials with time passed in, and the
signing key file (AIS-2)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from units_kit import T0, _authority

from actr.identity import parse_type
from actr.protocol.actr_pb2 import AIdCredential
from signaling.config import (
    ConfigError,
)
from signaling.credentials import CredentialError
from signaling.registry import Registry
from signaling.signing_key import load_or_create_key


def test_ais2_issue_and_verify_with_time_passed_in() -> None:
    authority = _authority(lifetime=60)
    registry = Registry()
    record = registry.register(parse_type("acme:echo:1.0"), 1, None, "", T0)
    cred = authority.issue(record.actr_id, T0)
    claims = authority.verify(cred, T0 + 59)
    assert (claims.actor_id, claims.realm_id, claims.expires_at) == (record.key, 1, int(T0) + 60)
    with pytest.raises(CredentialError) as info:
        authority.verify(cred, T0 + 60)
    assert info.value.reason == "expired"
    other = _authority()
    with pytest.raises(CredentialError) as info:
        other.verify(AIdCredential(key_id=3, claims=cred.claims, signature=cred.signature), T0)
    assert info.value.reason == "bad_signature"
    with pytest.raises(CredentialError) as info:
        authority.verify(AIdCredential(key_id=4, claims=cred.claims, signature=cred.signature), T0)
    assert info.value.reason == "unknown_key"


def test_ais2_key_file_created_0600_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "signing.key"
    key = load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create_key(path)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert again.public_key().public_bytes(*raw) == key.public_key().public_bytes(*raw)


def test_ais2_raw_key_file_loads(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "raw.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)  # F14: a key file group or others may read is refused
    loaded = load_or_create_key(path)
    assert loaded.sign(b"x") == key.sign(b"x")  # Ed25519 signatures are deterministic


def test_ais2_bad_key_file_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(b"not a key")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="raw 32-byte Ed25519 key or a PEM"):
        load_or_create_key(path)
