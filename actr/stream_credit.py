"""Stream control frames and the sending end's credit, sans-IO (X-STR-3, X-STR-4).

A control frame is a ``DataStream`` with ``control`` set (sequence 0, empty
payload) about the stream ``stream_id``: a grant (``credit_limit``, from the
receiver) or a reset (``reset``, from either end). ``OutStream`` is what the
sending end of one stream knows: what it sent, what it may send, and why it may
not send any more. The waiting itself is ``actr.streams``' (asyncio).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from actr.errors import ActrError, ErrorCode
from actr.protocol.actr_pb2 import DataStream, ErrorResponse, StreamControl

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_WINDOW",
    "Control",
    "Gap",
    "OutStream",
    "grant_frame",
    "reset_frame",
]

# X-STR-3: the credit a receiver grants each stream before its first grant.
DEFAULT_WINDOW = 1024 * 1024
# A payload is sent in chunks of at most this: under one DC-3 fragment, and a big
# send needs only a chunk's worth of credit at a time, not its whole size.
CHUNK_SIZE = 60 * 1024

# (peer key, frame): a control frame for the node to send on STREAM_RELIABLE.
Control = tuple[str, DataStream]


@dataclass(frozen=True, slots=True)
class Gap:
    """Chunks ``first``..``last`` (inclusive) of a latency-first stream that its
    reader will never get: lost, or dropped because the reader fell behind (X-STR-7)."""

    first: int
    last: int


def grant_frame(stream_id: str, credit_limit: int) -> DataStream:
    """From the receiver: the sender may have sent ``credit_limit`` bytes in all."""
    return DataStream(
        stream_id=stream_id,
        sequence=0,
        payload=b"",
        control=StreamControl(credit_limit=credit_limit, from_receiver=True),
    )


def reset_frame(stream_id: str, code: int, message: str, *, from_receiver: bool) -> DataStream:
    return DataStream(
        stream_id=stream_id,
        sequence=0,
        payload=b"",
        control=StreamControl(
            reset=ErrorResponse(code=code, message=message), from_receiver=from_receiver
        ),
    )


def error_code(exc: BaseException) -> tuple[int, str]:
    """The (code, message) a reset carries for ``exc``: an ActrError keeps its own."""
    if isinstance(exc, ActrError):
        return exc.raw_code, exc.message
    return int(ErrorCode.APPLICATION_ERROR), str(exc) or type(exc).__name__


@dataclass(eq=False)
class OutStream:
    """The sending end of one stream to ``peer`` (a peer key; "" for a stream sent
    without a registry, which takes no credit and no control frames)."""

    peer: str
    stream_id: str
    # The peer reads control frames (its Hello lists stream-credit): resets are sent.
    controls: bool = False
    # Credit applies: the peer reads control frames and the stream is reliable.
    credit: bool = False
    latency_first: bool = False
    window: int = 0  # the receiver's initial credit (credit only)
    limit: int = 0  # payload bytes the receiver allows in all (credit only)
    sent: int = 0  # payload bytes sent in all
    sequence: int = 0  # of the next chunk
    error: Exception | None = None  # set: no more sending (reset, failure)
    open: bool = True  # in its registry's table
    writer: object = None  # the asyncio layer's, never touched here

    @property
    def key(self) -> tuple[str, str]:
        return (self.peer, self.stream_id)

    def may_send(self, size: int) -> bool:
        """Whether ``size`` more payload bytes fit the credit (always, without credit)."""
        return not self.credit or self.sent + size <= self.limit

    def grant(self, credit_limit: int) -> bool:
        """A grant from the receiver; True if it raised the limit (grants never lower it)."""
        if credit_limit <= self.limit:
            return False
        self.limit = credit_limit
        return True

    def use_credit(self, window: int) -> None:
        """The peer turned out to speak stream-credit: from now on it counts what was
        sent against its initial ``window`` (a reliable stream) and reads resets."""
        self.controls = True
        if not self.latency_first and not self.credit:
            self.credit = True
            self.window = window
            self.limit = max(self.limit, window)

    def chunk_size(self, size: int = CHUNK_SIZE) -> int:
        """How big one chunk may be: on a credit stream, half the window at most
        (at least 1). The receiver grants once half a window was taken since its
        last grant, so once all that was sent is taken, more than half a window
        of credit is left: such a chunk always fits, and no send waits forever."""
        if self.credit:
            return max(1, min(size, self.window // 2))
        return size


RECENT = 1024  # ended outbound streams remembered, to tell late controls from forged


class OutTable:
    """The streams this side sends, keyed (receiver peer key, stream_id)."""

    def __init__(self) -> None:
        self._table: dict[tuple[str, str], OutStream] = {}
        # Streams that ended lately: a grant or reset for one crossed its end on the
        # wire (benign, not forged). Bounded: the oldest are forgotten.
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def get(self, peer: str, stream_id: str) -> OutStream | None:
        return self._table.get((peer, stream_id))

    def open(
        self, peer: str, stream_id: str, *, controls: bool, window: int, latency_first: bool
    ) -> OutStream:
        """ValueError if ``stream_id`` to ``peer`` is open already."""
        if (peer, stream_id) in self._table:
            raise ValueError(f"stream {stream_id!r} to {peer} is already open")
        out = OutStream(peer, stream_id, latency_first=latency_first)
        if controls:
            out.use_credit(window)
        self._table[out.key] = out
        return out

    def close(self, out: OutStream, error: Exception | None = None) -> None:
        """It ended, was reset or failed: no more sending; leaves the table."""
        if error is not None and out.error is None:
            out.error = error
        if out.open:
            out.open = False
            if self._table.get(out.key) is out:
                del self._table[out.key]
                self._recent[out.key] = None
                if len(self._recent) > RECENT:
                    self._recent.popitem(last=False)

    def ended_lately(self, peer: str, stream_id: str) -> bool:
        """A stream to ``peer`` named ``stream_id`` ended lately (see ``_recent``)."""
        return (peer, stream_id) in self._recent

    def on_control(self, peer: str, frame: DataStream) -> OutStream | None:
        """A control frame from the receiver ``peer``; None if it names no stream we
        send it (forged, or late)."""
        out = self._table.get((peer, frame.stream_id))
        if out is None:
            return None
        ctl = frame.control
        if ctl.HasField("reset"):
            self.close(out, ActrError.from_proto(ctl.reset))
        elif ctl.HasField("credit_limit"):
            out.grant(ctl.credit_limit)
        return out

    def use_credit(self, peer: str, window: int) -> list[OutStream]:
        changed = [o for o in self._table.values() if o.peer == peer and not o.controls]
        for out in changed:
            out.use_credit(window)
        return changed

    def fail_peer(self, peer: str, err: Exception) -> list[OutStream]:
        failed = [o for o in self._table.values() if o.peer == peer]
        for out in failed:
            self.close(out, err)
        return failed
