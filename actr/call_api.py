"""The node's call API (the ``Runtime`` a ``Context`` speaks to), carried out by
``actr.calls.Calls`` (unary calls, tells, plain streams) and
``actr.stream_calls.StreamCalls`` (calls with streams, X-STR-6). ``Node`` mixes it
in; it only delegates.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any, TypeVar

from google.protobuf.message import Message

from actr.calls import Calls
from actr.cancel import CallHandle
from actr.errors import ActrError, InvalidArgument
from actr.identity import IdentityError, id_text, parse_id
from actr.protocol.actr_pb2 import ActrId
from actr.stream_call import StreamCall
from actr.stream_calls import StreamCalls
from actr.streams import StreamReceiver, StreamRegistry, StreamSender

__all__ = ["CallApi"]

M = TypeVar("M", bound=Message)


class CallApi:
    calls: Calls
    stream_calls: StreamCalls
    streams: StreamRegistry

    async def call(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        response_type: type[M],
        *,
        timeout: float = 10.0,
        request_id: str | None = None,
        signal: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> M:
        """Cancelling the awaiting task gives the call up (X-CALL-1); from a handler,
        the call gets at most its remaining time (X-CALL-2)."""
        return await self.calls.call(
            target,
            route_key,
            request,
            response_type,
            timeout=timeout,
            request_id=request_id,
            signal=signal,
            metadata=metadata,
        )

    async def call_raw(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        *,
        timeout: float = 10.0,
        request_id: str | None = None,
        signal: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        return await self.calls.call_raw(
            target,
            route_key,
            request,
            timeout=timeout,
            request_id=request_id,
            signal=signal,
            metadata=metadata,
        )

    def start_call(
        self, target: str | ActrId, route_key: str, request: Message | bytes, **options: Any
    ) -> CallHandle[bytes]:
        """``call_raw`` (same options) under way: ``await handle`` for the answer's
        payload, ``handle.cancel()`` to give it up (X-CALL-1)."""
        return self.calls.start_call(target, route_key, request, **options)

    async def tell(
        self,
        target: str | ActrId,
        route_key: str,
        message: Message | bytes,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        await self.calls.tell(target, route_key, message, metadata=metadata)

    async def open_stream(
        self, target: str | ActrId, stream_id: str, *, latency_first: bool = False
    ) -> StreamSender:
        return await self.stream_calls.open_stream(target, stream_id, latency_first=latency_first)

    def receive_stream(
        self, stream_id: str, sender: str | ActrId, *, latency_first: bool = False
    ) -> StreamReceiver:
        """Registers the stream ``stream_id`` of ``sender`` (an ActrId or its text):
        only that peer's chunks reach it (chunks a little early are held, X-STR-8).
        ``latency_first``: the sender uses the lossy channel; gaps are skipped after
        a bound and reported (``events()``, ``gaps``; X-STR-7)."""
        if isinstance(sender, ActrId):
            key = id_text(sender)
        else:
            try:
                key = id_text(parse_id(sender))
            except IdentityError as e:
                raise InvalidArgument(f"stream sender: {e}") from e
        return self.streams.register(stream_id, key, latency_first=latency_first)

    # -- calls with streams (X-STR-6) ---------------------------------------------

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
    ) -> StreamCall[Any]:
        """A call whose handler takes a stream (``send``: its element type) and/or
        streams its answer (``out``); see ``actr.stream_call.StreamCall``."""
        return await self.stream_calls.open_call(
            target,
            route_key,
            request,
            send=send,
            out=out,
            response_type=response_type,
            timeout=timeout,
            metadata=metadata,
            request_id=request_id,
        )

    async def call_stream(
        self,
        target: str | ActrId,
        route_key: str,
        request: Message | bytes,
        out: type[M],
        *,
        timeout: float = 60.0,
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncIterator[M]:
        """A server-streaming call: its answer stream's elements, then its answer's
        error if it failed. Leaving the loop early cancels the call."""
        call = await self.open_call(
            target, route_key, request, out=out, timeout=timeout, metadata=metadata
        )
        async with call:
            async for item in call:
                yield item
            await call.result()

    async def call_client_stream(
        self,
        target: str | ActrId,
        route_key: str,
        source: AsyncIterable[Any] | Iterable[Any],
        response_type: type[M],
        *,
        timeout: float = 60.0,
        metadata: Mapping[str, str] | None = None,
    ) -> M:
        """A client-streaming call: sends every element of ``source`` (messages, or
        bytes), ends the stream, returns the decoded answer."""
        items = _aiter(source)
        try:
            first = await anext(items)
        except StopAsyncIteration:
            first = None
        kind: type[Message] | type[bytes] = (
            bytes
            if first is None or isinstance(first, bytes | bytearray | memoryview)
            else type(first)
        )
        call = await self.open_call(
            target,
            route_key,
            send=kind,
            response_type=response_type,
            timeout=timeout,
            metadata=metadata,
        )
        async with call:
            try:
                if first is not None:
                    await call.send(first)
                    async for item in items:
                        await call.send(item)
            except ActrError:
                if not call.succeeded:
                    raise
                # The handler answered without reading all of it: that answer stands.
            reply: M = await call.result()
            return reply


async def _aiter(source: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item
