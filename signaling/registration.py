"""The identity service over HTTP (PROTOCOL.md AIS-1 .. AIS-3).

``POST /ais/register``   RegisterRequest + realm secret header -> RegisterResponse
``POST /ais/renew``      RenewCredentialRequest -> RegisterResponse (same ActrId)
``GET /ais/signing-pubkey``  -> SigningPubkey

Bodies and answers are protobuf (``application/x-protobuf``). Errors are
answered as ``RegisterResponse{error}`` with a matching HTTP status: 400 for a
body that does not decode or is invalid, 401 for a bad secret or renewal
token or a credential that already expired, 413 for a body over the limit, 429
for too many registrations from one address or a realm holding
``max_registrations_per_realm`` already, 503 when Redis (SIG-10) is down.

Renewal (AIS-3) works while the newest credential is unexpired, also after the
actor unregistered, so a restarted daemon resumes its ActrId; each renewal
hands out a new token, and the one it was granted on stays valid until the new
one is used, so a daemon that crashed before saving the answer can still renew.
A token used after its successor was used means someone else holds the chain
(F8): the whole chain is revoked, every credential issued on it stops verifying
and the actor's socket is closed; the daemon registers again. With ``[turn]``
configured every answer carries a coturn credential (AIS-4) for the same lifetime.

Registrations are refused (400) when a field is over its size limit
(``signaling.inbound``, F3); serials come from ``signaling.serials`` or, with
Redis, the cluster, and are never handed out twice (ID-2, F1).
"""

from __future__ import annotations

import asyncio
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
from actr.wire import PROTOBUF_CONTENT_TYPE, REALM_SECRET_HEADER
from signaling.cluster import ClusterConflict, ClusterUnavailable
from signaling.config_values import ConfigError
from signaling.inbound import registration_problem
from signaling.limits import retry_after_header
from signaling.record import ActorRecord, TokenStanding
from signaling.serials import clock_floor
from signaling.state import STATE, State
from signaling.turn import turn_credential

__all__ = [
    "register",
    "renew",
    "signing_pubkey",
]

log = logging.getLogger(__name__)

_RENEWAL_TOKEN_LEN = 32
# Compared against when the realm is unknown, so timing does not reveal which realms exist.
_NO_SECRET = secrets.token_bytes(32)

_M = TypeVar("_M", bound=Message)


class _Refused(Exception):
    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        reason: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason
        self.retry_after = retry_after


def _protobuf(msg: Message, status: int = 200) -> web.Response:
    return web.Response(
        body=msg.SerializeToString(), status=status, content_type=PROTOBUF_CONTENT_TYPE
    )


def _error(e: _Refused) -> web.Response:
    answer = RegisterResponse(error=ErrorResponse(code=int(e.code), message=e.message))
    response = _protobuf(answer, e.status)
    if e.retry_after is not None:
        response.headers.update(retry_after_header(e.retry_after))
    return response


