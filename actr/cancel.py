"""X-CALL-1: cancelling a call, at both ends.

Caller: a call whose task is cancelled before its answer (``task.cancel()``, or
``CallHandle.cancel()`` of ``Node.start_call``) tells the callee, when its Hello
lists ``cancel``, with a TELL to ``actr.v1.Runtime.Cancel`` on RPC_SIGNAL:
fire-and-forget, never raising into the cancelled caller (``send_cancel``).

Callee: the scheduler cancels the running handler of ``(caller, request_id)``
(it sees ``CancelledError``), or a request still in the mailbox is marked here
(``CancelMarks``) and, when handed out, acked without running. Either way the
stored answer is CANCELLED (``cancelled_answer``), so a retry with the same id
gets CANCELLED, never a rerun (ENV-6), and nothing is sent to the caller.

The marks live in memory: a process that dies with a marked request queued runs
it after its restart (its caller gave up; its answer is stored as usual).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

from actr.envelopes import error_answer
from actr.errors import ErrorCode
from actr.hello import CANCEL
from actr.inbound import CANCEL_ROUTE
from actr.protocol.actr_pb2 import CancelCall, Direction, PayloadType, RpcEnvelope
from actr.transport import Peer

__all__ = ["CallHandle", "CancelMarks", "cancel_envelope", "cancelled_answer", "send_cancel"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a cancel for a request not (yet) known is remembered: a Cancel travels on
# RPC_SIGNAL, its request on RPC_RELIABLE, and nothing orders the two channels. A
# queued request's mark lasts until it is handed out, or QUEUED_TTL at most (a mark
# left by a request acked meanwhile goes then).
EARLY_CANCEL_TTL = 30.0
QUEUED_TTL = 3600.0
MAX_MARKS = 10_000

_sending: set[asyncio.Task[None]] = set()


def cancel_envelope(request_id: str) -> RpcEnvelope:
    return RpcEnvelope(
        route_key=CANCEL_ROUTE,
        payload=CancelCall(request_id=request_id).SerializeToString(),
        direction=Direction.DIRECTION_TELL,
        request_id=uuid.uuid4().hex,
        timeout_ms=0,
    )


def send_cancel(peer: Peer, request_id: str, counters: Counter[str]) -> None:
    """Tells ``peer`` that the call ``request_id`` is given up, if it speaks ``cancel``;
    in the background, and whatever happens to it, it raises nothing."""
    if CANCEL not in peer.features or peer.closed:
        counters["cancel_not_sent"] += 1
        return
    data = cancel_envelope(request_id).SerializeToString()

    async def send() -> None:
        try:
            await peer.send(PayloadType.RPC_SIGNAL, data)
            counters["cancel_sent"] += 1
        except Exception as e:
            counters["cancel_send_failed"] += 1
            log.info("cancel_send_failed peer=%s error=%r", peer.key, e)

    task = asyncio.ensure_future(send())
    _sending.add(task)
    task.add_done_callback(_sending.discard)


def cancelled_answer(env: RpcEnvelope) -> bytes:
    """The stored answer of a request cancelled by its caller."""
    return error_answer(env, ErrorCode.CANCELLED, "cancelled by the caller").SerializeToString()


class CancelMarks:
    """Requests cancelled before they ran, by (caller key, request_id)."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._marks: dict[tuple[str, str], float] = {}  # -> until, oldest first

    def __len__(self) -> int:
        return len(self._marks)

    def mark(self, key: tuple[str, str], queued: bool) -> None:
        now = self._clock()
        marks = self._marks
        if len(marks) >= MAX_MARKS:
            self._marks = marks = {k: t for k, t in marks.items() if t > now}
            while len(marks) >= MAX_MARKS:  # still full: the oldest go
                del marks[next(iter(marks))]
        marks.pop(key, None)
        marks[key] = now + (QUEUED_TTL if queued else EARLY_CANCEL_TTL)

    def take(self, key: tuple[str, str]) -> bool:
        """Whether ``key`` was cancelled (the mark goes)."""
        until = self._marks.pop(key, None)
        return until is not None and until > self._clock()


class CallHandle(Generic[T]):
    """A call under way (``Node.start_call``): await it for the answer, ``cancel()``
    to give it up (the callee is told, X-CALL-1; awaiting then raises
    ``CancelledError``)."""

    def __init__(self, request_id: str, work: Awaitable[T]) -> None:
        self.request_id = request_id
        self.task: asyncio.Task[T] = asyncio.ensure_future(work)

    def cancel(self) -> bool:
        return self.task.cancel()

    def done(self) -> bool:
        return self.task.done()

    def __await__(self) -> Generator[Any, None, T]:
        return self.task.__await__()
