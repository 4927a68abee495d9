"""The aiohttp application: routes, state, the presence sweeper, orderly shutdown.

``create_app(config)`` builds a ready-to-run ``web.Application``; serve it with
``signaling.runner.start_server`` or any aiohttp runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actr.wire import REGISTER_PATH, RENEW_PATH, SIGNALING_MAX_FRAME, SOCKET_PATH
from signaling.cluster import Cluster, new_node_id
from signaling.config import Config
from signaling.credentials import CredentialAuthority
from signaling.metrics import Metrics
from signaling.registration import register, renew, signing_pubkey
from signaling.signing_key import load_or_create_key
from signaling.socket import signaling_socket
from signaling.state import STATE, State
from signaling.web import add_web_routes

__all__ = ["create_app", "sweep_period"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    config: Config,
    *,
    signing_key: Ed25519PrivateKey | None = None,
    clock: Callable[[], float] = time.time,
    node: str | None = None,
) -> web.Application:
    """Build the server. ``signing_key`` overrides ``config.signing_key_file`` (tests).

    With ``config.redis_url`` the server joins the deployment in that Redis when it
    starts (SIG-10) as node ``node`` (default: a random id); starting fails with
    ClusterUnavailable when Redis cannot be reached.
    Raises ConfigError when the signing key file cannot be read or created, or (without
    Redis) when another server holds its serial file (``serials.SerialsInUse``); the
    app's cleanup lets go of that lock.
    """
    key = signing_key if signing_key is not None else load_or_create_key(config.signing_key_file)
    authority = CredentialAuthority(key, config.signing_key_id, config.credential_lifetime_secs)
    clustered = config.redis_url is not None
    node = node or (new_node_id() if clustered else "local")
    state = State(config=config, authority=authority, clock=clock, node=node)
    if config.redis_url is not None:
        state.cluster = Cluster(
            config.redis_url, config.redis_prefix, node, config.heartbeat_interval_secs
        )
        state.hub.fanout = state.cluster
    metrics = Metrics(
        state.stats,
        connections=lambda: len(state.hub),
        registered=lambda: len(state.registry),
        live=lambda: state.registry.live_count,
        node=node,
    )
    # Only /ais/* read bodies; WebSocket frames have their own limit (SIGNALING_MAX_FRAME).
    app = web.Application(
        client_max_size=config.limits.max_registration_bytes or SIGNALING_MAX_FRAME,
        middlewares=[headers_read],
    )
    app[STATE] = state
    app.router.add_post(REGISTER_PATH, register)
    app.router.add_post(RENEW_PATH, renew)
    app.router.add_get("/ais/signing-pubkey", signing_pubkey)
    app.router.add_get(SOCKET_PATH, signaling_socket)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics.handle)
    add_web_routes(app)  # /sdk/actr.js, /console (signaling/web.py)
    if state.cluster is not None:
        app.cleanup_ctx.append(_cluster)
    app.cleanup_ctx.append(_sweeper)
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(lambda _: _shutdown_metrics(metrics))
    app.on_cleanup.append(_release_state)
    return app


@web.middleware
async def headers_read(request: web.Request, handler: Handler) -> web.StreamResponse:
    """F5: the request's headers are complete, so its connection's header timer stops."""
    request.app[STATE].admission.headers_read(request.transport)
    return await handler(request)


async def _shutdown_metrics(metrics: Metrics) -> None:
    metrics.shutdown()


async def _release_state(app: web.Application) -> None:
    app[STATE].close()


async def healthz(request: web.Request) -> web.Response:
    """SIG-11: 200 while this node serves; 503 while its link to the deployment is down."""
    cluster = request.app[STATE].cluster
    if cluster is not None and not cluster.healthy:
        return web.Response(status=503, text="redis unreachable\n")
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        state.stats.snapshot(connections=len(state.hub), registered=len(state.registry))
    )


async def _cluster(app: web.Application) -> AsyncIterator[None]:
    cluster = app[STATE].cluster
    assert cluster is not None
    await cluster.start(app[STATE])
    yield
    await cluster.close()


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    task = asyncio.create_task(_sweep_forever(state), name="presence-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def sweep_period(config: Config) -> float:
    """How often presence is swept: bounds how late an expiry or a grace is noticed."""
    period = min(1.0, float(config.heartbeat_interval_secs))
    if config.reconnect_grace_secs > 0:
        period = min(period, config.reconnect_grace_secs / 2)
    return max(period, 0.05)


async def _sweep_forever(state: State) -> None:
    period = sweep_period(state.config)
    while True:
        await asyncio.sleep(period)
        try:
            state.hub.apply(state.dispatcher.sweep(state.clock()))
        except Exception:
            log.exception("presence_sweep_failed")


async def _close_sockets(app: web.Application) -> None:
    state = app[STATE]
    if len(state.hub):
        log.info("closing_sockets count=%d", len(state.hub))
    await state.hub.close_all()
