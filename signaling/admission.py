"""Connections before any HTTP is read (issue 11, F5: slowloris).

aiohttp counts nothing per client until a request's headers are complete, so a
client that opens many connections and drips its headers holds them all (and
the process's open files, which every other client needs too). This module
wraps aiohttp's protocol factory:

- each accepted connection is counted per client address and per /24 (IPv4) or
  /64 (IPv6) in ``limits.ConnectionGate``; one over ``max_connections_per_ip``
  or ``max_connections_per_prefix`` is aborted at once, before it costs more
  than its accept (``tcp_per_ip`` / ``tcp_per_prefix`` rejects);
- a connection whose first request's headers are not complete within
  ``header_timeout_secs`` is aborted (``header_timeout``). The application's
  middleware calls ``headers_read`` when they are; requests after the first on
  a kept-alive connection are bounded by aiohttp's keep-alive timeout (75 s),
  and every such connection still counts against the gate.

``AdmissionSite`` serves an aiohttp runner through this wrapper, as
``web.TCPSite`` would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from signaling.limits import ConnectionGate
from signaling.stats import Stats

__all__ = ["Admission", "AdmissionSite"]

log = logging.getLogger(__name__)

# A refusal is logged for the first one from an address, then every this many.
_LOG_EVERY = 1000

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class Admission:
    def __init__(self, gate: ConnectionGate, stats: Stats, header_timeout: float) -> None:
        self.gate = gate
        self.stats = stats
        self.header_timeout = header_timeout
        self._awaiting_headers: dict[asyncio.BaseTransport, _Guarded] = {}
        self._refusals = 0

    def wrap(self, factory: ProtocolFactory) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guarded(self, factory)

    def headers_read(self, transport: asyncio.BaseTransport | None) -> None:
        """The connection's request headers are complete: its header timer stops."""
        if transport is None:
            return
        guarded = self._awaiting_headers.pop(transport, None)
        if guarded is not None:
            guarded.stop_timer()

    def refused(self, address: str, reason: str) -> None:
        self.stats.reject(f"tcp_{reason}")
        self._refusals += 1
        if self._refusals % _LOG_EVERY == 1:
            log.warning(
                "connection_refused reason=%s peer=%s open_here=%d refused_so_far=%d",
                reason,
                address,
                self.gate.count(address),
                self._refusals,
            )


def _abort(transport: asyncio.BaseTransport) -> None:
    """Drop the connection now, unsent data and all (a reset, not a close handshake)."""
    abort: Callable[[], None] | None = getattr(transport, "abort", None)
    (abort or transport.close)()


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the gate and the header timer."""

    def __init__(self, admission: Admission, factory: ProtocolFactory) -> None:
        self._admission = admission
        self._factory = factory
        self._inner: asyncio.BaseProtocol | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._address: str | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        admission = self._admission
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        refused = admission.gate.admit(address)
        if refused is not None:
            admission.refused(address, refused)
            _abort(transport)
            return
        self._address = address
        self._transport = transport
        if admission.header_timeout > 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(admission.header_timeout, self._headers_too_slow)
            admission._awaiting_headers[transport] = self
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_too_slow(self) -> None:
        self._timer = None
        admission = self._admission
        admission.stats.reject("header_timeout")
        log.info(
            "connection_closed reason=header_timeout peer=%s timeout_secs=%s",
            self._address,
            admission.header_timeout,
        )
        if self._transport is not None:
            admission._awaiting_headers.pop(self._transport, None)
            _abort(self._transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_timer()
        if self._transport is not None:
            self._admission._awaiting_headers.pop(self._transport, None)
        if self._address is not None:
            self._admission.gate.release(self._address)
            self._address = None
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if isinstance(self._inner, asyncio.Protocol):
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if isinstance(self._inner, asyncio.Protocol):
            return self._inner.eof_received()
        return None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class AdmissionSite(web.BaseSite):
    """``web.TCPSite`` with every connection admitted through ``admission`` first."""

    __slots__ = ("_admission", "_app_runner", "_host", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        admission: Admission,
        *,
        shutdown_timeout: float = 60.0,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, shutdown_timeout=shutdown_timeout, backlog=backlog)
        self._app_runner = runner
        self._host = host
        self._port = port
        self._admission = admission

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._app_runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._admission.wrap(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
        )
