"""The signaling client's parts that need no server: the identity file (AIS-3 across
restarts), when to renew, the reconnect backoff, server urls, the register request."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from actr.identity import parse_id, parse_type
from actr.identity_file import IdentityFile
from actr.protocol.actr_pb2 import (
    Acl,
    AIdCredential,
    IdentityClaims,
    RegisterAuthMode,
    RegisterOk,
    ServiceSpec,
)
from actr.signaling_registration import (
    credential_expires_at,
    register_request,
    renew_delay,
)
from actr.signaling_socket import backoff_delay, http_base

ME = parse_id("5@1/acme:echo:1.0")


def registration(token: bytes = b"tok", expires_at: int = 1000) -> RegisterOk:
    claims = IdentityClaims(realm_id=1, actor_id="5@1/acme:echo:1.0", expires_at=expires_at)
    return RegisterOk(
        actr_id=ME,
        credential=AIdCredential(key_id=1, claims=claims.SerializeToString(), signature=b"s"),
        renewal_token=token,
    )


def test_ais3_identity_file_is_owner_only_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "data" / "identity.pb"
    f = IdentityFile(path)
    assert f.load(realm=1) is None  # nothing saved yet
    f.save(registration())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_suffix(".tmp").exists()
    loaded = f.load(realm=1)
    assert loaded is not None and loaded.actr_id == ME and loaded.renewal_token == b"tok"


def test_ais3_identity_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "identity.pb"
    f = IdentityFile(path)
    f.save(registration(b"old"))
    f.save(registration(b"new"))
    loaded = f.load(realm=1)
    assert loaded is not None and loaded.renewal_token == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identity.pb"]


def test_ais3_identity_file_of_another_realm_or_without_token_is_not_used(
    tmp_path: Path,
) -> None:
    f = IdentityFile(tmp_path / "identity.pb")
    f.save(registration())
    assert f.load(realm=2) is None
    f.save(registration(token=b""))
    assert f.load(realm=1) is None


def test_ais3_unreadable_identity_file_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "identity.pb"
    path.write_bytes(b"\xff\xff\xff not a RegisterOk")
    assert IdentityFile(path).load(realm=1) is None
    assert "identity_state_unreadable" in caplog.text


def test_ais3_renewal_at_two_thirds_of_the_remaining_life() -> None:
    assert renew_delay(expires_at=1300.0, now=1000.0) == pytest.approx(200.0)
    assert renew_delay(expires_at=1003.0, now=1000.0) == pytest.approx(2.0)
    # Expired or about to: retried soon, but never in a busy loop.
    assert renew_delay(expires_at=1000.5, now=1000.0) == 1.0
    assert renew_delay(expires_at=900.0, now=1000.0) == 1.0
    assert credential_expires_at(registration(expires_at=1234)) == 1234.0


def test_sig8_backoff_is_full_jitter_under_a_growing_cap() -> None:
    spans: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        spans.append((low, high))
        return high

    delays = [backoff_delay(n, uniform=record) for n in range(8)]
    assert spans[0] == (0, 0.2) and spans[3] == (0, 1.6)
    assert delays[-1] == 10.0  # capped
    assert all(low == 0 for low, _ in spans)
    assert all(0 <= backoff_delay(n) <= 10.0 for n in range(50))


def test_server_urls_are_http_bases() -> None:
    assert http_base("ws://h:1/") == "http://h:1"
    assert http_base("wss://h") == "https://h"
    assert http_base("https://h:8081") == "https://h:8081"
    with pytest.raises(ValueError, match="http"):
        http_base("h:8081")


def test_register_request_carries_what_is_given() -> None:
    t = parse_type("acme:echo:1.0")
    bare = register_request(t, 3, None, "", None)
    assert bare.realm.realm_id == 3 and bare.actr_type == t
    assert bare.auth_mode == RegisterAuthMode.REGISTER_AUTH_MODE_LINKED
    assert not bare.HasField("acl") and not bare.HasField("service_spec") and not bare.service
    spec = ServiceSpec(name="echo.v1", fingerprint="f")
    full = register_request(t, 3, Acl(), "echo", spec)
    assert full.HasField("acl") and full.service == "echo" and full.service_spec == spec
