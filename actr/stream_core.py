"""Data streams, sans-IO: streams received, keyed (sender, stream_id), and sending
ends' credit, keyed (receiver, stream_id). Events in, ``Effects`` out.

The rules (PROTOCOL.md 2, DataStream; F7; docs/protocol.md X-STR-2..8):
- a stream is one stream_id *from one sender*; at most ``max_streams_per_sender``
  per sender and ``max_streams`` in all (else StreamLimit, ``stream_limit``);
- chunks of no stream (the same id open from another sender too, counted
  ``chunk_from_other_sender``) are held a while (X-STR-8, ``actr.stream_hold``),
  with their sender's reset; a registration in time takes them, else they drop
  (``unregistered_stream``) and a sender that reads control frames is reset;
- chunks are released in sequence order, at most ``max_reorder`` ahead held
  (``sequence_too_far``); ``end_of_stream`` ends it once all before it came
  (later ones: ``chunk_after_end``; repeats: ``duplicate_chunk``);
- a credit stream (X-STR-3) is granted ``consumed + window`` once its reader took
  half a window since the last grant; payload past the limit resets it
  RESOURCE_EXHAUSTED (``credit_overrun``); another reliable one breaks past
  ``max_buffered_bytes`` (``buffer_overflow``, StreamOverflow);
- latency-first (X-STR-7): gaps skipped after ``gap_wait`` or ``gap_chunks``, a
  slow reader loses the oldest (``reader_behind``), both as a ``Gap``;
- a reset (X-STR-4) from the stream's sender fails it after what was released;
  else ``forged_reset``. A reader closing early, or the stream idle
  (``stream_expired``), resets a sender that reads controls.
Every drop is counted by reason in ``drops`` (the first, every LOG_EVERY-th logged).
"""

from __future__ import annotations

import logging
from collections import Counter

from actr.errors import ActrError, ErrorCode, ResourceExhausted, TimedOut
from actr.protocol.actr_pb2 import DataStream
from actr.stream_credit import DEFAULT_WINDOW, Control, Gap, OutTable, grant_frame, reset_frame
from actr.stream_hold import EarlyHold, Expired
from actr.stream_latency import LatencyRules
from actr.stream_state import Effects, IdleTimers, Item, Slots, Stream, StreamLimit, StreamOverflow

__all__ = ["LOG_EVERY", "Effects", "Gap", "Stream", "StreamCore", "StreamLimit", "StreamOverflow"]

log = logging.getLogger(__name__)
FORGED, UNKNOWN = "forged_reset", "grant_unknown_stream"  # controls naming no stream

# A flood of bad chunks must not flood the log: the first drop of each reason is
# logged, then every LOG_EVERY-th; the counters have them all.
LOG_EVERY = 1000