async def _read(request: web.Request, kind: type[_M]) -> _M:
    state = request.app[STATE]
    timeout = state.config.limits.header_timeout_secs
    try:
        # F5: a body dripped slowly holds a connection as long as headers would.
        async with asyncio.timeout(timeout if timeout > 0 else None):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _Refused(
            413,
            ErrorCode.RESOURCE_EXHAUSTED,
            f"body larger than {request.client_max_size} bytes",
            "body_too_large",
        ) from None
    except TimeoutError:
        raise _Refused(
            408, ErrorCode.UNAVAILABLE, f"body not received within {timeout} s", "body_timeout"
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


def _check_room(state: State, realm_id: int) -> None:
    """A realm holds at most ``max_registrations_per_realm`` registrations: each lives
    until it lapses, so one member within the rate limits could otherwise fill memory.
    With Redis every node holds the deployment's registrations, so the count is the
    deployment's (registrations on several nodes at once may pass it by a few)."""
    cap = state.config.limits.max_registrations_per_realm
    if cap and state.registry.realm_count(realm_id) >= cap:
        raise _Refused(
            429,
            ErrorCode.RESOURCE_EXHAUSTED,
            f"realm {realm_id} holds {cap} registrations, its limit: retry once some lapse",
            "realm_full",
        )


async def _grant(state: State, record: ActorRecord, spent: bytes | None = None) -> RegisterOk:
    """A fresh credential and renewal token for ``record``, stored for every node.

    ``spent``: the renewal token this grant was asked with (F8); with Redis the grant is
    stored only if no other renewal of the chain was stored since it was read.
    """
    now = state.clock()
    # After an unregister (SIG-7) every credential expiring by revoked_through is refused:
    # the new one must expire later, even when renewed within the same second.
    now = max(now, record.revoked_through + 1 - state.authority.lifetime_secs)
    credential = state.authority.issue(record.actr_id, now)
    token = secrets.token_bytes(_RENEWAL_TOKEN_LEN)
    tokens_read = b"".join(record.token_hashes)
    record.grant(credential, int(now) + state.authority.lifetime_secs, token, spent)
    if state.cluster is not None:
        await state.cluster.store(record, expect_tokens=tokens_read if spent else None)
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
            reason = f"{state.attempts.refused_by}_rate_limited".removeprefix("ip_")
            raise _Refused(
                429,
                ErrorCode.RESOURCE_EXHAUSTED,
                "too many registrations",
                reason,
                retry_after=state.attempts.retry_after,
            )
        req = await _read(request, RegisterRequest)
        _check_secret(state, req.realm.realm_id, request.headers.get(REALM_SECRET_HEADER))
        problem = registration_problem(req, state.config.limits)
        if problem is not None:
            raise _Refused(400, ErrorCode.INVALID_ARGUMENT, problem, "field_too_large")
        try:
            type_text(req.actr_type)
        except IdentityError as e:
            raise _Refused(400, ErrorCode.INVALID_ARGUMENT, str(e), "invalid_type") from None
        _check_room(state, req.realm.realm_id)
    except _Refused as e:
        state.stats.reject(f"register_{e.reason}")
        log.info("register_refused reason=%s peer=%s", e.reason, request.remote)
        return _error(e)
    try:
        if state.cluster is not None:
            realm_id = req.realm.realm_id
            floor = max(clock_floor(state.clock()), state.registry.next_unseen(realm_id))
            serial = await state.cluster.next_serial(realm_id, floor)
        else:
            serial = await state.serials.next(req.realm.realm_id)
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
    except ConfigError as e:
        # The serial file could not be written: no serial may be handed out (F1).
        state.stats.reject("register_serials_unwritable")
        log.error("register_failed reason=serials_unwritable error=%s", e)
        return _error(_Refused(503, ErrorCode.UNAVAILABLE, str(e), "serials_unwritable"))
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
        standing = (
            record.token_standing(req.renewal_token)
            if record is not None
            else TokenStanding.UNKNOWN
        )
        if record is not None and standing is TokenStanding.REUSED and not record.chain_revoked:
            await _revoke_chain(state, record, request.remote)
        # One answer for unknown actor and wrong token: do not reveal which actors exist.
        if record is None or standing is not TokenStanding.VALID:
            hmac.compare_digest(req.renewal_token, _NO_SECRET)  # the same work either way
            raise _Refused(
                401,
                ErrorCode.UNAUTHENTICATED,
                "renewal token does not match this actor",
                "token_reused" if standing is TokenStanding.REUSED else "bad_renewal_token",
            )
        if record.credential_expires_at <= state.clock():
            raise _Refused(
                401,
                ErrorCode.UNAUTHENTICATED,
                "the credential expired before it was renewed: register again",
                "credential_expired",
            )
        ok = await _grant(state, record, spent=req.renewal_token)
    except ClusterConflict as e:
        state.stats.reject("renew_conflict")
        log.info("renew_refused reason=conflict actor=%s error=%s", key, e)
        return _error(_Refused(409, ErrorCode.UNAVAILABLE, str(e), "conflict"))
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


async def _revoke_chain(state: State, record: ActorRecord, peer: str | None) -> None:
    """F8: a spent renewal token came back, so two parties hold this actor's chain. Neither
    keeps the ActrId: the chain and its credentials are revoked, its socket closed."""
    log.warning("renewal_token_reused actor=%s peer=%s action=revoke_chain", record.key, peer)
    record.revoke_chain()
    state.hub.apply(state.dispatcher.chain_revoked(record.key))
    if state.cluster is not None:
        # Stored whatever else was stored meanwhile: a revocation must not be lost.
        await state.cluster.store(record, expect_tokens=None)


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
