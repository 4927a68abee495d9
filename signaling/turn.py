"""TURN credentials for coturn's ``use-auth-secret`` mode (PROTOCOL.md AIS-4). No I/O.

coturn (the "TURN REST API") accepts any username of the form
``<expiry unix time>:<anything>`` whose password is
``base64(HMAC-SHA1(static-auth-secret, username))`` until that time. The
server and coturn share only the secret; nothing is stored per actor.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, hmac

from actr.protocol.actr_pb2 import TurnCredential

__all__ = ["turn_credential", "turn_password"]


def turn_password(secret: str, username: str) -> str:
    mac = hmac.HMAC(secret.encode(), hashes.SHA1())
    mac.update(username.encode())
    return base64.b64encode(mac.finalize()).decode()


def turn_credential(secret: str, actor_id: str, now: float, ttl_secs: int) -> TurnCredential:
    expires_at = int(now) + ttl_secs
    username = f"{expires_at}:{actor_id}"
    return TurnCredential(
        username=username, password=turn_password(secret, username), expires_at=expires_at
    )
