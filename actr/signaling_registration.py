"""Registration over HTTP (AIS, PROTOCOL.md 4.1): register with the realm secret,
renew with the renewal token (AIS-3), and when to renew.

Both answer a ``RegisterResponse``; its error is raised as the ``ActrError`` it
names, an unreachable server as ``Unavailable``. ``renew_delay`` is a pure
function of the time: renew at two thirds of the credential's remaining life.
"""

from __future__ import annotations

import aiohttp

from actr.errors import ActrError, Internal, RateLimited, Unavailable
from actr.protocol.actr_pb2 import (
    Acl,
    ActrId,
    ActrType,
    IdentityClaims,
    Realm,
    RegisterAuthMode,
    RegisterOk,
    RegisterRequest,
    RegisterResponse,
    RenewCredentialRequest,
    ServiceSpec,
)
from actr.wire import PROTOBUF_CONTENT_TYPE, REALM_SECRET_HEADER, REGISTER_PATH, RENEW_PATH

__all__ = [
    "credential_expires_at",
    "register",
    "register_request",
    "renew",
    "renew_delay",
    "retry_after",
]

# However little life a credential has left, renewals are at least this far apart.
MIN_RENEW_DELAY = 1.0


def register_request(
    actr_type: ActrType,
    realm: int,
    acl: Acl | None,
    service: str,
    service_spec: ServiceSpec | None,
) -> RegisterRequest:
    req = RegisterRequest(
        actr_type=actr_type,
        realm=Realm(realm_id=realm),
        auth_mode=RegisterAuthMode.REGISTER_AUTH_MODE_LINKED,
    )
    if acl is not None:
        req.acl.CopyFrom(acl)
    if service:
        req.service = service
    if service_spec is not None:
        req.service_spec.CopyFrom(service_spec)
    return req


async def register(
    http: aiohttp.ClientSession,
    base: str,
    req: RegisterRequest,
    realm_secret: str,
    timeout: float,
) -> RegisterOk:
    headers = {REALM_SECRET_HEADER: realm_secret}
    return await _post(http, base, REGISTER_PATH, req.SerializeToString(), headers, timeout)


async def renew(
    http: aiohttp.ClientSession, base: str, actr_id: ActrId, token: bytes, timeout: float
) -> RegisterOk:
    """AIS-3: a fresh credential for the same ActrId."""
    req = RenewCredentialRequest(actr_id=actr_id, renewal_token=token)
    reg = await _post(http, base, RENEW_PATH, req.SerializeToString(), {}, timeout)
    if not (reg.actr_id == actr_id):
        raise Internal("renewal answered a different actor id")
    return reg


async def _post(
    http: aiohttp.ClientSession,
    base: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> RegisterOk:
    try:
        async with http.post(
            base + path,
            data=body,
            headers={**headers, "content-type": PROTOBUF_CONTENT_TYPE},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            body = await resp.read()
            status = resp.status
            wait = retry_after(resp.headers.get("Retry-After"))
    except (aiohttp.ClientError, TimeoutError) as e:
        raise Unavailable(f"signaling server {base} unreachable: {e}") from e
    if status == 429:
        raise RateLimited(f"{path}: the signaling server is rate limiting us", wait)
    if status in (409, 503):
        # A concurrent renewal won (409) or the server lost its Redis (503): retry.
        raise Unavailable(f"{path} answered HTTP {status}, retry")
    answer = RegisterResponse()
    try:
        answer.ParseFromString(body)
    except Exception as e:
        raise Internal(f"{path} answered HTTP {status} with an undecodable body") from e
    if answer.WhichOneof("result") == "error":
        raise ActrError.from_proto(answer.error)
    if status != 200 or not answer.HasField("success"):
        raise Internal(f"{path} answered HTTP {status} without a result")
    return answer.success


def credential_expires_at(registration: RegisterOk) -> float:
    """When the credential expires (seconds since the epoch)."""
    claims = IdentityClaims()
    claims.ParseFromString(registration.credential.claims)
    return float(claims.expires_at)


def renew_delay(expires_at: float, now: float) -> float:
    """How long to wait before renewing a credential that expires at ``expires_at``."""
    return max(MIN_RENEW_DELAY, (expires_at - now) * 2 / 3)


def retry_after(header: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form); None when absent or odd."""
    if header is None:
        return None
    try:
        value = float(header.strip())
    except ValueError:
        return None
    return value if 0 <= value <= 3600 else None
