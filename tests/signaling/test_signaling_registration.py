"""Registration and credentials over HTTP (PROTOCOL.md AIS-1 .. AIS-3)."""

from __future__ import annotations

import time

import aiohttp
import pytest
from conftest import MakeServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from signaling_kit import (
    REALMS,
    Clock,
    acl,
    open_socket,
    post_register,
    register,
    renew,
    rule,
)

from actr.errors import ErrorCode
from actr.identity import id_text
from actr.protocol.actr_pb2 import (
    ActrId,
    IdentityClaims,
    RegisterRequest,
    RegisterResponse,
    SigningPubkey,
)
from signaling.registration import REALM_SECRET_HEADER
from signaling.runner import RunningServer
from signaling.serials import clock_floor

PROTOBUF = {"content-type": "application/x-protobuf"}


async def test_ais1_register_success_and_credential_verifies(
    http: aiohttp.ClientSession, base: str
) -> None:
    before = int(time.time())
    status, answer = await post_register(http, base, "acme:echo:1.0", realm=1)
    assert status == 200
    ok = answer.success
    assert ok.actr_id.realm.realm_id == 1
    assert ok.actr_id.serial_number >= 1
    assert (ok.actr_id.type.manufacturer, ok.actr_id.type.name, ok.actr_id.type.version) == (
        "acme",
        "echo",
        "1.0",
    )
    assert ok.signaling_heartbeat_interval_secs == 10
    assert len(ok.renewal_token) == 32
    assert len(ok.signing_pubkey) == 32
    assert ok.credential.key_id == ok.signing_key_id
    # AIS-2: Ed25519 over the claims bytes, claims name this actor, one hour.
    assert len(ok.credential.signature) == 64
    Ed25519PublicKey.from_public_bytes(ok.signing_pubkey).verify(
        ok.credential.signature, ok.credential.claims
    )
    claims = IdentityClaims()
    claims.ParseFromString(ok.credential.claims)
    assert claims.actor_id == id_text(ok.actr_id)
    assert claims.realm_id == 1
    assert before + 3600 <= claims.expires_at <= int(time.time()) + 3600


async def test_ais2_signing_pubkey_matches_registration(
    http: aiohttp.ClientSession, base: str
) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    async with http.get(base + "/ais/signing-pubkey") as r:
        assert r.status == 200
        assert r.content_type == "application/x-protobuf"
        key = SigningPubkey()
        key.ParseFromString(await r.read())
    assert key.key_id == ok.signing_key_id
    assert key.public_key == ok.signing_pubkey


async def test_id2_serials_unique_per_realm_and_never_reused(
    http: aiohttp.ClientSession, base: str
) -> None:
    a = await register(http, base, "acme:echo:1.0", realm=1)
    b = await register(http, base, "acme:other:2.0", realm=1)
    c = await register(http, base, "acme:echo:1.0", realm=2)
    assert a.actr_id.serial_number != b.actr_id.serial_number
    assert c.actr_id.realm.realm_id == 2
    # F1: each boot counts up from the clock's floor, above any earlier boot's serials.
    assert b.actr_id.serial_number == a.actr_id.serial_number + 1
    assert a.actr_id.serial_number >= clock_floor(time.time() - 60)
    assert c.actr_id.serial_number == a.actr_id.serial_number  # each realm counts on its own


async def test_ais1_bad_realm_secret_is_401(http: aiohttp.ClientSession, base: str) -> None:
    status, answer = await post_register(http, base, "acme:echo:1.0", realm=1, secret="wrong")
    assert status == 401
    assert answer.WhichOneof("result") == "error"
    assert answer.error.code == ErrorCode.UNAUTHENTICATED


async def test_ais1_secret_of_another_realm_is_401(http: aiohttp.ClientSession, base: str) -> None:
    status, answer = await post_register(http, base, "acme:echo:1.0", realm=1, secret=REALMS[2])
    assert status == 401
    assert answer.error.code == ErrorCode.UNAUTHENTICATED


async def test_ais1_unknown_realm_is_401(http: aiohttp.ClientSession, base: str) -> None:
    status, answer = await post_register(http, base, "acme:echo:1.0", realm=99, secret="x")
    assert status == 401
    assert answer.error.code == ErrorCode.UNAUTHENTICATED


async def test_ais1_missing_secret_is_401(http: aiohttp.ClientSession, base: str) -> None:
    status, answer = await post_register(http, base, "acme:echo:1.0", realm=1, secret="")
    assert status == 401
    assert answer.error.code == ErrorCode.UNAUTHENTICATED


async def test_ais1_malformed_body_is_400(http: aiohttp.ClientSession, base: str) -> None:
    headers = {**PROTOBUF, REALM_SECRET_HEADER: REALMS[1]}
    async with http.post(
        base + "/ais/register", data=b"\xff\xff\xffnot protobuf", headers=headers
    ) as r:
        assert r.status == 400
        answer = RegisterResponse()
        answer.ParseFromString(await r.read())
    assert answer.error.code == ErrorCode.DECODE_FAILURE


async def test_ais1_missing_required_fields_is_400(http: aiohttp.ClientSession, base: str) -> None:
    # Decodes as bytes, but proto2 `required` actr_type and realm are absent.
    headers = {**PROTOBUF, REALM_SECRET_HEADER: REALMS[1]}
    body = RegisterRequest(service="x").SerializePartialToString()
    async with http.post(base + "/ais/register", data=body, headers=headers) as r:
        assert r.status == 400
        answer = RegisterResponse()
        answer.ParseFromString(await r.read())
    assert answer.error.code == ErrorCode.DECODE_FAILURE


