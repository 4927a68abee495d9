"""``GET /metrics`` of an actor daemon: its counters through OpenTelemetry, as Prometheus text.

As in the signaling server (signaling/metrics.py), the runtime counts into plain
counters (every layer's, by reason: ``Node.stats()``) and observable instruments
read a ``Sample`` of them, taken when Prometheus scrapes. What no counter kept is
recorded as it happens, from ``Handling.observe``: each handled request's route
and answer code and its handler's duration. Its own MeterProvider and
prometheus_client registry: nothing global is set, and several daemons in one
process (tests) never mix their figures.

Exported (Prometheus names):

- ``actr_calls_total{route,code}``: requests and tells handled, by answer code
  (``OK``, ``APPLICATION_ERROR``, ...); a route the actor does not have is
  ``route="other"``, so a caller cannot grow the label set
- ``actr_handler_duration_seconds{route}`` (histogram)
- ``actr_redeliveries_total``: requests handled again after a crash (attempt > 1)
- ``actr_handlers_running``, ``actr_pending_calls`` (calls out awaiting answers)
- ``actr_mailbox_messages``, ``actr_mailbox_bytes`` (queued or in flight),
  ``actr_mailbox_queued``, ``actr_mailbox_in_flight``, ``actr_mailbox_dead_letters``,
  ``actr_mailbox_oldest_age_seconds``; ``actr_dead_lettered_total``
- ``actr_peers{state}`` (RTCPeerConnection states)
- ``actr_reassembly_drops_total{reason}``, ``actr_stream_drops_total{reason}``,
  ``actr_inbound_drops_total{reason}``
- ``actr_runtime_events_total{layer,event}``: every other counter of the node,
  the transport and the pending table (refusals by code, retries, setups, ...)
- ``actr_signaling_connected``, ``actr_signaling_registered``,
  ``actr_signaling_down_seconds``, ``actr_signaling_reconnects_total``
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from actr.errors import ErrorCode
from actr.mailbox import MailboxStats

__all__ = ["CONTENT_TYPE", "PEER_STATES", "DaemonMetrics", "Sample"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# RTCPeerConnection.connectionState; each is exported, 0 when no peer is in it, so a
# state that empties shows 0 rather than vanishing.
PEER_STATES = ("new", "connecting", "connected", "disconnected", "failed", "closed")
# Handler durations from a millisecond to half a minute.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_OTHER_ROUTE = "other"
_REASSEMBLY_PREFIX = "frame_"  # transport counters of actr/framing.py's rejects


@dataclass
class Sample:
    """The figures of one scrape."""

    stats: Mapping[str, Any] = field(default_factory=dict)  # Node.stats()
    mailbox_messages: int = 0
    mailbox_bytes: int = 0
    mailbox: MailboxStats | None = None
    peers: Mapping[str, int] = field(default_factory=dict)  # by state
    registered: bool = False
    signaling_down_for: float = 0.0


def code_name(code: int) -> str:
    if code == 0:
        return "OK"
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


class DaemonMetrics:
    def __init__(self, routes: Collection[str], *, actor_type: str) -> None:
        self._routes = frozenset(routes)
        self.sample = Sample()
        self.registry = CollectorRegistry(auto_describe=False)
        reader = PrometheusMetricReader(disable_target_info=True, registry=self.registry)
        self._provider = MeterProvider(
            metric_readers=[reader],
            resource=Resource.create({"service.name": actor_type}),
            views=[
                View(
                    instrument_name="actr.handler.duration",
                    aggregation=ExplicitBucketHistogramAggregation(_BUCKETS),
                )
            ],
        )
        meter = self._provider.get_meter("actr")
        self._calls = meter.create_counter(
            "actr.calls", description="requests and tells handled, by route and answer code"
        )
        self._duration = meter.create_histogram(
            "actr.handler.duration", unit="s", description="time in the handler, by route"
        )
        self._redeliveries = meter.create_counter(
            "actr.redeliveries", description="requests handled again after a crash"
        )

        def gauge(name: str, read: Callable[[Sample], float], what: str, unit: str = "") -> None:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                return [Observation(read(self.sample))]

            meter.create_observable_gauge(name, callbacks=[observe], description=what, unit=unit)

        def labelled(
            name: str, read: Callable[[Sample], Iterable[tuple[dict[str, str], float]]], what: str
        ) -> None:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                return [Observation(value, labels) for labels, value in read(self.sample)]

            meter.create_observable_counter(name, callbacks=[observe], description=what)

        gauge("actr.handlers_running", lambda s: s.stats.get("handling", 0), "handlers at work")
        gauge(
            "actr.pending_calls",
            lambda s: s.stats.get("pending", {}).get("in_flight", 0),
            "calls out awaiting their answer",
        )
        gauge("actr.mailbox.messages", lambda s: s.mailbox_messages, "requests queued or in flight")
        gauge("actr.mailbox.bytes", lambda s: s.mailbox_bytes, "their envelopes' bytes")
        gauge("actr.mailbox.queued", lambda s: s.mailbox.queued if s.mailbox else 0, "queued")
        gauge(
            "actr.mailbox.in_flight",
            lambda s: s.mailbox.in_flight if s.mailbox else 0,
            "handed to a handler, not acked yet",
        )
        gauge(
            "actr.mailbox.dead_letters",
            lambda s: s.mailbox.dead_letters if s.mailbox else 0,
            "dead letters kept (actr dlq)",
        )
        gauge(
            "actr.mailbox.oldest_age",
            lambda s: (s.mailbox.oldest_age or 0.0) if s.mailbox else 0.0,
            "age of the oldest request queued or in flight",
            unit="s",
        )
        gauge(
            "actr.signaling.connected",
            lambda s: int(bool(s.stats.get("signaling", {}).get("connected"))),
            "1 while the signaling socket is up",
        )
        gauge("actr.signaling.registered", lambda s: int(s.registered), "1 once registered")
        gauge(
            "actr.signaling.down",
            lambda s: s.signaling_down_for,
            "how long the signaling socket has been down (0 while up)",
            unit="s",
        )
        labelled(
            "actr.signaling.reconnects",
            lambda s: [({}, s.stats.get("signaling", {}).get("reconnects", 0))],
            "signaling socket reconnects",
        )
        labelled(
            "actr.dead_lettered",
            lambda s: [({}, s.stats.get("node", {}).get("dead_lettered", 0))],
            "requests moved to the dead letters by this process",
        )
        meter.create_observable_gauge(
            "actr.peers",
            callbacks=[self._peers],
            description="peer connections by RTCPeerConnection state",
        )
        labelled(
            "actr.reassembly.drops",
            lambda s: _by_reason(s.stats.get("transport", {}), _REASSEMBLY_PREFIX),
            "fragments and partial messages dropped, by reason (DC-4, F2)",
        )
        labelled(
            "actr.stream.drops",
            lambda s: _by_reason(s.stats.get("streams", {})),
            "stream chunks dropped, by reason",
        )
        labelled(
            "actr.inbound.drops",
            lambda s: _by_reason(s.stats.get("inbound", {})),
            "inbound messages dropped, by reason",
        )
        labelled("actr.runtime.events", _events, "other runtime counters, by layer and event")

    def handled(self, route: str, code: int, seconds: float, attempt: int) -> None:
        """``Handling.observe``: one request or tell handled."""
        label = route if route in self._routes else _OTHER_ROUTE
        self._calls.add(1, {"route": label, "code": code_name(code)})
        self._duration.record(seconds, {"route": label})
        if attempt > 1:
            self._redeliveries.add(1)

    def _peers(self, _: CallbackOptions) -> Iterable[Observation]:
        peers = self.sample.peers
        states = list(PEER_STATES) + sorted(set(peers) - set(PEER_STATES))
        return [Observation(peers.get(state, 0), {"state": state}) for state in states]

    def render(self, sample: Sample) -> bytes:
        self.sample = sample
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self._provider.shutdown()


def _by_reason(
    counters: Mapping[str, int], prefix: str = ""
) -> Iterable[tuple[dict[str, str], float]]:
    for key, n in sorted(counters.items()):
        if key.startswith(prefix):
            yield {"reason": key[len(prefix) :]}, n


def _events(sample: Sample) -> Iterable[tuple[dict[str, str], float]]:
    stats = sample.stats
    for layer in ("node", "transport", "pending"):
        for event, n in sorted(stats.get(layer, {}).items()):
            if layer == "transport" and event.startswith(_REASSEMBLY_PREFIX):
                continue  # actr_reassembly_drops_total
            if layer == "pending" and event == "in_flight":
                continue  # a gauge: actr_pending_calls
            yield {"layer": layer, "event": event}, n
