"""Running one request's handler: from a stored envelope to its answer envelope.

``Handling.handle`` checks the deadline the request waited in the mailbox
(ENV-3), finds the route's handler, decodes the request, builds the handler's
``Context``, runs it inside the handler span (ENV-7: a child of the caller's
span), and turns what it returned or raised into a RESPONSE: the payload,
APPLICATION_ERROR for an exception, the code of an ``ActrError``. The handler's
deadline (X-CALL-2) is its ``ctx.deadline`` and, for the calls it makes, the
``DEADLINE`` context variable. It knows
nothing of the mailbox or the transport: the scheduler acks and answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError, Message
from opentelemetry.trace import SpanKind

from actr import telemetry
from actr.actor import DEADLINE, Actor, Context, Route, Runtime
from actr.call_streams import pump_output, stream_ids
from actr.envelopes import REQUEST, encode, error_answer, payload_answer
from actr.errors import ActrError, ErrorCode
from actr.mailbox import MailboxRecord
from actr.protocol.actr_pb2 import RpcEnvelope

if TYPE_CHECKING:
    from actr.stream_calls import StreamCalls

__all__ = ["HandledObserver", "Handling"]

log = logging.getLogger(__name__)

# Told of every request handled: (route key, answer code (0: OK), seconds, attempt);
# the daemon's metrics (actr/metrics.py) count calls and handler latency with it.
HandledObserver = Callable[[str, int, float, int], None]


class Handling:
    def __init__(
        self,
        actor: Actor,
        runtime: Runtime,
        counters: Counter[str],
        hook: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.actor = actor
        self.routes: dict[str, Route] = type(actor).routes()
        self.runtime = runtime
        self.counters = counters
        # Runs a lifecycle hook (on_error) in the background.
        self._hook = hook
        self.observe: HandledObserver | None = None
        self.stream_calls: StreamCalls | None = None  # calls with streams (X-STR-6)

    async def handle(self, record: MailboxRecord, env: RpcEnvelope) -> RpcEnvelope:
        """The answer to ``env`` (a TELL's is built too, and not sent)."""
        if not telemetry.tracing():
            # No tracer provider installed ([telemetry] exporter = "none"): the spans
            # would be no-ops that still cost ~10 us a request on the loop.
            started = time.perf_counter()
            reply = await self._run(record, env)
        else:
            reply, started = await self._traced(record, env)
        if self.observe is not None:
            code = reply.error.code if reply.HasField("error") else 0
            self.observe(env.route_key, code, time.perf_counter() - started, record.attempts)
        return reply

    async def _traced(self, record: MailboxRecord, env: RpcEnvelope) -> tuple[RpcEnvelope, float]:
        with telemetry.remote_parent(env):
            attrs = {
                "actr.route_key": env.route_key,
                "actr.caller": record.caller,
                "actr.request_id": env.request_id,
            }
            wait = telemetry.tracer.start_span(
                "actr.mailbox_wait",
                attributes=attrs,
                start_time=int(record.accepted_at * 1e9),
            )
            wait.end()
            with telemetry.tracer.start_as_current_span(
                f"actr.handle {env.route_key}", kind=SpanKind.SERVER, attributes=attrs
            ) as span:
                started = time.perf_counter()
                reply = await self._run(record, env)
                if reply.HasField("error"):
                    span.set_attribute("actr.error_code", reply.error.code)
        return reply, started

    async def _run(self, record: MailboxRecord, env: RpcEnvelope) -> RpcEnvelope:
        deadline: float | None = None
        if env.direction == REQUEST:
            waited = time.time() - record.accepted_at
            # X-CALL-2: the deadline runs from acceptance (ENV-3), in loop time.
            deadline = asyncio.get_running_loop().time() + env.timeout_ms / 1000 - waited
            if waited * 1000 > env.timeout_ms:
                self.counters["expired_in_mailbox"] += 1
                return error_answer(
                    env, ErrorCode.TIMED_OUT, f"deadline passed after {waited:.3f}s in mailbox"
                )
        route = self.routes.get(env.route_key)
        if route is None:
            return error_answer(env, ErrorCode.UNKNOWN_ROUTE, f"no handler for {env.route_key}")
        streams = stream_ids(env)
        shape = route.shape
        if any(streams) or not shape.unary:
            wanted = (shape.stream_in is not None, shape.stream_out is not None)
            if wanted != (bool(streams[0]), bool(streams[1])) or env.direction != REQUEST:
                return error_answer(
                    env,
                    ErrorCode.INVALID_ARGUMENT,
                    f"{env.route_key} takes {_shape_text(*wanted)}; "
                    f"the call carries {_shape_text(bool(streams[0]), bool(streams[1]))}",
                )
        request: Message | bytes | AsyncIterator[Any] = env.payload
        if route.request_type is not None:
            msg = route.request_type()
            try:
                msg.ParseFromString(env.payload)
            except DecodeError:
                return error_answer(
                    env,
                    ErrorCode.DECODE_FAILURE,
                    f"payload is not a {route.request_type.DESCRIPTOR.full_name}",
                )
            request = msg
        ctx = Context(
            self.runtime,
            caller_key=record.caller,
            request_id=env.request_id,
            metadata={m.key: m.value for m in env.metadata},
            attempt=record.attempts,
            deadline=deadline,
        )
        handler = getattr(self.actor, route.method_name)
        host = self.stream_calls
        if shape.stream_in is not None and host is not None:
            request = host.input(record.caller, env.request_id, shape.stream_in)
        # Calls the handler makes (ctx.call, node.call, in tasks it starts too) get
        # at most the time left (X-CALL-2).
        token = DEADLINE.set(deadline)
        try:
            if shape.stream_out is not None and host is not None:
                # X-STR-6: what it yields goes out on the answer stream, then the answer.
                out = host.output(record.caller, streams[1])
                await pump_output(handler(request, ctx), out, shape.stream_out)
                result = None
            else:
                result = await handler(request, ctx)
        except ActrError as e:
            return error_answer(env, e.raw_code, e.message)
        except Exception as e:
            log.warning("handler_failed route=%s error=%r", env.route_key, e)
            self.counters["handler_failed"] += 1
            self._hook(self.actor.on_error(ctx, e))
            return error_answer(env, ErrorCode.APPLICATION_ERROR, f"{type(e).__name__}: {e}")
        finally:
            DEADLINE.reset(token)
        try:
            payload = b"" if result is None else encode(result)
        except Exception as e:
            return error_answer(env, ErrorCode.INTERNAL, f"handler result not encodable: {e}")
        return payload_answer(env, payload)


def _shape_text(takes: bool, returns: bool) -> str:
    if takes and returns:
        return "a stream each way"
    if takes:
        return "an input stream"
    return "an answer stream" if returns else "no stream"