async def test_ais1_invalid_type_text_is_400(http: aiohttp.ClientSession, base: str) -> None:
    headers = {**PROTOBUF, REALM_SECRET_HEADER: REALMS[1]}
    req = RegisterRequest()
    req.actr_type.manufacturer, req.actr_type.name, req.actr_type.version = "a c", "b", "1"
    req.realm.realm_id = 1
    async with http.post(
        base + "/ais/register", data=req.SerializeToString(), headers=headers
    ) as r:
        assert r.status == 400
        answer = RegisterResponse()
        answer.ParseFromString(await r.read())
    assert answer.error.code == ErrorCode.INVALID_ARGUMENT


async def test_ais1_body_over_limit_is_413(http: aiohttp.ClientSession, base: str) -> None:
    headers = {**PROTOBUF, REALM_SECRET_HEADER: REALMS[1]}
    async with http.post(base + "/ais/register", data=b"\x00" * (65 * 1024), headers=headers) as r:
        assert r.status == 413


async def test_ais1_acl_is_stored(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    ok = await register(
        http, base, "acme:echo:1.0", acl_=acl(rule(1, "acme:client:1.0", realm_id=2))
    )
    record = server.state.registry.get(id_text(ok.actr_id))
    assert record is not None and record.acl is not None
    assert record.acl.rules[0].realm_id == 2
    plain = await register(http, base, "acme:echo:1.0")
    plain_record = server.state.registry.get(id_text(plain.actr_id))
    assert plain_record is not None and plain_record.acl is None


async def test_ais3_renew_gives_fresh_credential_for_same_id(
    http: aiohttp.ClientSession, base: str
) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    status, answer = await renew(http, base, ok.actr_id, ok.renewal_token)
    assert status == 200
    renewed = answer.success
    assert renewed.actr_id == ok.actr_id
    assert renewed.renewal_token != ok.renewal_token
    Ed25519PublicKey.from_public_bytes(renewed.signing_pubkey).verify(
        renewed.credential.signature, renewed.credential.claims
    )
    claims = IdentityClaims()
    claims.ParseFromString(renewed.credential.claims)
    assert claims.actor_id == id_text(ok.actr_id)
    # The token before the newest still renews once (a daemon that crashed before
    # saving the answer); after that it no longer does (and its reuse revokes the chain, F8).
    status, _ = await renew(http, base, ok.actr_id, ok.renewal_token)
    assert status == 200
    status, third = await renew(http, base, ok.actr_id, ok.renewal_token)
    assert status == 401
    assert third.error.code == ErrorCode.UNAUTHENTICATED


async def test_ais3_renewal_before_expiry_and_refusal_of_an_expired_credential(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    clock = Clock()
    server = await make_server(clock=clock, credential_lifetime_secs=60)
    base = server.url
    ok = await register(http, base, "acme:echo:1.0")
    clock.advance(40)  # two thirds of the life, as the runtime does
    status, answer = await renew(http, base, ok.actr_id, ok.renewal_token)
    assert status == 200
    claims = IdentityClaims()
    claims.ParseFromString(answer.success.credential.claims)
    assert claims.expires_at == int(clock.now) + 60
    # The renewed credential opens a socket after the first one expired ...
    clock.advance(30)
    ws = await open_socket(http, base, id_text(ok.actr_id), answer.success.credential)
    assert not ws.closed
    await ws.close()
    # ... the expired one does not (SIG-1) ...
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await open_socket(http, base, id_text(ok.actr_id), ok.credential)
    assert info.value.status == 401
    # ... and once the newest expired too, renewal is refused: register again.
    clock.advance(31)
    status, late = await renew(http, base, ok.actr_id, answer.success.renewal_token)
    assert status == 401
    assert late.error.code == ErrorCode.UNAUTHENTICATED
    assert "expired" in late.error.message
    assert server.state.stats.rejects["renew_credential_expired"] == 1


async def test_ais3_renew_with_wrong_token_is_401(http: aiohttp.ClientSession, base: str) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    status, answer = await renew(http, base, ok.actr_id, b"\x00" * 32)
    assert status == 401
    assert answer.error.code == ErrorCode.UNAUTHENTICATED


async def test_ais3_renew_for_unknown_actor_is_401(http: aiohttp.ClientSession, base: str) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    other = ActrId()
    other.CopyFrom(ok.actr_id)
    other.serial_number += 1000
    status, answer = await renew(http, base, other, ok.renewal_token)
    assert status == 401
    assert answer.error.code == ErrorCode.UNAUTHENTICATED


async def test_sig11_healthz_and_stats(http: aiohttp.ClientSession, base: str) -> None:
    async with http.get(base + "/healthz") as r:
        assert r.status == 200
        assert await r.text() == "ok"
    await post_register(http, base, "acme:echo:1.0", secret="wrong")
    await register(http, base, "acme:echo:1.0")
    async with http.get(base + "/stats") as r:
        stats = await r.json()
    assert stats["registered_actors"] == 1
    assert stats["connections"] == 0
    assert stats["rejects"]["register_bad_realm_secret"] == 1
