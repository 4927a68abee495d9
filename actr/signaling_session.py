"""The signaling session (sans-IO): envelopes out, events in (PROTOCOL.md 4.2).

``Session`` builds every envelope this side sends (``envelope_version`` 2, a
fresh ``envelope_id``, the actor's id and credential stamped on the body),
remembers which waiter each request's ``envelope_id`` belongs to and which
target each relay went to, and turns each frame the server sends into one event:
an answer or a refusal for a waiter, a relay from a peer, a presence change, a
refused relay, or something only to log. It does no I/O and keeps no clock: the
shell awaits each answer for its own timeout, then ``forget``s the request.
The waiter is opaque here (the shell uses a Future).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from actr.errors import ActrError
from actr.identity import id_text
from actr.protocol.actr_pb2 import ActrId, RegisterOk
from actr.protocol.signaling_pb2 import (
    ActrRelay,
    ActrToSignaling,
    SignalingEnvelope,
    SignalingToActr,
)
from actr.wire import ENVELOPE_VERSION

__all__ = [
    "Answered",
    "Dropped",
    "Event",
    "Failed",
    "PresenceChanged",
    "RelayReceived",
    "RelayRefused",
    "Session",
    "Unmatched",
    "new_envelope",
]

W = TypeVar("W")

# Relays remembered for matching the server's refusal to their target; the oldest go first.
MAX_RELAY_TARGETS = 1024


@dataclass(frozen=True, slots=True)
class Answered(Generic[W]):
    """The server answered the request of ``waiter``."""

    waiter: W
    body: SignalingToActr


@dataclass(frozen=True, slots=True)
class Failed(Generic[W]):
    """The server refused the request of ``waiter`` (an error answer or envelope_error)."""

    waiter: W
    error: ActrError


@dataclass(frozen=True, slots=True)
class RelayReceived:
    """A peer relayed ``relay`` to this side (SDP, ICE, role assignment)."""

    relay: ActrRelay


@dataclass(frozen=True, slots=True)
class RelayRefused:
    """The server refused a relay this side sent to ``target`` (id text)."""

    target: str
    error: ActrError


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """An actor of a subscribed type came up or went down (SIG-7)."""

    up: bool
    actor: ActrId


@dataclass(frozen=True, slots=True)
class Unmatched:
    """An error for nothing this side waits on: only logged."""

    flow: str  # server_to_actr | envelope_error
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame that could not be used: only logged."""

    reason: str  # undecodable_frame | incomplete_frame | unexpected_flow
    detail: str  # size=... | flow=...


Event = (
    Answered[W] | Failed[W] | RelayReceived | RelayRefused | PresenceChanged | Unmatched | Dropped
)


def new_envelope() -> SignalingEnvelope:
    return SignalingEnvelope(envelope_version=ENVELOPE_VERSION, envelope_id=uuid.uuid4().hex)


def _stamp(body: ActrToSignaling | ActrRelay, registration: RegisterOk) -> None:
    body.source.CopyFrom(registration.actr_id)
    body.credential.CopyFrom(registration.credential)


class Session(Generic[W]):
    def __init__(self, max_relay_targets: int = MAX_RELAY_TARGETS) -> None:
        self._waiters: dict[str, W] = {}
        self._relay_targets: OrderedDict[str, str] = OrderedDict()
        self._max_relay_targets = max_relay_targets

    def __len__(self) -> int:
        """Requests waiting for an answer."""
        return len(self._waiters)

    # -- out -----------------------------------------------------------------

    def request(
        self, body: ActrToSignaling, registration: RegisterOk, waiter: W
    ) -> tuple[str, bytes]:
        """The envelope id and bytes of request ``body``; its answer goes to ``waiter``."""
        _stamp(body, registration)
        env = new_envelope()
        env.actr_to_server.CopyFrom(body)
        self._waiters[env.envelope_id] = waiter
        return env.envelope_id, env.SerializeToString()

    def relay(self, relay: ActrRelay, registration: RegisterOk) -> bytes:
        """The envelope of ``relay``; a refusal of it names its target."""
        _stamp(relay, registration)
        env = new_envelope()
        env.actr_relay.CopyFrom(relay)
        self._relay_targets[env.envelope_id] = id_text(relay.target)
        while len(self._relay_targets) > self._max_relay_targets:
            self._relay_targets.popitem(last=False)
        return env.SerializeToString()

    def forget(self, envelope_id: str) -> None:
        """The shell stopped waiting (answered, timed out, cancelled): a late answer is
        ignored."""
        self._waiters.pop(envelope_id, None)

    def fail_all(self) -> list[W]:
        """The socket is gone: every waiter, no longer waiting here."""
        waiters = list(self._waiters.values())
        self._waiters.clear()
        return waiters

    # -- in ------------------------------------------------------------------

    def receive(self, data: bytes) -> Event[W] | None:
        """The event one frame from the server makes; None: nothing to do."""
        env = SignalingEnvelope()
        try:
            env.ParseFromString(data)
        except Exception:  # hostile bytes may break the parser in more ways than one
            return Dropped("undecodable_frame", f"size={len(data)}")
        if not env.IsInitialized():
            return Dropped("incomplete_frame", f"size={len(data)}")
        flow = env.WhichOneof("flow")
        if flow == "actr_relay":
            return RelayReceived(env.actr_relay)
        if flow == "server_to_actr":
            return self._from_server(env.reply_for, env.server_to_actr)
        if flow == "envelope_error":
            err = env.envelope_error
            waiter = self._waiters.pop(env.reply_for, None) if env.reply_for else None
            if waiter is not None:
                return Failed(waiter, ActrError.from_proto(err))
            return Unmatched("envelope_error", err.code, err.message)
        return Dropped("unexpected_flow", f"flow={flow}")

    def _from_server(self, reply_for: str, body: SignalingToActr) -> Event[W] | None:
        kind = body.WhichOneof("payload")
        waiter = self._waiters.pop(reply_for, None) if reply_for else None
        if waiter is not None:
            if kind == "error":
                return Failed(waiter, ActrError.from_proto(body.error))
            return Answered(waiter, body)
        if kind == "actr_up_event":
            return PresenceChanged(True, body.actr_up_event.actor_id)
        if kind == "actr_down_event":
            return PresenceChanged(False, body.actr_down_event.actor_id)
        if kind == "error":
            target = self._relay_targets.pop(reply_for, None)
            if target is not None:
                return RelayRefused(target, ActrError.from_proto(body.error))
            return Unmatched("server_to_actr", body.error.code, body.error.message)
        return None  # an answer nobody waits for any more
