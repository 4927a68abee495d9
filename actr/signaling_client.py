"""``SignalingClient``: the runtime's side of the signaling server (PROTOCOL.md 4.1,
4.2), put together from its parts:

- signaling_registration.py: register and renew over HTTP (AIS), and when to renew;
- identity_file.py: the registration kept across restarts;
- signaling_session.py (sans-IO): envelopes out, frames in as events;
- signaling_socket.py: the WebSocket, reconnect across urls, heartbeat.

The client carries the session's events out (answers to waiting requests, relays
to the transport, presence to ``on_presence``) and offers the requests the
runtime makes: route candidates, discovery, signing keys, service specs,
subscriptions, relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from actr import signaling_registration as ais
from actr.errors import ActrError, RateLimited, Unauthenticated, Unavailable
from actr.identity import id_text
from actr.identity_file import IdentityFile
from actr.protocol.actr_pb2 import Acl, ActrId, ActrType, RegisterOk, ServiceSpec
from actr.protocol.signaling_pb2 import (
    ActrRelay,
    ActrToSignaling,
    DiscoveryRequest,
    Ping,
    RouteCandidatesRequest,
    ServiceAvailabilityState,
    SignalingToActr,
    SubscribeActrUpRequest,
    UnregisterRequest,
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
from actr.signaling_socket import SignalingSocket, http_base, retry_rate_limited

__all__ = ["RelayErrorHandler", "RelayHandler", "SignalingClient"]

log = logging.getLogger(__name__)

RelayHandler = Callable[[ActrRelay], Awaitable[None]]
RelayErrorHandler = Callable[[str, ActrError], None]


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
        start_timeout: float = 30.0,
    ) -> None:
        given = [urls] if isinstance(urls, str) else list(urls)
        if not given:
            raise ValueError("at least one signaling url is needed")
        self.urls = [http_base(u) for u in given]
        self.realm = realm
        self.realm_secret = realm_secret
        self.actr_type = actr_type
        self.acl = acl
        self.service = service
        self.service_spec = service_spec
        self.request_timeout = request_timeout
        # How long start() keeps retrying a server that rate limits us (HTTP 429).
        self.start_timeout = start_timeout
        # Where the identity is kept, so a restarted daemon resumes its ActrId.
        self.state_path = state_path
        self.registration: RegisterOk | None = None
        self.on_relay: RelayHandler | None = None
        self.on_relay_error: RelayErrorHandler | None = None
        self.mailbox_backlog: Callable[[], float] = lambda: 0.0
        # Called with ("up" | "down", actor id) for types subscribed to (SIG-7).
        self.on_presence: Callable[[str, ActrId], None] | None = None
        self.on_connection_change: Callable[[bool], None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._session: Session[asyncio.Future[SignalingToActr]] = Session()
        self._socket = SignalingSocket(
            self.urls,
            credential=self._registered,
            reauthenticate=self._reauthenticate,
            on_frame=self._on_frame,
            on_change=self._on_socket_change,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed: set[tuple[str, str, str]] = set()
        self._ups = 0  # times the socket came up: after the first, a reconnect

    def listen_relays(self, on_relay: RelayHandler, on_relay_error: RelayErrorHandler) -> None:
        """Relays from peers go to ``on_relay``, the server's refusals to ``on_relay_error``."""
        self.on_relay = on_relay
        self.on_relay_error = on_relay_error

    @property
    def base(self) -> str:
        """The server in use now."""
        return self._socket.base

    @property
    def actr_id(self) -> ActrId:
        return self._registered().actr_id

    @property
    def connected(self) -> asyncio.Event:
        return self._socket.connected

    @property
    def disconnected(self) -> asyncio.Event:
        return self._socket.disconnected

    @property
    def reconnects(self) -> int:
        return self._socket.reconnects

    def _registered(self) -> RegisterOk:
        if self.registration is None:
            raise RuntimeError("not registered")
        return self.registration

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> RegisterOk:
        self._http = aiohttp.ClientSession()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        # Each step retried alone: a retried socket must not register a second identity.
        reg = await retry_rate_limited(self._register_on_any_url, self.start_timeout)
        self._save_state()
        http = self._http
        ws = await retry_rate_limited(lambda: self._socket.open(http), deadline - loop.time())
        self._tasks.append(asyncio.create_task(self._socket.run(ws)))
        interval = max(1, reg.signaling_heartbeat_interval_secs or 10)
        self._tasks.append(asyncio.create_task(self._socket.heartbeat(interval, self._ping)))
        self._tasks.append(asyncio.create_task(self._renew_loop()))
        return reg

    async def close(self) -> None:
        self._socket.closing = True
        if self._socket.is_open and self.registration is not None:
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
        await self._socket.close()
        if self._http is not None:
            await self._http.close()
        for fut in self._session.fail_all():
            if not fut.done():
                fut.set_exception(Unavailable("signaling client closed"))

    # -- identity --------------------------------------------------------------

    def _save_state(self) -> None:
        if self.state_path is not None and self.registration is not None:
            IdentityFile(self.state_path).save(self.registration)

    async def _register_on_any_url(self) -> RegisterOk:
        """Resumes the saved identity (AIS-3) or registers, on the first url that answers."""
        last: ActrError | None = None
        for i in range(len(self.urls)):
            self._socket.url_index = i
            try:
                return await self._resume() or await self.register()
            except Unavailable as e:
                last = e
        assert last is not None
        raise last

    async def _resume(self) -> RegisterOk | None:
        if self.state_path is None:
            return None
        saved = IdentityFile(self.state_path).load(self.realm)
        if saved is None:
            return None
        try:
            reg = await self.renew(saved.actr_id, saved.renewal_token)
        except (RateLimited, Unavailable):
            raise  # try again later: a new registration would give up the ActrId
        except ActrError as e:
            log.info("identity_not_resumed actor=%s reason=%s", id_text(saved.actr_id), e)
            return None
        log.info("identity_resumed actor=%s", id_text(reg.actr_id))
        return reg

    async def register(self) -> RegisterOk:
        assert self._http is not None
        req = ais.register_request(
            self.actr_type, self.realm, self.acl, self.service, self.service_spec
        )
        reg = await ais.register(
            self._http, self.base, req, self.realm_secret, self.request_timeout
        )
        self.registration = reg
        log.info("registered actor=%s", id_text(reg.actr_id))
        return reg

    async def renew(self, actr_id: ActrId, token: bytes) -> RegisterOk:
        """AIS-3: a fresh credential for the same ActrId."""
        assert self._http is not None
        reg = await ais.renew(self._http, self.base, actr_id, token, self.request_timeout)
        self.registration = reg
        return reg

    def credential_expires_at(self) -> float:
        return ais.credential_expires_at(self._registered())

    async def _renew_loop(self) -> None:
        """Renews at two thirds of the credential's remaining life, retrying on failure."""
        while True:
            await asyncio.sleep(ais.renew_delay(self.credential_expires_at(), time.time()))
            reg = self._registered()
            try:
                await self.renew(reg.actr_id, reg.renewal_token)
                self._save_state()
                log.info("credential_renewed actor=%s", id_text(self.actr_id))
            except ActrError as e:
                log.warning("credential_renewal_failed error=%s", e)

    async def _reauthenticate(self) -> None:
        """The server refused the credential: renew it, or register anew if forgotten."""
        reg = self._registered()
        try:
            await self.renew(reg.actr_id, reg.renewal_token)
        except Unauthenticated:
            # The deployment forgot us (e.g. an in-memory server restarted): a new ActrId.
            old = id_text(reg.actr_id)
            await self.register()
            log.warning("identity_replaced old=%s new=%s", old, id_text(self.actr_id))
        self._save_state()

    # -- the session's events --------------------------------------------------

    def _on_socket_change(self, up: bool) -> None:
        self._ups += up
        if up and self._subscribed and self._ups > 1:
            # A server that restarted, or kept us past the grace, has forgotten them.
            self._tasks.append(asyncio.create_task(self._resubscribe()))
        if not up and not self._socket.closing:
            for fut in self._session.fail_all():
                if not fut.done():
                    fut.set_exception(Unavailable("signaling socket closed"))
        if self.on_connection_change is not None:
            self.on_connection_change(up)

    async def _on_frame(self, data: bytes) -> None:
        event = self._session.receive(data)
        if isinstance(event, Answered):
            if not event.waiter.done():
                event.waiter.set_result(event.body)
        elif isinstance(event, Failed):
            if not event.waiter.done():
                event.waiter.set_exception(event.error)
        elif isinstance(event, RelayReceived):
            if self.on_relay is not None:
                try:
                    await self.on_relay(event.relay)
                except Exception:
                    log.exception("relay_handler_failed")
        elif isinstance(event, PresenceChanged):
            if self.on_presence is not None:
                self.on_presence("up" if event.up else "down", event.actor)
        elif isinstance(event, RelayRefused):
            if self.on_relay_error is not None:
                self.on_relay_error(event.target, event.error)
            else:
                err = event.error
                log.warning("signaling_error code=%d message=%s", err.raw_code, err.message)
        elif isinstance(event, Unmatched):
            name = (
                "signaling_error" if event.flow == "server_to_actr" else "signaling_" + event.flow
            )
            log.warning("%s code=%d message=%s", name, event.code, event.message)
        elif isinstance(event, Dropped):
            log.warning("signaling_%s %s", event.reason, event.detail)

    # -- requests --------------------------------------------------------------

    async def _request(self, body: ActrToSignaling) -> SignalingToActr:
        fut: asyncio.Future[SignalingToActr] = asyncio.get_running_loop().create_future()
        envelope_id, data = self._session.request(body, self._registered(), fut)
        try:
            await self._socket.send(data)
            return await asyncio.wait_for(fut, self.request_timeout)
        except TimeoutError as e:
            raise Unavailable("signaling server did not answer in time") from e
        finally:
            self._session.forget(envelope_id)

    async def _ping(self) -> None:
        # actr marks every Ping field required: write them all.
        ping = Ping(
            availability=ServiceAvailabilityState.FULL,
            power_reserve=1.0,
            mailbox_backlog=float(self.mailbox_backlog()),
        )
        await self._request(ActrToSignaling(ping=ping))

    async def send_relay(self, relay: ActrRelay) -> None:
        await self._socket.send(self._session.relay(relay, self._registered()))

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

    async def _resubscribe(self) -> None:
        for m, n, v in sorted(self._subscribed):
            try:
                await self._send_subscribe(ActrType(manufacturer=m, name=n, version=v))
            except ActrError as e:
                log.warning("resubscribe_failed type=%s:%s:%s error=%s", m, n, v, e)

    async def subscribe(self, actr_type: ActrType) -> None:
        """Asks for actr_up / actr_down events about actors of ``actr_type``; asked again
        after every reconnect."""
        await self._send_subscribe(actr_type)
        self._subscribed.add((actr_type.manufacturer, actr_type.name, actr_type.version))

    async def _send_subscribe(self, actr_type: ActrType) -> None:
        req = SubscribeActrUpRequest(target_type=actr_type)
        answer = await self._request(ActrToSignaling(subscribe_actr_up_request=req))
        resp = answer.subscribe_actr_up_response
        if resp.WhichOneof("result") == "error":
            raise ActrError.from_proto(resp.error)
