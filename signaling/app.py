"""The aiohttp application: routes, state, the presence sweeper, orderly shutdown.

``create_app(config)`` builds a ready-to-run ``web.Application``; serve it with
``signaling.runner.start_server`` or any aiohttp runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signaling.config import Config
from signaling.credentials import CredentialAuthority, load_or_create_key
from signaling.registration import MAX_BODY, register, renew, signing_pubkey
from signaling.socket import signaling_socket
from signaling.state import STATE, State

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    signing_key: Ed25519PrivateKey | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the server. ``signing_key`` overrides ``config.signing_key_file`` (tests).

    Raises ConfigError when the signing key file cannot be read or created.
    """
    key = signing_key if signing_key is not None else load_or_create_key(config.signing_key_file)
    authority = CredentialAuthority(key, config.signing_key_id, config.credential_lifetime_secs)
    state = State(config=config, authority=authority, clock=clock)
    # Only /ais/* read bodies; WebSocket frames have their own limit (socket.MAX_FRAME).
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE] = state
    app.router.add_post("/ais/register", register)
    app.router.add_post("/ais/renew", renew)
    app.router.add_get("/ais/signing-pubkey", signing_pubkey)
    app.router.add_get("/signaling/ws", signaling_socket)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stats", stats)
    app.cleanup_ctx.append(_sweeper)
    app.on_shutdown.append(_close_sockets)
    return app


async def healthz(request: web.Request) -> web.Response:
    """SIG-11."""
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        state.stats.snapshot(connections=len(state.hub), registered=len(state.registry))
    )


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    task = asyncio.create_task(_sweep_forever(state), name="presence-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _sweep_forever(state: State) -> None:
    # One pass per heartbeat interval bounds how late an expiry can be noticed.
    interval = state.config.heartbeat_interval_secs
    while True:
        await asyncio.sleep(interval)
        try:
            state.hub.apply(state.dispatcher.sweep(state.clock()))
        except Exception:
            log.exception("presence_sweep_failed")


async def _close_sockets(app: web.Application) -> None:
    state = app[STATE]
    if len(state.hub):
        log.info("closing_sockets count=%d", len(state.hub))
    await state.hub.close_all()
