"""Opening the signaling socket (PROTOCOL.md SIG-1) and one socket per actor."""

from __future__ import annotations

import time

import aiohttp
import pytest
from signaling_kit import Actor, ask, open_socket, register, wait_closed, ws_params

from actr.identity import id_text
from actr.protocol.actr_pb2 import AIdCredential, IdentityClaims
from actr.protocol.signaling_pb2 import ActrToSignaling, Ping
from signaling.runner import RunningServer


async def _refused(http: aiohttp.ClientSession, base: str, params: dict[str, str]) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(base + "/signaling/ws", params=params)
    return info.value.status


async def test_sig1_valid_credential_upgrades(http: aiohttp.ClientSession, base: str) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    ws = await open_socket(http, base, id_text(ok.actr_id), ok.credential)
    answer = await ask(Actor(ok, ws), ActrToSignaling(ping=Ping()))
    assert answer.server_to_actr.HasField("pong")
    await ws.close()


async def test_sig1_standard_base64_without_padding_accepted(
    http: aiohttp.ClientSession, base: str
) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    params = ws_params(id_text(ok.actr_id), ok.credential, urlsafe=False)
    params["claims"] = params["claims"].rstrip("=")
    params["signature"] = params["signature"].rstrip("=")
    ws = await http.ws_connect(base + "/signaling/ws", params=params)
    await ws.close()


async def test_sig1_forged_signature_is_401(http: aiohttp.ClientSession, base: str) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    forged = AIdCredential()
    forged.CopyFrom(ok.credential)
    forged.signature = bytes([forged.signature[0] ^ 1]) + forged.signature[1:]
    assert await _refused(http, base, ws_params(id_text(ok.actr_id), forged)) == 401


async def test_sig1_tampered_claims_is_401(http: aiohttp.ClientSession, base: str) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    claims = IdentityClaims()
    claims.ParseFromString(ok.credential.claims)
    claims.expires_at += 100_000
    forged = AIdCredential()
    forged.CopyFrom(ok.credential)
    forged.claims = claims.SerializeToString()
    assert await _refused(http, base, ws_params(id_text(ok.actr_id), forged)) == 401


async def test_sig1_expired_credential_is_401(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    # Signed by the real key, but issued two hours ago with a one-hour lifetime.
    expired = server.state.authority.issue(ok.actr_id, now=time.time() - 7200)
    assert await _refused(http, base, ws_params(id_text(ok.actr_id), expired)) == 401
    assert server.state.stats.rejects["ws_expired"] == 1


async def test_sig1_credential_of_another_actor_is_401(
    http: aiohttp.ClientSession, base: str
) -> None:
    mine = await register(http, base, "acme:echo:1.0")
    theirs = await register(http, base, "acme:echo:1.0")
    params = ws_params(id_text(mine.actr_id), theirs.credential)
    assert await _refused(http, base, params) == 401


async def test_sig1_unknown_key_id_is_401(http: aiohttp.ClientSession, base: str) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    params = ws_params(id_text(ok.actr_id), ok.credential)
    params["key_id"] = str(ok.credential.key_id + 1)
    assert await _refused(http, base, params) == 401


async def test_sig1_missing_or_garbled_params_are_401(
    http: aiohttp.ClientSession, base: str
) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    assert await _refused(http, base, {}) == 401
    params = ws_params(id_text(ok.actr_id), ok.credential)
    params["claims"] = "!!!not base64!!!"
    assert await _refused(http, base, params) == 401
    params = ws_params(id_text(ok.actr_id), ok.credential)
    params["key_id"] = "one"
    assert await _refused(http, base, params) == 401


async def test_sig1_unregistered_actor_is_401(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    """A credential this server signed, for an id it never registered."""
    ok = await register(http, base, "acme:echo:1.0")
    ghost = type(ok.actr_id)()
    ghost.CopyFrom(ok.actr_id)
    ghost.serial_number = 4242
    cred = server.state.authority.issue(ghost, now=time.time())
    assert await _refused(http, base, ws_params(id_text(ghost), cred)) == 401


async def test_sig1_new_socket_replaces_old(
    http: aiohttp.ClientSession, base: str, server: RunningServer
) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    first = await open_socket(http, base, id_text(ok.actr_id), ok.credential)
    second = await open_socket(http, base, id_text(ok.actr_id), ok.credential)
    assert await wait_closed(first) == 1000
    # The new socket still serves, and the actor stayed live throughout.
    answer = await ask(Actor(ok, second), ActrToSignaling(ping=Ping()))
    assert answer.server_to_actr.HasField("pong")
    record = server.state.registry.get(id_text(ok.actr_id))
    assert record is not None and record.live
    await second.close()
