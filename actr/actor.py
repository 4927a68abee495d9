"""The actor API: subclass ``Actor``, declare ``actr_type``, decorate async handlers.

    class Echo(Actor):
        actr_type = "acme:echo:1.0"

        @rpc("echo.v1.Echo.Say")
        async def say(self, req: SayRequest, ctx: Context) -> SayReply:
            return SayReply(text=req.text)

The request type comes from the handler's annotation (or ``request=``); a
handler returns a protobuf message, raw ``bytes`` or None (empty payload).
Streaming handlers (X-STR-6, actr/call_streams.py): an async generator streams
its answer; a request annotated ``AsyncIterator[M]`` is a stream the caller sends.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import typing
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from google.protobuf.message import Message

from actr.call_streams import StreamShape, shape_of
from actr.errors import InvalidArgument
from actr.identity import parse_id
from actr.protocol.actr_pb2 import Acl, ActrId

if TYPE_CHECKING:
    from actr.stream_call import StreamCall
    from actr.streams import StreamReceiver, StreamSender

M = TypeVar("M", bound=Message)
Handler = Callable[..., Awaitable[Any]]

_ROUTE_ATTR = "__actr_route__"

# X-CALL-2: the loop time the running handler's request ends (None: no handler, or
# a tell). Set by actr/handling.py around the handler; tasks it starts inherit it,
# and every call made under it gets at most the time left (actr/calls.py).
DEADLINE: ContextVar[float | None] = ContextVar("actr_deadline", default=None)


@dataclass(frozen=True)
class Route:
    route_key: str
    request_type: type[Message] | None  # None: the handler takes raw bytes (or a stream)
    method_name: str
    shape: StreamShape = field(default_factory=StreamShape)  # its streams (X-STR-6)


def rpc(route_key: str, *, request: type[Message] | None = None) -> Callable[[Handler], Handler]:
    """Marks an async method (or async generator: a streamed answer) as the handler
    of ``route_key``."""

    def mark(fn: Handler) -> Handler:
        if not _is_handler(fn):
            raise TypeError(f"handler {fn.__qualname__} for {route_key} must be async")
        setattr(fn, _ROUTE_ATTR, (route_key, request))
        return fn

    return mark


def _is_handler(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _request_type(fn: Handler, explicit: type[Message] | None) -> type[Message] | None:
    if explicit is not None:
        return explicit
    if shape_of(fn).stream_in is not None:
        return None  # the request is the stream; its payload is empty
    params = list(inspect.signature(fn).parameters)
    if len(params) < 2:
        raise TypeError(f"handler {fn.__qualname__} must take (self, request, ctx)")
    hints = typing.get_type_hints(fn)
    hint = hints.get(params[1])
    if hint is bytes or hint is None:
        return None
    if isinstance(hint, type) and issubclass(hint, Message):
        return hint
    raise TypeError(
        f"handler {fn.__qualname__}: request annotation must be a protobuf message or bytes"
    )


class Actor:
    """Base class of actors. Lifecycle hooks are optional overrides."""

    actr_type: ClassVar[str] = ""
    acl: ClassVar[Acl | None] = None
    service: ClassVar[str] = ""

    @classmethod
    def routes(cls) -> dict[str, Route]:
        out: dict[str, Route] = {}
        for name, fn in inspect.getmembers(cls, _is_handler):
            mark = getattr(fn, _ROUTE_ATTR, None)
            if mark is None:
                continue
            key, explicit = mark
            if key in out:
                raise TypeError(f"{cls.__name__}: two handlers for route {key}")
            out[key] = Route(key, _request_type(fn, explicit), name, shape_of(fn))
        return out

    async def on_start(self, ctx: Context) -> None:
        """Runs once registered, before any request is handled; an exception aborts the start."""

    async def on_ready(self, ctx: Context) -> None:
        """Runs once the actor is registered and takes requests."""

    async def on_stop(self, ctx: Context) -> None:
        """Runs once when the daemon stops, after the last handler finished."""

    async def on_error(self, ctx: Context, error: Exception) -> None:
        """Runs when a handler raised; the caller gets APPLICATION_ERROR either way."""

    async def on_signaling(self, ctx: Context, up: bool) -> None:
        """The signaling socket went up or down (the runtime reconnects by itself)."""

    async def on_backpressure(self, ctx: Context, active: bool) -> None:
        """The mailbox filled past its backpressure mark (True), or drained below it."""

    async def on_peer(self, ctx: Context, peer: ActrId, up: bool) -> None:
        """A peer connection to another actor became ready, or closed."""


class Runtime(Protocol):
    """What a Context needs of the runtime that runs it (the node implements it)."""

    @property
    def actr_id(self) -> ActrId: ...

    async def call(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        response_type: type[M],
        *,
        timeout: float = 10.0,
        metadata: Mapping[str, str] | None = None,
    ) -> M: ...

    async def call_raw(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        *,
        timeout: float = 10.0,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes: ...

    async def tell(
        self,
        target: str | ActrId,
        route_key: str,
        message: Message | bytes,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> None: ...

    def receive_stream(
        self, stream_id: str, sender: str | ActrId, *, latency_first: bool = False
    ) -> StreamReceiver: ...

    async def open_stream(
        self, target: str | ActrId, stream_id: str, *, latency_first: bool = False
    ) -> StreamSender: ...

    async def open_call(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes = b"",
        *,
        send: type[Message] | type[bytes] | None = None,
        out: type[Message] | type[bytes] | None = None,
        response_type: type[Message] | None = None,
        timeout: float = 60.0,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> StreamCall[Any]: ...

    def call_stream(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        out: type[M],
        *,
        timeout: float = 60.0,
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncIterator[M]: ...

    async def call_client_stream(
        self,
        target: str | ActrId,
        route_key: str,
        source: AsyncIterable[Any] | Iterable[Any],
        response_type: type[M],
        *,
        timeout: float = 60.0,
        metadata: Mapping[str, str] | None = None,
    ) -> M: ...


class Context:
    """What a handler knows of its call, and its way to reach other actors."""

    def __init__(
        self,
        node: Runtime,
        *,
        caller: ActrId | None = None,
        request_id: str = "",
        metadata: dict[str, str] | None = None,
        attempt: int = 1,
        deadline: float | None = None,
        caller_key: str = "",
    ) -> None:
        self._node = node
        # ``caller_key``: the caller's id text, parsed on first use of ``caller`` (most
        # handlers never look, and building the message costs ~5 us a request).
        self._caller = caller
        self._caller_key = caller_key
        self.request_id = request_id
        self.metadata = metadata or {}
        # How often the mailbox handed this request out: above 1 the process died
        # (or stopped) while an earlier run was under way, so that run's effects
        # may already be there. A handler with effects outside the mailbox's
        # database checks them by request_id when attempt > 1.
        self.attempt = attempt
        # X-CALL-2: the loop time this request's timeout_ms ends, from its acceptance
        # (None outside a handler, and for a tell). A handler still running then is not
        # stopped, but its caller has given up; calls it makes get at most the rest.
        self.deadline = deadline

    @property
    def caller(self) -> ActrId | None:
        if self._caller is None and self._caller_key:
            self._caller = parse_id(self._caller_key)
        return self._caller

    @caller.setter
    def caller(self, value: ActrId | None) -> None:
        self._caller, self._caller_key = value, ""

    @property
    def self_id(self) -> ActrId:
        return self._node.actr_id

    def remaining(self) -> float:
        """Seconds left until ``deadline`` (inf without one; <= 0 once passed)."""
        if self.deadline is None:
            return math.inf
        return self.deadline - asyncio.get_running_loop().time()

    async def call(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        response_type: type[M],
        *,
        timeout: float = 10.0,
        metadata: Mapping[str, str] | None = None,
    ) -> M:
        """Calls ``target``; within a handler, with at most ``remaining()`` (X-CALL-2)."""
        return await self._node.call(
            target, route_key, request, response_type, timeout=timeout, metadata=metadata
        )

    async def call_raw(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        *,
        timeout: float = 10.0,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        return await self._node.call_raw(
            target, route_key, request, timeout=timeout, metadata=metadata
        )

    async def tell(
        self,
        target: str | ActrId,
        route_key: str,
        message: Message | bytes,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        await self._node.tell(target, route_key, message, metadata=metadata)

    def receive_stream(
        self, stream_id: str, sender: str | ActrId | None = None, *, latency_first: bool = False
    ) -> StreamReceiver:
        """The stream ``stream_id`` of ``sender``; in a handler the sender defaults to
        this request's caller (the peer that announced the stream). Chunks of the same
        stream_id from anyone else never reach it."""
        who = sender if sender is not None else self.caller
        if who is None:
            raise InvalidArgument("receive_stream outside a handler needs sender=<ActrId>")
        return self._node.receive_stream(stream_id, who, latency_first=latency_first)

    async def open_stream(
        self, target: str | ActrId, stream_id: str, *, latency_first: bool = False
    ) -> StreamSender:
        return await self._node.open_stream(target, stream_id, latency_first=latency_first)

    # -- calls with streams (X-STR-6; options as the node's) -----------------------

    async def open_call(
        self, target: str | ActrId, route_key: str, request: Message | bytes = b"", **options: Any
    ) -> StreamCall[Any]:
        """A call with streams (``send=``, ``out=``...): see ``Node.open_call``."""
        return await self._node.open_call(target, route_key, request, **options)

    def call_stream(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        out: type[M],
        **options: Any,
    ) -> AsyncIterator[M]:
        """A server-streaming call's answer stream: see ``Node.call_stream``."""
        return self._node.call_stream(target, route_key, request, out, **options)

    async def call_client_stream(
        self,
        target: str | ActrId,
        route_key: str,
        source: AsyncIterable[Any] | Iterable[Any],
        response_type: type[M],
        **options: Any,
    ) -> M:
        """A client-streaming call: see ``Node.call_client_stream``."""
        return await self._node.call_client_stream(
            target, route_key, source, response_type, **options
        )
