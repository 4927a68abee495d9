"""The signaling socket ``GET /signaling/ws`` (PROTOCOL.md SIG-1, SIG-2, SIG-9).

The upgrade happens only for a credential that verifies, is unexpired, names
the ``actor_id`` of the query and an actor registered here; anything else is a
plain HTTP 401; too many attempts from one address answer 429 first. On the
socket each binary frame is one SignalingEnvelope handed to the dispatcher; a
text frame closes with 1003, a frame over 1 MiB with 1009. Frames over the
connection's message rate are answered RESOURCE_EXHAUSTED unread, and a flood
that goes on closes the socket with 1008 (``limits.FloodGuard``). A new socket
of an actor replaces (closes) the one it had, here or on another node.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping

from aiohttp import WebSocketError, WSMsgType, web

from actr.wire import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_UNSUPPORTED_DATA,
    SIGNALING_MAX_FRAME,
)
from signaling.cluster import ClusterUnavailable
from signaling.credentials import CredentialError
from signaling.hub import CLOSE_TIMEOUT, Connection
from signaling.limits import FloodGuard, Verdict, retry_after_header
from signaling.record import ActorRecord
from signaling.state import STATE, State

__all__ = ["SocketRefused", "authorize", "decode_b64", "signaling_socket"]

log = logging.getLogger(__name__)

# Query values are a few hundred bytes; refuse to base64-decode anything much longer.
_MAX_QUERY_VALUE = 4096


class SocketRefused(Exception):
    """The upgrade is refused; ``reason`` is a short counter label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def decode_b64(text: str) -> bytes:
    """Standard or URL-safe alphabet, padded or not.

    A '+' sent without percent-encoding arrives as a space after query decoding,
    and a space is never base64, so it is read back as '+'.
    """
    if len(text) > _MAX_QUERY_VALUE:
        raise ValueError("value too long")
    s = text.strip().replace(" ", "+").replace("-", "+").replace("_", "/").rstrip("=")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except binascii.Error as e:
        raise ValueError(str(e)) from None


def authorize(state: State, query: Mapping[str, str], now: float) -> ActorRecord:
    """SIG-1: the registered actor the query's credential proves, or SocketRefused."""
    actor_id = query.get("actor_id", "")
    if not actor_id:
        raise SocketRefused("missing_params", "actor_id is missing")
    try:
        key_id = int(query.get("key_id", ""))
        claims = decode_b64(query.get("claims", ""))
        signature = decode_b64(query.get("signature", ""))
    except ValueError as e:
        raise SocketRefused("bad_params", f"malformed credential parameters: {e}") from None
    if not claims or not signature:
        raise SocketRefused("missing_params", "claims and signature are required")
    try:
        verified = state.authority.verify_parts(key_id, claims, signature, now)
    except CredentialError as e:
        raise SocketRefused(e.reason, e.detail) from None
    if verified.actor_id != actor_id:
        raise SocketRefused("other_actor", "the credential names another actor")
    record = state.registry.get(actor_id)
    if record is None or record.actr_id.realm.realm_id != verified.realm_id:
        raise SocketRefused("not_registered", "the actor is not registered here")
    if verified.expires_at <= record.revoked_through:
        # SIG-7: an actor that unregistered stays down until it renews or registers.
        raise SocketRefused("revoked", "the actor unregistered: renew or register first")
    return record


async def _known_here(state: State, actor_id: str) -> None:
    """With several nodes, an actor registered elsewhere a moment ago: read it from Redis."""
    if state.cluster is None or not actor_id or state.registry.get(actor_id) is not None:
        return
    record = await state.cluster.fetch(actor_id)
    if record is not None:
        state.registry.merge(record)


