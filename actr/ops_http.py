"""The daemon's HTTP endpoint for operators: ``/metrics``, ``/healthz``, ``/readyz``.

Off unless ``[admin] listen = "host:port"`` is set; served by aiohttp on the
daemon's own loop. ``/metrics`` is Prometheus text (actr/metrics.py),
``/healthz`` and ``/readyz`` answer 200 ``ok`` or 503 with one reason a line
(the rules: actr/health.py). It reads the node's parts and changes nothing, but
its figures tell the actor's traffic to whoever reaches it: bind it to loopback
or a network only the scraper and the supervisor reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import TYPE_CHECKING

from aiohttp import web

from actr.admin import parse_listen
from actr.health import DownClock, mailbox_problem, readiness_problem, signaling_problem
from actr.mailbox import MailboxStats
from actr.metrics import CONTENT_TYPE, DaemonMetrics, Sample

if TYPE_CHECKING:
    from actr.node import Node

__all__ = ["OpsServer"]

log = logging.getLogger(__name__)


class OpsServer:
    def __init__(self, node: Node) -> None:
        assert node.actor is not None, "only an actor daemon serves /healthz"
        self.node = node
        self.host, self.port = parse_listen(node.config.admin.listen)
        self.grace = node.config.admin.signaling_grace
        # Set by the node once started: /readyz says "starting" until then.
        self.ready = False
        self.metrics = DaemonMetrics(
            type(node.actor).routes(), actor_type=type(node.actor).actr_type or "actr"
        )
        self.down = DownClock(node.signaling.connected, node.signaling.disconnected)
        self._runner: web.AppRunner | None = None
        self._watch: asyncio.Task[None] | None = None
        self._mailbox_checked: tuple[float, str | None] | None = None
        # A mailbox check is a transaction on the mailbox's thread: done at most this
        # often (seconds), however often /healthz is asked.
        self.mailbox_check_every = 1.0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Serves; call it once the mailbox is open, before the scheduler starts (so
        every handled request is counted). OSError when the address cannot be bound."""
        if self.node.scheduler is not None:
            self.node.scheduler.handling.observe = self.metrics.handled
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if runner.addresses:
            self.port = int(runner.addresses[0][1])  # the bound one, when 0 was asked
        self._watch = asyncio.create_task(self.down.run())
        log.info("ops_http_listening url=%s", self.url)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.metrics.shutdown()

    # -- what it answers -----------------------------------------------------------

    async def sample(self) -> Sample:
        node = self.node
        box = node.mailbox
        stats: MailboxStats | None = None
        if box is not None and not box.closed:
            try:
                stats = await box.stats()
            except Exception as e:  # a failing database must not fail the scrape
                log.warning("metrics_mailbox_stats_failed error=%r", e)
        down = self.down.down_for()
        return Sample(
            stats=node.stats(),
            mailbox_messages=box.count if box is not None else 0,
            mailbox_bytes=box.bytes if box is not None else 0,
            mailbox=stats,
            peers=Counter(p.pc.connectionState for p in node.transport._peers.values()),
            registered=node.signaling.registration is not None,
            signaling_down_for=down or 0.0,
        )

    async def problems(self) -> list[str]:
        """Why the daemon is unhealthy; empty when it is healthy."""
        node = self.node
        found = []
        why = signaling_problem(
            registered=node.signaling.registration is not None,
            down_for=self.down.down_for(),
            grace=self.grace,
        )
        if why is not None:
            found.append(why)
        why = await self._mailbox_problem()
        if why is not None:
            found.append(why)
        return found

    async def _mailbox_problem(self) -> str | None:
        box = self.node.mailbox
        if box is None or box.closed:
            return "mailbox not open"
        now = asyncio.get_running_loop().time()
        last = self._mailbox_checked
        if last is not None and now - last[0] < self.mailbox_check_every:
            return last[1]
        reserve = self.node.config.transport.max_message_size
        why = await box.connection.call(mailbox_problem, box.path.parent, reserve)
        self._mailbox_checked = (asyncio.get_running_loop().time(), why)
        if why is not None:
            log.warning("health_mailbox_problem why=%r", why)
        return why

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.render(await self.sample())
        return web.Response(body=body, headers={"content-type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        return _answer(await self.problems())

    async def _readyz(self, request: web.Request) -> web.Response:
        why = readiness_problem(
            started=self.ready,
            stopping=self.node.core.stopping,
            connected=self.node.signaling.connected.is_set(),
        )
        return _answer([] if why is None else [why])


def _answer(problems: list[str]) -> web.Response:
    if not problems:
        return web.Response(text="ok\n")
    return web.Response(status=503, text="".join(p + "\n" for p in problems))
