"""The runtime's side of the signaling server: register (HTTP), the socket, heartbeat,
route candidates and relay of SDP/ICE (PROTOCOL.md 4.1, 4.2).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import aiohttp

from actr.errors import ActrError, Internal, Unauthenticated, Unavailable
from actr.identity import id_text
from actr.protocol.actr_pb2 import (
    Acl,
    ActrId,
    ActrType,
    ErrorResponse,
    Realm,
    RegisterOk,
    RegisterRequest,
    RegisterResponse,
)
from actr.protocol.signaling_pb2 import (
    ActrRelay,
    ActrToSignaling,
    Ping,
    RouteCandidatesRequest,
    SignalingEnvelope,
    SignalingToActr,
    UnregisterRequest,
)

log = logging.getLogger(__name__)

ENVELOPE_VERSION = 2
REALM_SECRET_HEADER = "x-actrix-realm-secret"
MAX_FRAME = 1024 * 1024

RelayHandler = Callable[[ActrRelay], Awaitable[None]]
RelayErrorHandler = Callable[[str, ActrError], None]


def http_base(url: str) -> str:
    """Accepts http(s):// or ws(s):// for the server and returns the http(s) base."""
    url = url.rstrip("/")
    if url.startswith("ws://"):
        return "http://" + url[5:]
    if url.startswith("wss://"):
        return "https://" + url[6:]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"signaling url must start with http(s):// or ws(s)://, got {url!r}")
    return url


def _new_envelope() -> SignalingEnvelope:
    return SignalingEnvelope(envelope_version=ENVELOPE_VERSION, envelope_id=uuid.uuid4().hex)


