"""Starting and stopping a server inside a running event loop (CLI, tests, embedding).

``server = await start_server(config)`` binds (port 0 picks a free port) and
serves; ``server.url`` is the real address; ``await server.close()`` stops it.

Every connection passes ``signaling.admission`` before aiohttp reads it (F5),
and the process raises its open-files soft limit to the hard one: a server
holding sockets for thousands of actors must not run out at systemd's default
soft limit of 1,024.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

from aiohttp import web

from signaling.admission import AdmissionSite
from signaling.app import create_app
from signaling.config import Config
from signaling.state import STATE, State

__all__ = ["RunningServer", "listening_line", "start_server"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunningServer:
    app: web.Application
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def state(self) -> State:
        return self.app[STATE]

    async def close(self) -> None:
        await self.runner.cleanup()
        log.info("server_stopped url=%s", self.url)


def listening_line(server: RunningServer) -> str:
    """The one stdout line scripts wait for: ``signaling listening on http://HOST:PORT``."""
    return f"signaling listening on {server.url}"


async def start_server(config: Config, app: web.Application | None = None) -> RunningServer:
    """Serve ``app`` (default ``create_app(config)``) on config.host:config.port.

    Raises OSError when the address cannot be bound.
    """
    app = app if app is not None else create_app(config)
    raise_open_files_limit()
    # aiohttp's keep-alive timeout (75 s) closes a kept-alive connection that idles or
    # drips its next request; shorter would race clients that reuse pooled connections.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = AdmissionSite(runner, config.host, config.port, app[STATE].admission)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    host, port = _bound(runner, config.host)
    server = RunningServer(app=app, runner=runner, host=host, port=port)
    log.info("server_listening url=%s", server.url)
    return server


def raise_open_files_limit() -> int:
    """The soft limit of open files raised to the hard one; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log.info("open_files_limit_raised soft=%d new_soft=%d", soft, hard)
            soft = hard
        except (ValueError, OSError) as e:
            log.warning("open_files_limit_not_raised soft=%d hard=%d error=%s", soft, hard, e)
    return int(soft)


def _bound(runner: web.AppRunner, wanted: str) -> tuple[str, int]:
    # The first bound socket; its port is the real one when 0 was asked for.
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return str(addr[0]), int(addr[1])
    raise OSError(f"no TCP socket bound for {wanted}")
