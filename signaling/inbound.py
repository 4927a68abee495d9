"""Sizes of what a client sends (issue 11, F3; PROTOCOL.md SIG-9). No I/O.

Every string and repeated field of an inbound request has a bound, checked
before the server keeps or logs any of it: the parts of every ``ActrType``
(``max_type_part_bytes``), free text such as service names, reasons and
messages (``max_text_bytes``), the rules of a registered ACL
(``max_acl_rules``). A registration's ``ServiceSpec`` is bounded by the body
limit (``max_registration_bytes``), and its names like any text. Each check
returns None, or a short description of the first field over its bound. A limit
of 0 is no limit.
"""

from __future__ import annotations

from actr.protocol.actr_pb2 import ActrType, RegisterRequest, ServiceSpec
from actr.protocol.signaling_pb2 import ActrToSignaling
from signaling.config_limits import Limits

__all__ = ["clip", "registration_problem", "request_problem", "type_problem"]

# How much of a client's free text a log line carries.
LOG_TEXT = 200


def clip(text: str, limit: int = LOG_TEXT) -> str:
    """``text`` cut for a log line, with how much was cut."""
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


def _over(value: str, limit: int) -> bool:
    # Bytes, not characters: UTF-8 may take 4 bytes a character.
    return limit > 0 and len(value) * 4 > limit and len(value.encode()) > limit


def type_problem(t: ActrType, limits: Limits, what: str = "type") -> str | None:
    for part in ("manufacturer", "name", "version"):
        if _over(getattr(t, part), limits.max_type_part_bytes):
            return f"{what}.{part} is longer than {limits.max_type_part_bytes} bytes"
    return None


def _text_problem(value: str, limits: Limits, what: str) -> str | None:
    if _over(value, limits.max_text_bytes):
        return f"{what} is longer than {limits.max_text_bytes} bytes"
    return None


def _spec_problem(spec: ServiceSpec, limits: Limits) -> str | None:
    for what, value in (
        ("service_spec.name", spec.name),
        ("service_spec.fingerprint", spec.fingerprint),
        ("service_spec.description", spec.description),
        *(("service_spec.tags", tag) for tag in spec.tags),
        *(("service_spec.protobufs.package", p.package) for p in spec.protobufs),
        *(("service_spec.protobufs.fingerprint", p.fingerprint) for p in spec.protobufs),
    ):
        problem = _text_problem(value, limits, what)
        if problem is not None:
            return problem
    return None


def registration_problem(req: RegisterRequest, limits: Limits) -> str | None:
    """AIS-1: the type, service name, ACL rules and service spec of a registration."""
    problem = type_problem(req.actr_type, limits, "actr_type") or _text_problem(
        req.service, limits, "service"
    )
    if problem is not None:
        return problem
    if req.HasField("acl"):
        rules = req.acl.rules
        if limits.max_acl_rules and len(rules) > limits.max_acl_rules:
            return f"acl has {len(rules)} rules, more than {limits.max_acl_rules}"
        for rule in rules:
            problem = type_problem(rule.from_type, limits, "acl.rules.from_type")
            if problem is not None:
                return problem
    if req.HasField("service_spec"):
        return _spec_problem(req.service_spec, limits)
    return None


def request_problem(body: ActrToSignaling, limits: Limits) -> str | None:
    """SIG-3/SIG-4: the fields of an actr_to_server request the server reads."""
    kind = body.WhichOneof("payload")
    if kind == "route_candidates_request":
        req = body.route_candidates_request
        return type_problem(req.target_type, limits, "target_type") or _text_problem(
            req.client_fingerprint, limits, "client_fingerprint"
        )
    if kind == "discovery_request":
        if _over(body.discovery_request.manufacturer, limits.max_type_part_bytes):
            return f"manufacturer is longer than {limits.max_type_part_bytes} bytes"
        return None
    if kind == "subscribe_actr_up_request":
        return type_problem(body.subscribe_actr_up_request.target_type, limits, "target_type")
    if kind == "unsubscribe_actr_up_request":
        return type_problem(body.unsubscribe_actr_up_request.target_type, limits, "target_type")
    if kind == "get_service_spec_request":
        return _text_problem(body.get_service_spec_request.name, limits, "name")
    if kind == "unregister_request":
        return _text_problem(body.unregister_request.reason, limits, "reason")
    if kind == "error":
        return _text_problem(body.error.message, limits, "error.message")
    return None
