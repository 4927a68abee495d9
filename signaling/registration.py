"""The identity service over HTTP (PROTOCOL.md AIS-1 .. AIS-3).

``POST /ais/register``   RegisterRequest + realm secret header -> RegisterResponse
``POST /ais/renew``      RenewCredentialRequest -> RegisterResponse (same ActrId)
``GET /ais/signing-pubkey``  -> SigningPubkey

Bodies and answers are protobuf (``application/x-protobuf``). Errors are
answered as ``RegisterResponse{error}`` with a matching HTTP status: 400 for a
body that does not decode or is invalid, 401 for a bad secret or renewal
token or a credential that already expired, 413 for a body over the limit, 429
for too many registrations from one address, 503 when Redis (SIG-10) is down.

Renewal (AIS-3) works while the newest credential is unexpired, also after the
actor unregistered, so a restarted daemon resumes its ActrId; each renewal
hands out a new token, and the one before it stays valid too, so a daemon that
crashed before saving the answer can still renew. With ``[turn]`` configured
every answer carries a coturn credential (AIS-4) for the same lifetime.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import TypeVar

from aiohttp import web
from google.protobuf.message import DecodeError, Message

from actr.errors import ErrorCode
from actr.identity import IdentityError, id_text, type_text
from actr.protocol.actr_pb2 import (
    ErrorResponse,
    RegisterOk,
    RegisterRequest,
    RegisterResponse,
    RenewCredentialRequest,
    SigningPubkey,
)
from signaling.cluster import ClusterUnavailable
from signaling.registry import ActorRecord
from signaling.state import STATE, State
from signaling.turn import turn_credential

__all__ = [
    "MAX_BODY",
    "PROTOBUF",
    "REALM_SECRET_HEADER",
    "register",
    "renew",
    "signing_pubkey",
]

log = logging.getLogger(__name__)

REALM_SECRET_HEADER = "x-actrix-realm-secret"
PROTOBUF = "application/x-protobuf"
MAX_BODY = 64 * 1024
_RENEWAL_TOKEN_LEN = 32
# Compared against when the realm is unknown, so timing does not reveal which realms exist.
_NO_SECRET = secrets.token_bytes(32)

_M = TypeVar("_M", bound=Message)


class _Refused(Exception):
    def __init__(self, status: int, code: ErrorCode, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason


def _protobuf(msg: Message, status: int = 200) -> web.Response:
    return web.Response(body=msg.SerializeToString(), status=status, content_type=PROTOBUF)


def _error(e: _Refused) -> web.Response:
    answer = RegisterResponse(error=ErrorResponse(code=int(e.code), message=e.message))
    return _protobuf(answer, e.status)


async def _read(request: web.Request, kind: type[_M]) -> _M:
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _Refused(
            413,
            ErrorCode.RESOURCE_EXHAUSTED,
            f"body larger than {MAX_BODY} bytes",
            "body_too_large",
        ) from None
    msg = kind()
    try:
        msg.ParseFromString(body)
    except DecodeError:
        raise _Refused(
            400, ErrorCode.DECODE_FAILURE, f"body is not a {kind.DESCRIPTOR.name}", "malformed_body"
        ) from None
    # upb does not enforce proto2 `required`; a missing field is as malformed as bad bytes.
    if not msg.IsInitialized():
        raise _Refused(
            400,
            ErrorCode.DECODE_FAILURE,
            f"{kind.DESCRIPTOR.name} misses required fields",
            "malformed_body",
        )
    return msg


def _check_secret(state: State, realm_id: int, supplied: str | None) -> None:
    expected = state.config.realms.get(realm_id)
    given = (supplied or "").encode()
    ok = hmac.compare_digest(given, expected.encode() if expected is not None else _NO_SECRET)
    if not ok or expected is None or supplied is None:
        raise _Refused(
            401,
            ErrorCode.UNAUTHENTICATED,
            f"realm secret does not grant realm {realm_id}",
            "bad_realm_secret",
        )


async def _grant(state: State, record: ActorRecord) -> RegisterOk:
    """A fresh credential and renewal token for ``record``, stored for every node."""
    now = state.clock()
    # After an unregister (SIG-7) every credential expiring by revoked_through is refused:
    # the new one must expire later, even when renewed within the same second.
    now = max(now, record.revoked_through + 1 - state.authority.lifetime_secs)
    credential = state.authority.issue(record.actr_id, now)
    token = secrets.token_bytes(_RENEWAL_TOKEN_LEN)
    record.grant(credential, int(now) + state.authority.lifetime_secs, token)
    if state.cluster is not None:
        await state.cluster.store(record)
    ok = RegisterOk(
        actr_id=record.actr_id,
        credential=credential,
        signaling_heartbeat_interval_secs=state.config.heartbeat_interval_secs,
        signing_pubkey=state.authority.public_key_raw,
        signing_key_id=state.authority.key_id,
        renewal_token=token,
    )
    turn = state.config.turn
    if turn is not None:
        ok.turn_urls.extend(turn.urls)
        ok.turn_credential.CopyFrom(
            turn_credential(turn.secret, record.key, now, max(turn.ttl_secs, 1))
        )
    return ok


def _unavailable(e: ClusterUnavailable) -> _Refused:
    return _Refused(503, ErrorCode.UNAVAILABLE, str(e), "cluster_unavailable")


async def register(request: web.Request) -> web.Response:
    """AIS-1."""
    state = request.app[STATE]
    try:
        if not state.attempts.allow(request.remote or "", state.monotonic()):
            raise _Refused(
                429, ErrorCode.RESOURCE_EXHAUSTED, "too many registrations", "rate_limited"
            )
        req = await _read(request, RegisterRequest)
        _check_secret(state, req.realm.realm_id, request.headers.get(REALM_SECRET_HEADER))
        try:
            type_text(req.actr_type)
        except IdentityError as e:
            raise _Refused(400, ErrorCode.INVALID_ARGUMENT, str(e), "invalid_type") from None
    except _Refused as e:
        state.stats.reject(f"register_{e.reason}")
        log.info("register_refused reason=%s peer=%s", e.reason, request.remote)
        return _error(e)
    try:
        serial = None
        if state.cluster is not None:
            serial = await state.cluster.next_serial(req.realm.realm_id)
        record = state.registry.register(
            req.actr_type,
            req.realm.realm_id,
            req.acl if req.HasField("acl") else None,
            req.service,
            state.clock(),
            serial=serial,
            service_spec=req.service_spec if req.HasField("service_spec") else None,
        )
        ok = await _grant(state, record)
    except ClusterUnavailable as e:
        state.stats.reject("register_cluster_unavailable")
        log.warning("register_failed reason=cluster_unavailable error=%s", e)
        return _error(_unavailable(e))
    state.stats.registrations += 1
    log.info(
        "actor_registered actor=%s acl_rules=%s peer=%s",
        record.key,
        len(req.acl.rules) if req.HasField("acl") else "none",
        request.remote,
    )
    return _protobuf(RegisterResponse(success=ok))


async def renew(request: web.Request) -> web.Response:
    """AIS-3: a fresh credential for the same ActrId, against its last renewal token."""
    state = request.app[STATE]
    try:
        req = await _read(request, RenewCredentialRequest)
        try:
            key = id_text(req.actr_id)
        except IdentityError:
            key = ""
        record = await _current(state, key) if key else None
        # One answer for unknown actor and wrong token: do not reveal which actors exist.
        if record is None or not record.token_matches(req.renewal_token):
            hmac.compare_digest(req.renewal_token, _NO_SECRET)  # the same work either way
            raise _Refused(
                401,
                ErrorCode.UNAUTHENTICATED,
                "renewal token does not match this actor",
                "bad_renewal_token",
            )
        if record.credential_expires_at <= state.clock():
            raise _Refused(
                401,
                ErrorCode.UNAUTHENTICATED,
                "the credential expired before it was renewed: register again",
                "credential_expired",
            )
        ok = await _grant(state, record)
    except ClusterUnavailable as e:
        state.stats.reject("renew_cluster_unavailable")
        log.warning("renew_failed reason=cluster_unavailable error=%s", e)
        return _error(_unavailable(e))
    except _Refused as e:
        state.stats.reject(f"renew_{e.reason}")
        log.info("renew_refused reason=%s peer=%s", e.reason, request.remote)
        return _error(e)
    state.stats.renewals += 1
    log.info("credential_renewed actor=%s", record.key)
    return _protobuf(RegisterResponse(success=ok))


async def _current(state: State, key: str) -> ActorRecord | None:
    """The registration as it stands now: with several nodes, as Redis has it."""
    if state.cluster is None:
        return state.registry.get(key)
    stored = await state.cluster.fetch(key)
    if stored is None:
        return None
    return state.registry.merge(stored)


async def signing_pubkey(request: web.Request) -> web.Response:
    """AIS-2: the key credentials are verified with."""
    authority = request.app[STATE].authority
    return _protobuf(SigningPubkey(key_id=authority.key_id, public_key=authority.public_key_raw))
