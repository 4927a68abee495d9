"""Helpers for the signaling server tests: register over HTTP, open sockets, exchange envelopes.

Everything talks to a real server on a loopback port; waits are bounded by
``TIMEOUT`` rather than sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass

import aiohttp

from actr.identity import id_text, parse_type
from actr.protocol.actr_pb2 import (
    Acl,
    AclRule,
    ActrId,
    AIdCredential,
    Realm,
    RegisterOk,
    RegisterRequest,
    RegisterResponse,
    RenewCredentialRequest,
    ServiceSpec,
)
from actr.protocol.signaling_pb2 import ActrRelay, ActrToSignaling, SignalingEnvelope
from actr.protocol.webrtc_pb2 import IceCandidate
from actr.wire import REALM_SECRET_HEADER

TIMEOUT = 5.0
REALMS = {1: "secret-one", 2: "secret-two"}


@dataclass
class Actor:
    ok: RegisterOk
    ws: aiohttp.ClientWebSocketResponse

    @property
    def id(self) -> ActrId:
        return self.ok.actr_id

    @property
    def key(self) -> str:
        return id_text(self.ok.actr_id)


def rule(permission: int, from_type: str, realm_id: int | None = None) -> AclRule:
    r = AclRule(permission=permission, from_type=parse_type(from_type))  # type: ignore[arg-type]
    if realm_id is None:
        r.any_realm = True
    else:
        r.realm_id = realm_id
    return r


def acl(*rules: AclRule) -> Acl:
    return Acl(rules=list(rules))


async def post_register(
    http: aiohttp.ClientSession,
    base: str,
    actr_type: str,
    realm: int = 1,
    secret: str | None = None,
    acl_: Acl | None = None,
    spec: ServiceSpec | None = None,
) -> tuple[int, RegisterResponse]:
    req = RegisterRequest(actr_type=parse_type(actr_type), realm=Realm(realm_id=realm))
    if acl_ is not None:
        req.acl.CopyFrom(acl_)
    if spec is not None:
        req.service_spec.CopyFrom(spec)
    headers = {"content-type": "application/x-protobuf"}
    if secret is None:
        secret = REALMS.get(realm, "")
    if secret:
        headers[REALM_SECRET_HEADER] = secret
    async with http.post(
        base + "/ais/register", data=req.SerializeToString(), headers=headers
    ) as r:
        body = await r.read()
        assert r.content_type == "application/x-protobuf"
        answer = RegisterResponse()
        answer.ParseFromString(body)
        return r.status, answer


async def register(
    http: aiohttp.ClientSession,
    base: str,
    actr_type: str,
    realm: int = 1,
    acl_: Acl | None = None,
    spec: ServiceSpec | None = None,
) -> RegisterOk:
    status, answer = await post_register(http, base, actr_type, realm=realm, acl_=acl_, spec=spec)
    assert status == 200, answer
    assert answer.WhichOneof("result") == "success"
    return answer.success


async def renew(
    http: aiohttp.ClientSession, base: str, actr_id: ActrId, token: bytes
) -> tuple[int, RegisterResponse]:
    req = RenewCredentialRequest(actr_id=actr_id, renewal_token=token)
    async with http.post(
        base + "/ais/renew",
        data=req.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    ) as r:
        answer = RegisterResponse()
        answer.ParseFromString(await r.read())
        return r.status, answer


def ws_params(actor_id: str, cred: AIdCredential, *, urlsafe: bool = True) -> dict[str, str]:
    enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return {
        "actor_id": actor_id,
        "key_id": str(cred.key_id),
        "claims": enc(cred.claims).decode(),
        "signature": enc(cred.signature).decode(),
    }


async def open_socket(
    http: aiohttp.ClientSession,
    base: str,
    actor_id: str,
    cred: AIdCredential,
    webrtc_role: str | None = None,
) -> aiohttp.ClientWebSocketResponse:
    params = ws_params(actor_id, cred)
    if webrtc_role is not None:
        params["webrtc_role"] = webrtc_role
    return await http.ws_connect(base + "/signaling/ws", params=params, max_msg_size=0)


async def join(
    http: aiohttp.ClientSession,
    base: str,
    actr_type: str,
    realm: int = 1,
    acl_: Acl | None = None,
    webrtc_role: str | None = None,
    spec: ServiceSpec | None = None,
) -> Actor:
    ok = await register(http, base, actr_type, realm=realm, acl_=acl_, spec=spec)
    ws = await open_socket(http, base, id_text(ok.actr_id), ok.credential, webrtc_role)
    return Actor(ok, ws)


def envelope() -> SignalingEnvelope:
    return SignalingEnvelope(envelope_version=2, envelope_id=uuid.uuid4().hex)


def to_server(actor: Actor, body: ActrToSignaling) -> SignalingEnvelope:
    env = envelope()
    env.actr_to_server.CopyFrom(body)
    env.actr_to_server.source.CopyFrom(actor.id)
    env.actr_to_server.credential.CopyFrom(actor.ok.credential)
    return env


def relay(
    source: Actor, target: ActrId, candidate: str = "candidate:1 1 udp 1 1.2.3.4 5 typ host"
) -> SignalingEnvelope:
    env = envelope()
    r = ActrRelay(source=source.id, credential=source.ok.credential, target=target)
    r.ice_candidate.CopyFrom(IceCandidate(candidate=candidate, sdp_mid="0"))
    env.actr_relay.CopyFrom(r)
    return env


async def receive_msg(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    return await asyncio.wait_for(ws.receive(), TIMEOUT)


async def receive_bytes(ws: aiohttp.ClientWebSocketResponse) -> bytes:
    msg = await receive_msg(ws)
    assert msg.type is aiohttp.WSMsgType.BINARY, (msg.type, msg.data)
    assert isinstance(msg.data, bytes)
    return msg.data


async def receive_env(ws: aiohttp.ClientWebSocketResponse) -> SignalingEnvelope:
    env = SignalingEnvelope()
    env.ParseFromString(await receive_bytes(ws))
    return env


async def send(ws: aiohttp.ClientWebSocketResponse, env: SignalingEnvelope) -> None:
    await ws.send_bytes(env.SerializeToString())


async def ask(actor: Actor, body: ActrToSignaling) -> SignalingEnvelope:
    """Send an actr_to_server request and return the answer (checks reply_for)."""
    env = to_server(actor, body)
    await send(actor.ws, env)
    answer = await receive_env(actor.ws)
    assert answer.reply_for == env.envelope_id
    return answer


async def wait_closed(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the server closes the socket; the close code it sent."""
    while True:
        msg = await receive_msg(ws)
        if msg.type is aiohttp.WSMsgType.CLOSE:
            # The code in the server's close frame; ws.close_code may say 1006 when the
            # server dropped the TCP connection before our close reply went out.
            assert isinstance(msg.data, int)
            return msg.data
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return ws.close_code
        if msg.type is aiohttp.WSMsgType.ERROR:
            return ws.close_code


class Clock:
    """A wall clock the test moves: the server's sweeper and credentials read it."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs


async def no_frame_before_pong(actor: Actor) -> None:
    """Nothing was queued for ``actor``: the next frame it gets is the answer to a ping."""
    from actr.protocol.signaling_pb2 import Ping

    answer = await ask(actor, ActrToSignaling(ping=Ping()))
    assert answer.server_to_actr.HasField("pong"), answer
