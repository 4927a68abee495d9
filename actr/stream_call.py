"""The caller's side of a call with streams (docs/protocol.md X-STR-6): ``StreamCall``.

``actr.calls`` sets one up (stream ids, the receiver registered before the
REQUEST, the sender, the pending answer); this is what the user holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError, Message

from actr.call_streams import Receives, Sends, encode_record, typed_input
from actr.errors import ActrError, Cancelled, DecodeFailure, Internal, InvalidArgument

__all__ = ["StreamCall"]

R = TypeVar("R")


class StreamCall(Generic[R]):
    """One call with streams (X-STR-6), on the caller's side.

        async with node.open_call(target, route, request, out=Reply) as call:
            async for reply in call:        # the answer stream, decoded
                ...
            await call.result()             # the RESPONSE (empty for a server stream)

        async with node.open_call(target, route, send=Item, response_type=Summary) as call:
            for item in items:
                await call.send(item)       # paced by the receiver's credit
            summary = await call.result()   # ends the input stream first

    Leaving the ``async with`` with an exception, or ``cancel()``, cancels the call
    (X-CALL-1): the callee's handler is cancelled and both streams are reset."""

    def __init__(
        self,
        request_id: str,
        answer: asyncio.Future[bytes],
        *,
        rx: Receives | None,
        tx: Sends | None,
        send_type: type[Message] | type[bytes] | None,
        out_type: type[Message] | type[bytes] | None,
        response_type: type[Message] | None,
        on_cancel: Callable[[], None],
    ) -> None:
        self.request_id = request_id
        self._answer = answer
        self._rx = rx
        self._tx = tx
        self._send_type = send_type
        self._out_type = out_type
        self._response_type = response_type
        self._on_cancel = on_cancel
        self._sending_done = tx is None
        self._cancelled = False
        self._outputs_iter: AsyncIterator[Any] | None = None

    async def send(self, item: Message | bytes) -> None:
        """Sends one element on the call's input stream (waits for credit)."""
        if self._tx is None or self._send_type is None:
            raise InvalidArgument("this call has no input stream (open_call(send=...))")
        if self._sending_done:
            raise InvalidArgument("the input stream is ended")
        if self._answer.done():
            # The callee answered (or failed) already: what it said, not a send error.
            await self.result()
            raise Internal("the call was answered before its input stream ended")
        try:
            await self._tx.send(encode_record(item, self._send_type))
        except ActrError:
            # The callee ended the input stream (its handler finished or failed): its
            # answer, which follows, says why; a success answer leaves the send error.
            if not self._cancelled:
                await self.result()
            raise

    @property
    def succeeded(self) -> bool:
        """The call's answer came, and it is not an error."""
        a = self._answer
        return a.done() and not a.cancelled() and a.exception() is None

    async def done_sending(self) -> None:
        """Ends the input stream (end of stream)."""
        if not self._sending_done and self._tx is not None:
            self._sending_done = True
            await self._tx.end()

    def __aiter__(self) -> AsyncIterator[Any]:
        """The answer stream, decoded: one iterator for the call's life (iterating
        again goes on where the last loop stopped)."""
        if self._rx is None or self._out_type is None:
            raise InvalidArgument("this call has no answer stream (open_call(out=...))")
        if self._outputs_iter is None:
            self._outputs_iter = self._outputs(self._rx, self._out_type)
        return self._outputs_iter

    async def _outputs(self, rx: Receives, kind: type[Message] | type[bytes]) -> AsyncIterator[Any]:
        try:
            async for item in typed_input(rx, kind):
                yield item
        except ActrError:
            # A reset of the answer stream comes with the call's answer (bounded by
            # its deadline): its error is the one the caller should see.
            if not self._cancelled:
                await self.result()
            raise

    async def result(self) -> Any:
        """The call's answer: the decoded reply (``response_type``), else the raw
        payload. Ends the input stream first if it is still open."""
        if self._cancelled:
            raise Cancelled("the call was cancelled")
        if not self._sending_done:
            with contextlib.suppress(ActrError):  # the answer says why the stream went
                await self.done_sending()
        payload = await self._answer
        if self._response_type is None:
            return payload
        reply = self._response_type()
        try:
            reply.ParseFromString(payload)
        except DecodeError as e:
            raise DecodeFailure(
                f"answer is not a {self._response_type.DESCRIPTOR.full_name}"
            ) from e
        return reply

    def cancel(self) -> None:
        """Gives the call up: the callee is told (X-CALL-1), both streams reset."""
        if self._cancelled or self._answer.done():
            return
        self._cancelled = True
        self._on_cancel()  # the answer is cancelled: its streams end CANCELLED

    async def __aenter__(self) -> StreamCall[R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.cancel()
            return
        rx = self._rx
        if rx is not None and rx.closed and not self._answer.done():
            # The answer stream was read to its end: the RESPONSE follows it (another
            # channel), and a cancel now could undo a call that completed.
            with contextlib.suppress(ActrError):
                await self._answer
        if rx is not None:
            rx.close()
        if not self._answer.done():
            # Left without reading the answer: it is not wanted.
            self.cancel()