async def signaling_socket(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    peer = request.remote or ""
    if not state.attempts.allow(peer, state.monotonic()):
        reason = f"{state.attempts.refused_by}_rate_limited".removeprefix("ip_")
        state.stats.reject(f"ws_{reason}")
        log.info("socket_refused reason=%s peer=%s", reason, peer)
        return web.Response(
            status=429,
            text="too many connection attempts\n",
            headers=retry_after_header(state.attempts.retry_after),
        )
    try:
        await _known_here(state, request.query.get("actor_id", ""))
    except ClusterUnavailable as e:
        state.stats.reject("ws_cluster_unavailable")
        log.warning("socket_refused reason=cluster_unavailable error=%s", e)
        return web.Response(status=503, text="registry unavailable, retry\n")
    try:
        record = authorize(state, request.query, state.clock())
    except SocketRefused as e:
        state.stats.reject(f"ws_{e.reason}")
        log.info("socket_refused reason=%s detail=%s peer=%s", e.reason, e, request.remote)
        return web.Response(status=401, text=f"unauthorized: {e}\n")
    # Close handshakes must end before Connection.finish gives up on them.
    ws = web.WebSocketResponse(
        max_msg_size=SIGNALING_MAX_FRAME, compress=False, timeout=CLOSE_TIMEOUT - 1
    )
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="expected a WebSocket upgrade\n")

    generation: int | None = None
    if state.cluster is not None:
        try:
            generation = await state.cluster.next_generation(record.key)
        except ClusterUnavailable as e:
            state.stats.reject("ws_cluster_unavailable")
            log.warning(
                "socket_refused reason=cluster_unavailable actor=%s error=%s", record.key, e
            )
            return web.Response(status=503, text="registry unavailable, retry\n")
        if generation == 0:
            state.stats.reject("ws_not_registered")
            return web.Response(status=401, text="unauthorized: registration expired\n")
    transport = request.transport

    def abort() -> None:
        if transport is not None:
            transport.abort()

    def dropped() -> None:
        # F4: given up for falling behind; offline now, not once its close completes.
        state.hub.detach(conn)
        state.hub.apply(state.dispatcher.disconnected(record.key, conn.id, state.clock()))

    conn = Connection(
        ws, record.key, state.stats, state.config.limits.max_outbox_bytes, abort, dropped
    )
    # Live before the client sees the handshake complete: once its connect returns,
    # every other actor already finds it (route candidates, relay, up events).
    replaced = state.hub.attach(conn)
    if replaced is not None:
        log.info("socket_replaced actor=%s old=%d new=%d", record.key, replaced.id, conn.id)
        replaced.close(CLOSE_NORMAL, "replaced by a newer connection")
    state.stats.connections_total += 1
    answer_only = request.query.get("webrtc_role") == "answer"
    state.hub.apply(
        state.dispatcher.connected(record.key, conn.id, state.clock(), generation, answer_only)
    )
    try:
        await ws.prepare(request)
        conn.start()
        await _read_loop(state, ws, conn)
    finally:
        state.hub.detach(conn)
        state.hub.apply(state.dispatcher.disconnected(record.key, conn.id, state.clock()))
        await conn.finish()
        log.info("socket_closed actor=%s connection=%d code=%s", record.key, conn.id, ws.close_code)
    return ws


async def _read_loop(state: State, ws: web.WebSocketResponse, conn: Connection) -> None:
    limits = state.config.limits
    guard = FloodGuard(
        limits.messages_per_sec, limits.message_burst, limits.flood_tolerance, state.monotonic()
    )
    async for msg in ws:
        if conn.closing:
            # A replaced socket's late frames must not be answered on its successor.
            state.stats.reject("frame_after_close")
            continue
        if msg.type is WSMsgType.BINARY:
            verdict = guard.check(state.monotonic())
            if verdict is Verdict.ADMIT:
                state.hub.apply(state.dispatcher.frame(conn.actor, msg.data, state.clock()))
            elif verdict is Verdict.REFUSE:
                state.hub.apply(state.dispatcher.rate_limited(conn.actor, msg.data))
            else:
                state.stats.reject("flood_closed")
                log.warning(
                    "socket_flood_closed actor=%s connection=%d refused=%d",
                    conn.actor,
                    conn.id,
                    guard.refused,
                )
                conn.close(CLOSE_POLICY, "message rate limit exceeded")
        elif msg.type is WSMsgType.TEXT:
            state.stats.reject("text_frame")
            log.info("socket_text_frame actor=%s connection=%d", conn.actor, conn.id)
            await ws.close(code=CLOSE_UNSUPPORTED_DATA, message=b"binary frames only")
            return
        elif msg.type is WSMsgType.ERROR:
            # aiohttp already sent the close (1009 for an oversized frame).
            exc = msg.data
            too_big = isinstance(exc, WebSocketError) and exc.code == CLOSE_MESSAGE_TOO_BIG
            state.stats.reject("frame_too_large" if too_big else "socket_error")
            log.info("socket_error actor=%s connection=%d error=%s", conn.actor, conn.id, exc)
            return
