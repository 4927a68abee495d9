"""Tracing (PROTOCOL.md ENV-7): OpenTelemetry spans with W3C context carried in envelopes.

The caller's span context goes into ``traceparent``/``tracestate``; the callee
opens its mailbox-wait and handler spans as children, so one trace covers both
processes. The exporter is chosen in config: none, console or otlp.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import ProxyTracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

from actr.protocol.actr_pb2 import RpcEnvelope

log = logging.getLogger(__name__)

EXPORTERS = ("none", "console", "otlp")
_propagator = TraceContextTextMapPropagator()
tracer = trace.get_tracer("actr")
# A provider named in the environment is loaded by the API on first use.
_ENV_PROVIDER = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_UNKNOWN = object()


def tracing() -> bool:
    """Whether a tracer provider is installed, so spans are worth building (the no-op
    ones still cost ~10 us a message). Asked per message: read from the API's global
    where it has one, not through ``get_tracer_provider``, whose os.environ lookup
    costs ~5 us each time while no provider is installed."""
    provider = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is _UNKNOWN:
        return not isinstance(trace.get_tracer_provider(), ProxyTracerProvider)
    return provider is not None or _ENV_PROVIDER


def setup(exporter: str, service_name: str, endpoint: str = "") -> None:
    """Installs a tracer provider for this process; "none" leaves tracing off."""
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown trace exporter {exporter!r} (one of {', '.join(EXPORTERS)})")
    if exporter == "none":
        return
    # The SDK only where spans are exported: a caller from a shell (actr call) never
    # loads it, and it costs a good part of that command's start-up.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing_enabled exporter=%s", exporter)


def shutdown() -> None:
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "shutdown", None)  # the SDK's provider; the API's has none
    if callable(flush):
        flush()


def inject(env: RpcEnvelope) -> None:
    """Writes the current span's W3C context into the envelope."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    if "traceparent" in carrier:
        env.traceparent = carrier["traceparent"]
        if carrier.get("tracestate"):
            env.tracestate = carrier["tracestate"]


def extract(env: RpcEnvelope) -> otel_context.Context:
    carrier = {"traceparent": env.traceparent}
    if env.tracestate:
        carrier["tracestate"] = env.tracestate
    return _propagator.extract(carrier)


@contextmanager
def remote_parent(env: RpcEnvelope) -> Iterator[None]:
    """Makes the envelope's trace context current for the spans opened inside."""
    if not env.traceparent:
        yield
        return
    token = otel_context.attach(extract(env))
    try:
        yield
    finally:
        otel_context.detach(token)
