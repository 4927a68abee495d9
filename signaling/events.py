"""What one server node tells the others (PROTOCOL.md SIG-10), and its wire form. No I/O.

The dispatcher announces each change of shared state as one of these events;
with Redis configured, the cluster publishes them and every other node applies
them to its own registry (``Dispatcher.apply``). A registration itself is
stored in Redis (``record_fields`` / ``record_from_fields``) and announced as
``Granted``, after which the other nodes read it back.

Events travel as compact JSON; the sending node's id rides along so a node
skips its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from actr.identity import IdentityError, id_text
from actr.protocol.actr_pb2 import Acl, ActrId, AIdCredential, ServiceSpec
from signaling.record import TOKEN_HASH_LEN, ActorRecord, TypeKey

__all__ = [
    "Backlog",
    "Contact",
    "Event",
    "EventDecodeError",
    "Granted",
    "Offline",
    "Online",
    "Subscription",
    "decode_event",
    "encode_event",
    "record_fields",
    "record_from_fields",
]


@dataclass(frozen=True, slots=True)
class Granted:
    """Registered or renewed: read the stored registration again."""

    key: str


@dataclass(frozen=True, slots=True)
class Online:
    """The actor's socket is on ``node``; ``generation`` orders its attaches (newest wins)."""

    key: str
    node: str
    generation: int
    # SIG-6: the socket asked to answer rather than offer (webrtc_role=answer).
    answer_only: bool = False


@dataclass(frozen=True, slots=True)
class Offline:
    """The socket on ``node`` closed; ``grace``: a reconnect may still come (else down now)."""

    key: str
    node: str
    grace: bool
    generation: int


@dataclass(frozen=True, slots=True)
class Backlog:
    key: str
    value: float


@dataclass(frozen=True, slots=True)
class Subscription:
    key: str
    target: TypeKey
    on: bool


@dataclass(frozen=True, slots=True)
class Contact:
    """``source`` asked for a connection to ``target``, which may relay back until ``until``."""

    source: str
    target: str
    until: float


Event = Granted | Online | Offline | Backlog | Subscription | Contact


class EventDecodeError(ValueError):
    pass


def encode_event(event: Event, sender: str) -> bytes:
    body: dict[str, Any]
    match event:
        case Granted(key):
            body = {"t": "granted", "k": key}
        case Online(key, node, generation, answer_only):
            body = {"t": "online", "k": key, "n": node, "gen": generation, "ans": answer_only}
        case Offline(key, node, grace, generation):
            body = {"t": "offline", "k": key, "n": node, "g": grace, "gen": generation}
        case Backlog(key, value):
            body = {"t": "backlog", "k": key, "v": value}
        case Subscription(key, target, on):
            body = {"t": "sub", "k": key, "ty": list(target), "on": on}
        case Contact(source, target, until):
            body = {"t": "contact", "k": source, "to": target, "u": until}
    body["from"] = sender
    return json.dumps(body, separators=(",", ":")).encode()


def decode_event(data: bytes) -> tuple[str, Event]:
    """(sender node, event); EventDecodeError for anything else."""
    try:
        body = json.loads(data)
        kind = body["t"]
        key = str(body["k"])
        sender = str(body["from"])
        event: Event
        if kind == "granted":
            event = Granted(key)
        elif kind == "online":
            event = Online(key, str(body["n"]), int(body["gen"]), bool(body.get("ans", False)))
        elif kind == "offline":
            event = Offline(key, str(body["n"]), bool(body["g"]), int(body["gen"]))
        elif kind == "backlog":
            event = Backlog(key, float(body["v"]))
        elif kind == "sub":
            m, n, v = (str(x) for x in body["ty"])
            event = Subscription(key, (m, n, v), bool(body["on"]))
        elif kind == "contact":
            event = Contact(key, str(body["to"]), float(body["u"]))
        else:
            raise EventDecodeError(f"unknown event kind {kind!r}")
    except (ValueError, KeyError, TypeError) as e:
        raise EventDecodeError(f"undecodable event: {e}") from None
    return sender, event


# ---- the stored registration (a Redis hash) ----


def record_fields(record: ActorRecord) -> dict[str, bytes]:
    fields = {
        "id": record.actr_id.SerializeToString(),
        "service": record.service.encode(),
        "registered_at": repr(record.registered_at).encode(),
        "credential": record.credential.SerializeToString(),
        "expires_at": str(record.credential_expires_at).encode(),
        "tokens": b"".join(record.token_hashes),
        "spent": b"".join(record.spent_hashes),
        "subs": json.dumps(sorted(record.subscriptions)).encode(),
        "revoked": str(record.revoked_through).encode(),
    }
    if record.acl is not None:
        fields["acl"] = record.acl.SerializeToString()
    if record.service_spec is not None:
        fields["spec"] = record.service_spec.SerializeToString()
    return fields


def record_from_fields(fields: dict[bytes, bytes]) -> ActorRecord:
    """The registration stored by ``record_fields``; ValueError when it is damaged."""
    try:
        actr_id = ActrId()
        actr_id.ParseFromString(fields[b"id"])
        credential = AIdCredential()
        credential.ParseFromString(fields[b"credential"])
        acl: Acl | None = None
        if b"acl" in fields:
            acl = Acl()
            acl.ParseFromString(fields[b"acl"])
        spec: ServiceSpec | None = None
        if b"spec" in fields:
            spec = ServiceSpec()
            spec.ParseFromString(fields[b"spec"])
        tokens = fields.get(b"tokens", b"")
        spent = fields.get(b"spent", b"")
        subs = json.loads(fields.get(b"subs", b"[]"))
        record = ActorRecord(
            actr_id=actr_id,
            key=id_text(actr_id),
            acl=acl,
            service=fields.get(b"service", b"").decode(),
            registered_at=float(fields.get(b"registered_at", b"0")),
            credential=credential,
            credential_expires_at=int(fields[b"expires_at"]),
            token_hashes=_hashes(tokens),
            spent_hashes=_hashes(spent),
            subscriptions={(str(m), str(n), str(v)) for m, n, v in subs},
            generation=int(fields.get(b"gen", b"0")),
            service_spec=spec,
            revoked_through=int(fields.get(b"revoked", b"0")),
        )
    except (KeyError, ValueError, TypeError, IdentityError) as e:
        raise ValueError(f"stored registration is damaged: {e}") from None
    except Exception as e:  # protobuf DecodeError
        raise ValueError(f"stored registration is damaged: {e}") from None
    return record


def _hashes(joined: bytes) -> tuple[bytes, ...]:
    if len(joined) % TOKEN_HASH_LEN:
        raise ValueError("token hashes of the wrong length")
    return tuple(joined[i : i + TOKEN_HASH_LEN] for i in range(0, len(joined), TOKEN_HASH_LEN))
