"""The runtime's side of the signaling server: register (HTTP), the socket, heartbeat,
route candidates and relay of SDP/ICE (PROTOCOL.md 4.1, 4.2).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from actr.errors import ActrError, Internal, Unauthenticated, Unavailable
from actr.identity import id_text
from actr.protocol.actr_pb2 import (
    Acl,
    ActrId,
    ActrType,
    ErrorResponse,
    IdentityClaims,
    Realm,
    RegisterAuthMode,
    RegisterOk,
    RegisterRequest,
    RegisterResponse,
    RenewCredentialRequest,
    ServiceSpec,
)
from actr.protocol.signaling_pb2 import (
    ActrRelay,
    ActrToSignaling,
    DiscoveryRequest,
    Ping,
    RouteCandidatesRequest,
    ServiceAvailabilityState,
    SignalingEnvelope,
    SignalingToActr,
    SubscribeActrUpRequest,
    UnregisterRequest,
)
from actr.wire import (
    ENVELOPE_VERSION,
    PROTOBUF_CONTENT_TYPE,
    REALM_SECRET_HEADER,
    REGISTER_PATH,
    RENEW_PATH,
    SIGNALING_MAX_FRAME,
    SOCKET_PATH,
)

log = logging.getLogger(__name__)

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


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 10.0) -> float:
    """Full-jitter exponential backoff: many actors cut off together do not return in step."""
    return random.uniform(0, min(cap, base * 2**attempt))


class SignalingClient:
    """Registration and the signaling socket, kept up across server restarts and failover.

    ``urls`` lists interchangeable servers of one deployment (SIG-10); after a drop
    the client reconnects with backoff and jitter, trying each in turn, and keeps
    its ActrId by presenting its credential (renewed first if the server asks).
    """

    def __init__(
        self,
        urls: str | list[str],
        *,
        realm: int,
        realm_secret: str,
        actr_type: ActrType,
        acl: Acl | None = None,
        service: str = "",
        service_spec: ServiceSpec | None = None,
        request_timeout: float = 10.0,
        state_path: Path | None = None,
    ) -> None:
        given = [urls] if isinstance(urls, str) else list(urls)
        if not given:
            raise ValueError("at least one signaling url is needed")
        self.urls = [http_base(u) for u in given]
        self._url_index = 0
        self.realm = realm
        self.realm_secret = realm_secret
        self.actr_type = actr_type
        self.acl = acl
        self.service = service
        self.service_spec = service_spec
        self.request_timeout = request_timeout
        # Where the identity is kept, so a restarted daemon resumes its ActrId.
        self.state_path = state_path
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
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        # Called with ("up" | "down", actor id) for types subscribed to (SIG-7).
        self.on_presence: Callable[[str, ActrId], None] | None = None
        self.on_connection_change: Callable[[bool], None] | None = None
        self.reconnects = 0

    def listen_relays(self, on_relay: RelayHandler, on_relay_error: RelayErrorHandler) -> None:
        """Relays from peers go to ``on_relay``, the server's refusals to ``on_relay_error``."""
        self.on_relay = on_relay
        self.on_relay_error = on_relay_error

    @property
    def base(self) -> str:
        return self.urls[self._url_index]

    @property
    def actr_id(self) -> ActrId:
        if self.registration is None:
            raise RuntimeError("not registered")
        return self.registration.actr_id

    async def start(self) -> RegisterOk:
        self._session = aiohttp.ClientSession()
        last: ActrError | None = None
        for i in range(len(self.urls)):
            self._url_index = i
            try:
                reg = await self._resume() or await self.register()
                break
            except Unavailable as e:
                last = e
        else:
            assert last is not None
            raise last
        self._save_state()
        ws = await self._open_socket()
        self._tasks.append(asyncio.create_task(self._socket_loop(ws)))
        interval = max(1, reg.signaling_heartbeat_interval_secs or 10)
        self._tasks.append(asyncio.create_task(self._heartbeat(interval)))
        self._tasks.append(asyncio.create_task(self._renew_loop()))
        return reg

    def _load_state(self) -> RegisterOk | None:
        if self.state_path is None or not self.state_path.exists():
            return None
        saved = RegisterOk()
        try:
            saved.ParseFromString(self.state_path.read_bytes())
        except Exception:
            log.warning("identity_state_unreadable path=%s", self.state_path)
            return None
        if saved.actr_id.realm.realm_id != self.realm or not saved.renewal_token:
            return None
        return saved

    def _save_state(self) -> None:
        if self.state_path is None or self.registration is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        # The renewal token is a secret: owner-only, and replaced atomically.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.registration.SerializeToString())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    async def _resume(self) -> RegisterOk | None:
        saved = self._load_state()
        if saved is None:
            return None
        try:
            reg = await self.renew(saved.actr_id, saved.renewal_token)
        except ActrError as e:
            log.info("identity_not_resumed actor=%s reason=%s", id_text(saved.actr_id), e)
            return None
        log.info("identity_resumed actor=%s", id_text(reg.actr_id))
        return reg

    async def renew(self, actr_id: ActrId, token: bytes) -> RegisterOk:
        """AIS-3: a fresh credential for the same ActrId."""
        req = RenewCredentialRequest(actr_id=actr_id, renewal_token=token)
        reg = await self._post_registration(RENEW_PATH, req.SerializeToString(), {})
        if not (reg.actr_id == actr_id):
            raise Internal("renewal answered a different actor id")
        self.registration = reg
        return reg

    def credential_expires_at(self) -> float:
        assert self.registration is not None
        claims = IdentityClaims()
        claims.ParseFromString(self.registration.credential.claims)
        return float(claims.expires_at)

    async def _renew_loop(self) -> None:
        """Renews at two thirds of the credential's remaining life, retrying on failure."""
        while True:
            left = self.credential_expires_at() - time.time()
            await asyncio.sleep(max(1.0, left * 2 / 3))
            assert self.registration is not None
            try:
                await self.renew(self.registration.actr_id, self.registration.renewal_token)
                self._save_state()
                log.info("credential_renewed actor=%s", id_text(self.actr_id))
            except ActrError as e:
                log.warning("credential_renewal_failed error=%s", e)

    async def register(self) -> RegisterOk:
        req = RegisterRequest(
            actr_type=self.actr_type,
            realm=Realm(realm_id=self.realm),
            auth_mode=RegisterAuthMode.REGISTER_AUTH_MODE_LINKED,
        )
        if self.acl is not None:
            req.acl.CopyFrom(self.acl)
        if self.service:
            req.service = self.service
        if self.service_spec is not None:
            req.service_spec.CopyFrom(self.service_spec)
        reg = await self._post_registration(
            REGISTER_PATH, req.SerializeToString(), {REALM_SECRET_HEADER: self.realm_secret}
        )
        self.registration = reg
        log.info("registered actor=%s", id_text(reg.actr_id))
        return reg

    async def _post_registration(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> RegisterOk:
        assert self._session is not None
        try:
            async with self._session.post(
                self.base + path,
                data=body,
                headers={**headers, "content-type": PROTOBUF_CONTENT_TYPE},
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
            raise Internal(f"{path} answered HTTP {status} with an undecodable body") from e
        if answer.WhichOneof("result") == "error":
            raise ActrError.from_proto(answer.error)
        if status != 200 or not answer.HasField("success"):
            raise Internal(f"{path} answered HTTP {status} without a result")
        return answer.success

    async def _open_socket(self) -> aiohttp.ClientWebSocketResponse:
        assert self._session is not None and self.registration is not None
        cred = self.registration.credential
        params = {
            "actor_id": id_text(self.registration.actr_id),
            "key_id": str(cred.key_id),
            "claims": base64.urlsafe_b64encode(cred.claims).decode(),
            "signature": base64.urlsafe_b64encode(cred.signature).decode(),
        }
        try:
            ws = await self._session.ws_connect(
                self.base + SOCKET_PATH,
                params=params,
                max_msg_size=SIGNALING_MAX_FRAME,
                heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            )
        except aiohttp.WSServerHandshakeError as e:
            if e.status == 401:
                raise Unauthenticated(f"signaling socket refused: {e.message}") from e
            raise Unavailable(f"signaling socket refused: HTTP {e.status}") from e
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise Unavailable(f"signaling socket to {self.base} failed: {e}") from e
        self._ws = ws
        self._set_connected(True)
        return ws

    def _set_connected(self, up: bool) -> None:
        if up == self.connected.is_set():
            return
        if up:
            self.connected.set()
            self.disconnected.clear()
        else:
            self.connected.clear()
            self.disconnected.set()
        log.info(
            "signaling_%s actor=%s url=%s", "up" if up else "down", id_text(self.actr_id), self.base
        )
        if self.on_connection_change is not None:
            self.on_connection_change(up)

    async def _reconnect_once(self) -> aiohttp.ClientWebSocketResponse:
        """One attempt on the current url: socket; on 401 renew (or register) and retry."""
        try:
            return await self._open_socket()
        except Unauthenticated:
            pass
        assert self.registration is not None
        try:
            await self.renew(self.registration.actr_id, self.registration.renewal_token)
        except Unauthenticated:
            # The deployment forgot us (e.g. an in-memory server restarted): a new ActrId.
            old = id_text(self.registration.actr_id)
            await self.register()
            log.warning("identity_replaced old=%s new=%s", old, id_text(self.actr_id))
        self._save_state()
        return await self._open_socket()

    async def _socket_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Reads the socket; when it drops, reconnects with backoff across the urls (SIG-8)."""
        attempt = 0
        while True:
            await self._read_loop(ws)
            self._set_connected(False)
            if self._closing:
                return
            while True:
                await asyncio.sleep(backoff_delay(attempt))
                attempt += 1
                try:
                    ws = await self._reconnect_once()
                    break
                except ActrError as e:
                    log.info(
                        "signaling_reconnect_failed url=%s attempt=%d error=%s",
                        self.base,
                        attempt,
                        e,
                    )
                    self._url_index = (self._url_index + 1) % len(self.urls)
            attempt = 0
            self.reconnects += 1

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None and not self._ws.closed and self.registration is not None:
            with contextlib.suppress(ActrError, TimeoutError):
                await asyncio.wait_for(
                    self._request(
                        ActrToSignaling(
                            unregister_request=UnregisterRequest(
                                actr_id=self.registration.actr_id, reason="stopping"
                            )
                        )
                    ),
                    2.0,
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
        req = RouteCandidatesRequest(target_type=target_type, client_fingerprint="")
        req.criteria.candidate_count = count
        answer = await self._request(ActrToSignaling(route_candidates_request=req))
        rc = answer.route_candidates_response
        if rc.WhichOneof("result") == "error":
            raise ActrError.from_proto(rc.error)
        return list(rc.success.candidates)

    async def discover(self, manufacturer: str = "", limit: int = 0) -> list[ActrType]:
        """Live actor types the server knows (and whose ACL admits us)."""
        req = DiscoveryRequest()
        if limit > 0:
            req.limit = limit
        if manufacturer:
            req.manufacturer = manufacturer
        answer = await self._request(ActrToSignaling(discovery_request=req))
        resp = answer.discovery_response
        if resp.WhichOneof("result") == "error":
            raise ActrError.from_proto(resp.error)
        return [e.actr_type for e in resp.success.entries]

    async def signing_key(self, key_id: int) -> bytes:
        """SIG-6a: the server's verifying key with id ``key_id`` (NotFound if unknown)."""
        req = ActrToSignaling()
        req.get_signing_key_request.key_id = key_id
        answer = await self._request(req)
        return bytes(answer.get_signing_key_response.pubkey)

    async def service_spec_of(self, name: str) -> ServiceSpec:
        """SIG-6b: the ServiceSpec named ``name`` that a visible actor registered."""
        req = ActrToSignaling()
        req.get_service_spec_request.name = name
        answer = await self._request(req)
        resp = answer.get_service_spec_response
        if resp.WhichOneof("result") != "success":
            raise ActrError.from_proto(resp.error)
        return resp.success

    async def subscribe(self, actr_type: ActrType) -> None:
        """Asks for actr_up / actr_down events about actors of ``actr_type``."""
        req = SubscribeActrUpRequest(target_type=actr_type)
        answer = await self._request(ActrToSignaling(subscribe_actr_up_request=req))
        resp = answer.subscribe_actr_up_response
        if resp.WhichOneof("result") == "error":
            raise ActrError.from_proto(resp.error)

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
            if not self.connected.is_set():
                continue
            # actr marks every Ping field required: write them all.
            ping = Ping(
                availability=ServiceAvailabilityState.FULL,
                power_reserve=1.0,
                mailbox_backlog=float(self.mailbox_backlog()),
            )
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
            if not env.IsInitialized():
                log.warning("signaling_incomplete_frame size=%d", len(msg.data))
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
            kind = body.WhichOneof("payload")
            if kind in ("actr_up_event", "actr_down_event"):
                event = body.actr_up_event if kind == "actr_up_event" else body.actr_down_event
                if self.on_presence is not None:
                    self.on_presence("up" if kind == "actr_up_event" else "down", event.actor_id)
                return
            if kind == "error":
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
