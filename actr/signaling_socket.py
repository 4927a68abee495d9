"""The signaling socket: one aiohttp WebSocket to a signaling server, kept open.

``SignalingSocket`` opens the socket with the actor's credential, hands every
binary frame to ``on_frame``, and when the socket drops reconnects (SIG-8) with
full-jitter exponential backoff, moving to the next of ``urls`` after each failed
attempt (SIG-10). A credential the server refuses (401) is renewed, or the actor
registered anew, through ``reauthenticate`` before the socket is tried again.
``heartbeat`` pings at the interval the server advised while the socket is up.
It knows nothing of what the frames mean (signaling_session.py does).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from actr.errors import ActrError, RateLimited, Unauthenticated, Unavailable
from actr.identity import id_text
from actr.protocol.actr_pb2 import RegisterOk
from actr.signaling_registration import retry_after
from actr.wire import SIGNALING_MAX_FRAME, SOCKET_PATH

__all__ = ["SignalingSocket", "backoff_delay", "http_base", "retry_rate_limited"]

log = logging.getLogger(__name__)


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


def backoff_delay(
    attempt: int,
    base: float = 0.2,
    cap: float = 10.0,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Full-jitter exponential backoff: many actors cut off together do not return in step."""
    return uniform(0, min(cap, base * 2**attempt))


T = TypeVar("T")


async def retry_rate_limited(attempt: Callable[[], Awaitable[T]], timeout: float) -> T:
    """Runs ``attempt`` until it is not refused with HTTP 429, for at most ``timeout``
    seconds: many clients started at once from one host come back spread out (full
    jitter), and never sooner than the server's Retry-After."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    tries = 0
    while True:
        try:
            return await attempt()
        except RateLimited as e:
            delay = (e.retry_after or 0.0) + backoff_delay(tries, base=0.25, cap=4.0)
            if loop.time() + delay > deadline:
                raise
            tries += 1
            log.info("signaling_rate_limited retry_in=%.2f attempt=%d", delay, tries)
            await asyncio.sleep(delay)


class SignalingSocket:
    def __init__(
        self,
        urls: list[str],
        *,
        credential: Callable[[], RegisterOk],
        reauthenticate: Callable[[], Awaitable[None]],
        on_frame: Callable[[bytes], Awaitable[None]],
        on_change: Callable[[bool], None],
    ) -> None:
        self.urls = urls
        self.url_index = 0
        self._credential = credential
        self._reauthenticate = reauthenticate
        self._on_frame = on_frame
        self._on_change = on_change
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.reconnects = 0
        self.closing = False

    @property
    def base(self) -> str:
        return self.urls[self.url_index]

    @property
    def is_open(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def open(self, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        """Opens the socket to the current url (Unauthenticated on 401, else Unavailable)."""
        self._http = http
        reg = self._credential()
        cred = reg.credential
        params = {
            "actor_id": id_text(reg.actr_id),
            "key_id": str(cred.key_id),
            "claims": base64.urlsafe_b64encode(cred.claims).decode(),
            "signature": base64.urlsafe_b64encode(cred.signature).decode(),
        }
        try:
            ws = await http.ws_connect(
                self.base + SOCKET_PATH,
                params=params,
                max_msg_size=SIGNALING_MAX_FRAME,
                heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            )
        except aiohttp.WSServerHandshakeError as e:
            if e.status == 401:
                raise Unauthenticated(f"signaling socket refused: {e.message}") from e
            if e.status == 429:
                wait = retry_after(e.headers.get("Retry-After") if e.headers else None)
                raise RateLimited("signaling socket: rate limited", wait) from e
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
        actor = id_text(self._credential().actr_id)
        log.info("signaling_%s actor=%s url=%s", "up" if up else "down", actor, self.base)
        self._on_change(up)

    async def send(self, data: bytes) -> None:
        if self._ws is None or self._ws.closed:
            raise Unavailable("signaling socket is not connected")
        await self._ws.send_bytes(data)

    async def run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Reads the socket; when it drops, reconnects with backoff across the urls (SIG-8)."""
        attempt = 0
        while True:
            await self._read(ws)
            self._set_connected(False)
            if self.closing:
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
                    self.url_index = (self.url_index + 1) % len(self.urls)
            attempt = 0
            self.reconnects += 1

    async def _reconnect_once(self) -> aiohttp.ClientWebSocketResponse:
        """One attempt on the current url: socket; on 401 renew (or register) and retry."""
        assert self._http is not None
        try:
            return await self.open(self._http)
        except Unauthenticated:
            pass
        await self._reauthenticate()
        return await self.open(self._http)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                log.warning("signaling_unexpected_frame type=%s", msg.type)
                continue
            await self._on_frame(msg.data)
        if not self.closing:
            log.warning("signaling_socket_closed code=%s", ws.close_code)

    async def heartbeat(self, interval: float, ping: Callable[[], Awaitable[None]]) -> None:
        """Pings every ``interval`` seconds while the socket is up."""
        while True:
            await asyncio.sleep(interval)
            if not self.connected.is_set():
                continue
            try:
                await ping()
            except ActrError as e:
                log.warning("heartbeat_failed error=%s", e)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
