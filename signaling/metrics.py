"""``GET /metrics``: the server's counters through OpenTelemetry, in Prometheus text (SIG-11).

The hot paths count into ``Stats`` (plain integers); OpenTelemetry observable
instruments read them only when Prometheus scrapes. Each server has its own
MeterProvider and prometheus_client registry, so several servers in one process
(tests) never mix their figures, and nothing global is set.

Exported (Prometheus names):

- ``signaling_connections``, ``signaling_registered_actors``,
  ``signaling_live_actors`` (gauges)
- ``signaling_connections_accepted_total``, ``signaling_registrations_total``,
  ``signaling_renewals_total``, ``signaling_frames_total``,
  ``signaling_relays_total``, ``signaling_presence_expired_total``
- ``signaling_rejects_total{reason="..."}``: every refused request, frame or
  connection, by reason (SIG-9)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from signaling.stats import Stats

__all__ = ["Metrics"]


class Metrics:
    def __init__(
        self,
        stats: Stats,
        *,
        connections: Callable[[], int],
        registered: Callable[[], int],
        live: Callable[[], int],
        node: str,
    ) -> None:
        self._stats = stats
        self.registry = CollectorRegistry(auto_describe=False)
        reader = PrometheusMetricReader(disable_target_info=True, registry=self.registry)
        self._provider = MeterProvider(
            metric_readers=[reader],
            resource=Resource.create({"service.name": "actr-signaling", "node": node}),
        )
        meter = self._provider.get_meter("signaling")

        def gauge(name: str, read: Callable[[], int], what: str) -> None:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                return [Observation(read())]

            meter.create_observable_gauge(name, callbacks=[observe], description=what)

        def counter(name: str, read: Callable[[], int], what: str) -> None:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                return [Observation(read())]

            meter.create_observable_counter(name, callbacks=[observe], description=what)

        gauge("signaling.connections", connections, "open signaling sockets on this node")
        gauge("signaling.registered_actors", registered, "registrations this node knows")
        gauge("signaling.live_actors", live, "actors with a socket on any node")
        counter(
            "signaling.connections_accepted", lambda: stats.connections_total, "sockets accepted"
        )
        counter("signaling.registrations", lambda: stats.registrations, "AIS-1 registrations")
        counter("signaling.renewals", lambda: stats.renewals, "AIS-3 renewals")
        counter("signaling.frames", lambda: stats.frames_in, "frames received")
        counter("signaling.relays", lambda: stats.relays, "relays accepted (SIG-5)")
        counter(
            "signaling.presence_expired", lambda: stats.presence_expired, "actors that missed pings"
        )
        meter.create_observable_counter(
            "signaling.rejects",
            callbacks=[self._rejects],
            description="refused requests, frames and connections by reason (SIG-9)",
        )

    def _rejects(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"reason": r}) for r, n in sorted(self._stats.rejects.items())]

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        body = self.render()
        return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})

    def shutdown(self) -> None:
        self._provider.shutdown()