class StreamCore:
    def __init__(
        self,
        *,
        max_reorder: int = 1024,
        max_buffered_bytes: int = 16 * 1024 * 1024,
        idle_timeout: float | None = 300.0,
        window: int = DEFAULT_WINDOW,
        gap_wait: float = 0.05,
        gap_chunks: int = 32,
        max_unread: int = 256,
        hold: EarlyHold | None = None,
        max_streams_per_sender: int = 16,
        max_streams: int = 256,
    ) -> None:
        self.max_reorder = max_reorder
        self.max_buffered_bytes = max_buffered_bytes
        self.idle_timeout = idle_timeout  # None: streams never expire
        self.window = window  # this side's receive window (its Hello's stream_window)
        self.drops: Counter[str] = Counter()
        self.hold = hold or EarlyHold()
        self.out = OutTable()
        self.latency = LatencyRules(
            self.drops,
            self._release_waiting,
            gap_wait=gap_wait,
            gap_chunks=gap_chunks,
            max_unread=max_unread,  # items released and not yet taken
        )
        self._table: dict[tuple[str, str], Stream] = {}
        # stream_id -> how many senders it is registered for (to name a drop's reason).
        self._ids: Counter[str] = Counter()
        self._peers: dict[str, int] = {}  # peers that speak stream-credit -> their window
        self._idle = IdleTimers(idle_timeout)
        self.slots = Slots(max_streams_per_sender, max_streams)

    def __len__(self) -> int:
        return len(self._table)

    def get(self, stream_id: str, sender: str) -> Stream | None:
        return self._table.get((sender, stream_id))

    def speaks_credit(self, peer: str) -> bool:
        return peer in self._peers

    def peer_window(self, peer: str) -> int | None:
        """The window ``peer``'s Hello granted our streams, None if it is base."""
        return self._peers.get(peer)

    def open(
        self,
        stream_id: str,
        sender: str,
        now: float,
        *,
        max_reorder: int | None = None,
        max_buffered_bytes: int | None = None,
        credit: bool = False,
        latency_first: bool = False,
        window: int | None = None,
    ) -> tuple[Stream, Effects]:
        """Registers the stream ``stream_id`` of ``sender`` and gives it the chunks
        held for it; ValueError if it is open, StreamLimit (counted ``stream_limit``)
        past a cap. ``credit``: the sender speaks stream-credit (also assumed once
        ``set_peer`` said so)."""
        key = (sender, stream_id)
        if key in self._table:
            raise ValueError(f"stream {stream_id!r} from {sender} is already registered")
        stream = Stream(
            stream_id,
            sender,
            self.max_reorder if max_reorder is None else max_reorder,
            self.max_buffered_bytes if max_buffered_bytes is None else max_buffered_bytes,
            last_active=now,
            latency_first=latency_first,
            peer_speaks=credit or sender in self._peers,
            window=self.window if window is None else window,
        )
        stream.credit_limit = stream.window
        fx = Effects()
        try:
            self.slots.take(stream)
        except StreamLimit as e:
            self.drops["stream_limit"] += 1
            log.warning("stream_limit sender=%s stream=%s: %s", sender, stream_id, e)
            raise
        early, err, reset = self.hold.claim(key)
        if err is not None:  # its first chunks were dropped: it can never deliver
            stream.registered = False
            stream.error = err
            self.slots.settle(stream)
            fx.wake.append(stream)
            return stream, fx
        self._table[key] = stream
        self._ids[stream_id] += 1
        self._idle.add(stream, now, len(self._table))
        for chunk in early:
            if stream.registered:
                self._chunk(stream, chunk, now, fx)
        if reset is not None and stream.registered:  # its sender's reset came early too
            self._break(stream, reset, now)
            fx.wake.append(stream)
        return stream, fx

    def close(self, stream: Stream, now: float, err: ActrError | None = None) -> Effects:
        """Its reader is done with it: it leaves the table and what it held is freed;
        a sender that reads control frames is told CANCELLED if it was still open
        (or ``err``, which the reader then raises: its call failed, X-STR-6). With
        ``err``, a stream that ended with chunks unread raises it instead of them:
        its call failed, and a truncated stream must not look whole."""
        fx = Effects()
        if stream.registered:
            self._leave(stream, now)
            code, text = (err.raw_code, err.message) if err else (ErrorCode.CANCELLED, "")
            self._reset_sender(stream, code, text or "receiver closed the stream", fx)
            stream.error = err
        elif err is not None and stream.error is None and stream.unread:
            stream.error = err
        stream.clear(released=True)
        self.slots.settle(stream)
        return fx

    def take(self, stream: Stream, now: float) -> tuple[Item | None, list[Control]]:
        """The reader takes the next item (a chunk, or a Gap), or None when nothing
        is released (then, if ``registered`` is False, the stream is over: ended,
        or ``error``); and the grant this earns its sender, if any."""
        item = stream.pop()
        self.slots.settle(stream)
        if item is None:
            return None, []
        stream.last_active = now
        if isinstance(item, Gap):
            return item, []
        stream.consumed += len(item.payload)
        return item, self._grant(stream) if stream.credit else []

    def receive(self, sender: str, frame: DataStream, now: float) -> Effects:
        """A chunk or a control frame from ``sender``."""
        fx = Effects()
        if frame.HasField("control"):
            self._control(sender, frame, now, fx)
            return fx
        key = (sender, frame.stream_id)
        stream = self._table.get(key)
        if stream is not None:
            self._chunk(stream, frame, now, fx)
        elif self.hold.tombstoned(key, now):
            self._count("unregistered_stream", frame, sender)
        else:
            if frame.stream_id in self._ids:  # F7: another sender's id; held as its own
                self._count("chunk_from_other_sender", frame, sender)
            full = self.hold.add(key, frame, now)
            if full is not None:
                self._expired(full, fx)
            else:
                fx.deadline = now + self.hold.hold_time
        return fx

    def set_peer(self, peer: str, *, credit: bool, window: int, now: float) -> Effects:
        """What ``peer``'s Hello said (X-HELLO-1). Credit applies from now on to its
        open streams both ways; ``window`` is the credit it grants our streams."""
        fx = Effects()
        if not credit:
            self._peers.pop(peer, None)
            return fx
        self._peers[peer] = window
        for stream in [s for s in self._table.values() if s.sender == peer]:
            if stream.peer_speaks:
                continue
            stream.peer_speaks = True
            if stream.credit:
                # It counted against our window from its first byte: check and grant.
                if stream.received > stream.credit_limit:
                    self._overrun(stream, now, fx)
                    continue
                fx.send += self._grant(stream)
        fx.senders += self.out.use_credit(peer, window)
        return fx

    def fail_sender(self, sender: str, err: Exception) -> Effects:
        """``sender``'s connection is gone: its open streams break, both ways."""
        fx = Effects()
        self._peers.pop(sender, None)  # a new connection sends a new Hello
        for stream in [s for key, s in self._table.items() if key[0] == sender]:
            self._break(stream, err, None)
            fx.wake.append(stream)
        fx.senders += self.out.fail_peer(sender, err)
        return fx

    def expire(self, now: float) -> Effects:
        """Ends, with TimedOut, every stream idle for ``idle_timeout``; skips the
        gaps of latency-first streams that waited ``gap_wait``; drops early chunks
        held for ``hold_time``."""
        fx = Effects()
        ttl = self.idle_timeout
        for stream in self._idle.due(now):
            self.drops["stream_expired"] += 1
            msg = "stream_expired sender=%s stream=%s idle=%.0fs unread=%d"
            log.warning(msg, stream.sender, stream.stream_id, ttl, stream.unread)
            err = TimedOut(f"stream {stream.stream_id}: idle for {ttl:g}s")
            self._break(stream, err, now)
            self._reset_sender(stream, ErrorCode.TIMED_OUT, err.message, fx)
            stream.clear(released=True)  # nobody read it for that long: it goes too
            self.slots.settle(stream)
            fx.wake.append(stream)
            fx.expired += 1
        fx.wake += self.latency.expire(now)
        for gone in self.hold.expire(now):
            self._expired(gone, fx)
        return fx

    def next_deadline(self) -> float | None:
        """When ``expire`` has something to do next (maybe earlier: it then re-arms)."""
        times = (self._idle, self.latency, self.hold)
        return min((t for x in times if (t := x.next_deadline()) is not None), default=None)

    def stats(self) -> dict[str, int]:
        return {
            "inbound_open": len(self._table),
            "outbound_open": len(self.out),
            "held_early_chunks": self.hold.chunks,
            "held_early_bytes": self.hold.bytes,
            "credit_peers": len(self._peers),
        }

    def _chunk(self, stream: Stream, chunk: DataStream, now: float, fx: Effects) -> None:
        sender, seq = stream.sender, chunk.sequence
        if seq < stream.next_sequence or seq in stream._held:
            self._count("duplicate_chunk", chunk, sender)
            return
        if stream._end_at is not None and seq > stream._end_at:
            self._count("chunk_after_end", chunk, sender)
            return
        if seq - stream.next_sequence > stream.max_reorder:
            # Not held, and nothing allocated for it, however large the number.
            self._count("sequence_too_far", chunk, sender)
            return
        size = len(chunk.payload)
        stream.received += size  # counted always: credit may apply later (set_peer)
        if stream.credit:
            if stream.received > stream.credit_limit:
                self._count("credit_overrun", chunk, sender)
                self._overrun(stream, now, fx)
                return
        elif not stream.latency_first and stream.buffered_bytes + size > stream.max_buffered_bytes:
            self._count("buffer_overflow", chunk, sender)
            self._break(stream, StreamOverflow(f"stream {stream.stream_id}: buffer full"), now)
            fx.wake.append(stream)
            return
        stream.last_active = now
        if chunk.end_of_stream:
            stream._end_at = seq
            for later in stream.drop_held_after(seq):
                self._count("chunk_after_end", later, sender)
        if seq != stream.next_sequence:
            stream.hold(chunk, now)
            if stream.latency_first:
                news, fx.deadline = self.latency.on_held(stream, now)
                if news:
                    fx.wake.append(stream)
            return
        self._release(stream, chunk, now)
        self._release_waiting(stream, now)
        if stream.latency_first:
            fx.deadline = self.latency.on_released(stream, now)
        fx.wake.append(stream)

    def _control(self, sender: str, frame: DataStream, now: float, fx: Effects) -> None:
        ctl = frame.control
        if ctl.from_receiver:  # about a stream we send to ``sender``
            out = self.out.on_control(sender, frame)
            if out is not None:
                fx.senders.append(out)
            elif self.out.ended_lately(sender, frame.stream_id):
                self.drops["late_control"] += 1  # crossed its stream's end: benign
            else:
                self._count(FORGED if ctl.HasField("reset") else UNKNOWN, frame, sender)
            return
        stream = self._table.get((sender, frame.stream_id))
        if not ctl.HasField("reset"):
            self._count("bad_control", frame, sender)
        elif stream is None:
            if not self.hold.hold_reset((sender, frame.stream_id), ActrError.from_proto(ctl.reset)):
                self._count("forged_reset", frame, sender)
        else:
            err = ActrError.from_proto(ctl.reset)
            log.info("stream_reset sender=%s stream=%s error=%s", sender, frame.stream_id, err)
            self._break(stream, err, now)
            fx.wake.append(stream)

    def _grant(self, stream: Stream) -> list[Control]:
        if not stream.registered or stream.consumed - stream.granted_at < stream.window // 2:
            return []
        stream.granted_at = stream.consumed
        stream.credit_limit = stream.consumed + stream.window
        return [(stream.sender, grant_frame(stream.stream_id, stream.credit_limit))]

    def _overrun(self, stream: Stream, now: float, fx: Effects) -> None:
        err = ResourceExhausted(f"stream {stream.stream_id}: credit overrun")
        self._break(stream, err, now)
        self._reset_sender(stream, ErrorCode.RESOURCE_EXHAUSTED, err.message, fx)
        fx.wake.append(stream)

    def _reset_sender(self, stream: Stream, code: int, message: str, fx: Effects) -> None:
        if stream.peer_speaks:
            frame = reset_frame(stream.stream_id, code, message, from_receiver=True)
            fx.send.append((stream.sender, frame))

    def _expired(self, gone: Expired, fx: Effects) -> None:
        (sender, sid), err = gone.key, gone.error
        self.drops[gone.reason] += gone.chunks
        msg = "stream_early_dropped reason=%s sender=%s stream=%s chunks=%d"
        log.warning(msg, gone.reason, sender, sid, gone.chunks)
        if sender in self._peers and not gone.reset:  # a sender that reset it knows
            fx.send.append(
                (sender, reset_frame(sid, err.raw_code, err.message, from_receiver=True))
            )

    def _release(self, stream: Stream, chunk: DataStream, now: float) -> None:
        stream.next_sequence = chunk.sequence + 1
        # An end-of-stream chunk with an empty payload only ends the stream.
        if chunk.payload or not chunk.end_of_stream:
            stream.push(chunk)
        if chunk.end_of_stream:
            self._leave(stream, now)

    def _release_waiting(self, stream: Stream, now: float) -> None:
        while stream.registered and stream.next_sequence in stream._held:
            self._release(stream, stream.unhold(stream.next_sequence), now)

    def _break(self, stream: Stream, err: Exception, now: float | None) -> None:
        stream.error = err
        stream.clear(released=False)
        if stream.registered:
            self._leave(stream, now)

    def _leave(self, stream: Stream, now: float | None) -> None:
        stream.registered = False
        self.slots.settle(stream)
        del self._table[stream.key]
        self._ids[stream.stream_id] -= 1
        if not self._ids[stream.stream_id]:
            del self._ids[stream.stream_id]
        if now is not None:  # its stragglers drop at once rather than wait as early
            self.hold.bury(stream.key, now)

    def _count(self, reason: str, chunk: DataStream, sender: str) -> None:
        self.drops[reason] += 1
        n = self.drops[reason]
        if n == 1 or n % LOG_EVERY == 0:
            msg = "stream_drop reason=%s sender=%s stream=%s seq=%d total=%d"
            log.warning(msg, reason, sender, chunk.stream_id, chunk.sequence, n)