class SignalingClient:
    def __init__(
        self,
        url: str,
        *,
        realm: int,
        realm_secret: str,
        actr_type: ActrType,
        acl: Acl | None = None,
        service: str = "",
        request_timeout: float = 10.0,
    ) -> None:
        self.base = http_base(url)
        self.realm = realm
        self.realm_secret = realm_secret
        self.actr_type = actr_type
        self.acl = acl
        self.service = service
        self.request_timeout = request_timeout
        self.registration: RegisterOk | None = None
        self.on_relay: RelayHandler | None = None
        self.on_relay_error: RelayErrorHandler | None = None
        self.mailbox_backlog: Callable[[], float] = lambda: 0.0
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._waiters: dict[str, asyncio.Future[SignalingToActr]] = {}
        self._relay_targets: OrderedDict[str, str] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def actr_id(self) -> ActrId:
        if self.registration is None:
            raise RuntimeError("not registered")
        return self.registration.actr_id

    async def start(self) -> RegisterOk:
        self._session = aiohttp.ClientSession()
        reg = await self.register()
        await self._open_socket()
        interval = max(1, reg.signaling_heartbeat_interval_secs or 10)
        self._tasks.append(asyncio.create_task(self._heartbeat(interval)))
        return reg

    async def register(self) -> RegisterOk:
        assert self._session is not None
        req = RegisterRequest(actr_type=self.actr_type, realm=Realm(realm_id=self.realm))
        if self.acl is not None:
            req.acl.CopyFrom(self.acl)
        if self.service:
            req.service = self.service
        try:
            async with self._session.post(
                self.base + "/ais/register",
                data=req.SerializeToString(),
                headers={
                    REALM_SECRET_HEADER: self.realm_secret,
                    "content-type": "application/x-protobuf",
                },
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
            ) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as e:
            raise Unavailable(f"signaling server {self.base} unreachable: {e}") from e
        answer = RegisterResponse()
        try:
            answer.ParseFromString(body)
        except Exception as e:
            raise Internal(f"registration answered HTTP {status} with an undecodable body") from e
        if answer.WhichOneof("result") == "error":
            raise ActrError.from_proto(answer.error)
        if status != 200 or not answer.HasField("success"):
            raise Internal(f"registration answered HTTP {status} without a result")
        self.registration = answer.success
        log.info("registered actor=%s", id_text(answer.success.actr_id))
        return answer.success

    async def _open_socket(self) -> None:
        assert self._session is not None and self.registration is not None
        cred = self.registration.credential
        params = {
            "actor_id": id_text(self.registration.actr_id),
            "key_id": str(cred.key_id),
            "claims": base64.urlsafe_b64encode(cred.claims).decode(),
            "signature": base64.urlsafe_b64encode(cred.signature).decode(),
        }
        try:
            self._ws = await self._session.ws_connect(
                self.base + "/signaling/ws",
                params=params,
                max_msg_size=MAX_FRAME,
                heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            )
        except aiohttp.WSServerHandshakeError as e:
            if e.status == 401:
                raise Unauthenticated(f"signaling socket refused: {e.message}") from e
            raise Unavailable(f"signaling socket refused: HTTP {e.status}") from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise Unavailable(f"signaling socket to {self.base} failed: {e}") from e
        self._tasks.append(asyncio.create_task(self._read_loop(self._ws)))

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None and not self._ws.closed and self.registration is not None:
            with contextlib.suppress(ActrError, TimeoutError):
                await asyncio.wait_for(
                    self._request(ActrToSignaling(unregister_request=UnregisterRequest())), 2.0
                )
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(Unavailable("signaling client closed"))

    def _stamp(self, msg: ActrToSignaling | ActrRelay) -> None:
        assert self.registration is not None
        msg.source.CopyFrom(self.registration.actr_id)
        msg.credential.CopyFrom(self.registration.credential)

    async def _send(self, env: SignalingEnvelope) -> None:
        if self._ws is None or self._ws.closed:
            raise Unavailable("signaling socket is not connected")
        await self._ws.send_bytes(env.SerializeToString())

    async def _request(self, body: ActrToSignaling) -> SignalingToActr:
        self._stamp(body)
        env = _new_envelope()
        env.actr_to_server.CopyFrom(body)
        fut: asyncio.Future[SignalingToActr] = asyncio.get_running_loop().create_future()
        self._waiters[env.envelope_id] = fut
        try:
            await self._send(env)
            answer = await asyncio.wait_for(fut, self.request_timeout)
        except TimeoutError as e:
            raise Unavailable("signaling server did not answer in time") from e
        finally:
            self._waiters.pop(env.envelope_id, None)
        if answer.WhichOneof("payload") == "error":
            raise ActrError.from_proto(answer.error)
        return answer

    async def route_candidates(self, target_type: ActrType, count: int = 1) -> list[ActrId]:
        req = RouteCandidatesRequest(target_type=target_type)
        req.criteria.candidate_count = count
        answer = await self._request(ActrToSignaling(route_candidates_request=req))
        rc = answer.route_candidates_response
        if rc.WhichOneof("result") == "error":
            raise ActrError.from_proto(rc.error)
        return list(rc.success.candidates)

    async def send_relay(self, relay: ActrRelay) -> None:
        self._stamp(relay)
        env = _new_envelope()
        env.actr_relay.CopyFrom(relay)
        self._relay_targets[env.envelope_id] = id_text(relay.target)
        while len(self._relay_targets) > 1024:
            self._relay_targets.popitem(last=False)
        await self._send(env)

    async def _heartbeat(self, interval: int) -> None:
        while True:
            await asyncio.sleep(interval)
            ping = Ping(availability=1, mailbox_backlog=float(self.mailbox_backlog()))
            try:
                await self._request(ActrToSignaling(ping=ping))
            except ActrError as e:
                log.warning("heartbeat_failed error=%s", e)

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                log.warning("signaling_unexpected_frame type=%s", msg.type)
                continue
            env = SignalingEnvelope()
            try:
                env.ParseFromString(msg.data)
            except Exception:
                log.warning("signaling_undecodable_frame size=%d", len(msg.data))
                continue
            await self._dispatch(env)
        if not self._closing:
            log.warning("signaling_socket_closed code=%s", ws.close_code)
            for fut in self._waiters.values():
                if not fut.done():
                    fut.set_exception(Unavailable("signaling socket closed"))

    async def _dispatch(self, env: SignalingEnvelope) -> None:
        flow = env.WhichOneof("flow")
        if flow == "actr_relay":
            if self.on_relay is not None:
                try:
                    await self.on_relay(env.actr_relay)
                except Exception:
                    log.exception("relay_handler_failed")
            return
        if flow == "server_to_actr":
            fut = self._waiters.get(env.reply_for) if env.reply_for else None
            if fut is not None:
                if not fut.done():
                    fut.set_result(env.server_to_actr)
                return
            body = env.server_to_actr
            if body.WhichOneof("payload") == "error":
                target = self._relay_targets.pop(env.reply_for, None)
                if target is not None and self.on_relay_error is not None:
                    self.on_relay_error(target, ActrError.from_proto(body.error))
                    return
                log.warning(
                    "signaling_error code=%d message=%s", body.error.code, body.error.message
                )
            return
        if flow == "envelope_error":
            err: ErrorResponse = env.envelope_error
            fut = self._waiters.get(env.reply_for) if env.reply_for else None
            if fut is not None and not fut.done():
                fut.set_exception(ActrError.from_proto(err))
                return
            log.warning("signaling_envelope_error code=%d message=%s", err.code, err.message)
            return
        log.warning("signaling_unexpected_flow flow=%s", flow)
