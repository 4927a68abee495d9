"""Actor credentials (PROTOCOL.md AIS-2): issue and verify Ed25519-signed claims.

A credential is ``AIdCredential{key_id, claims, signature}`` where ``claims`` is
an encoded ``IdentityClaims{realm_id, actor_id (text form), expires_at}`` and
``signature`` is Ed25519 over exactly those bytes. Verification works on the
bytes as received, never on a re-encoding, so a client's encoder choices cannot
change what was signed. No I/O: the key comes in (``signing_key`` reads and writes
its file), time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from actr.identity import id_text
from actr.protocol.actr_pb2 import ActrId, AIdCredential, IdentityClaims

__all__ = [
    "CredentialAuthority",
    "CredentialError",
    "VerifiedClaims",
]

_SIGNATURE_LEN = 64
# Claims are three short fields; anything bigger is not ours.
_MAX_CLAIMS_LEN = 1024


class CredentialError(Exception):
    """A credential that does not verify. ``reason`` is a short counter label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class VerifiedClaims:
    realm_id: int
    actor_id: str
    expires_at: int


class CredentialAuthority:
    """Holds the signing key; issues and verifies credentials. No I/O, time is passed in."""

    def __init__(self, key: Ed25519PrivateKey, key_id: int, lifetime_secs: int) -> None:
        self._key = key
        self.key_id = key_id
        self.lifetime_secs = lifetime_secs
        self._public = key.public_key()
        self.public_key_raw = self._public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def issue(self, actr_id: ActrId, now: float) -> AIdCredential:
        expires_at = int(now) + self.lifetime_secs
        claims = IdentityClaims(
            realm_id=actr_id.realm.realm_id,
            actor_id=id_text(actr_id),
            expires_at=max(expires_at, 0),
        ).SerializeToString()
        return AIdCredential(key_id=self.key_id, claims=claims, signature=self._key.sign(claims))

    def verify(self, credential: AIdCredential, now: float) -> VerifiedClaims:
        """Check signature, decoding and expiry; the caller checks whom it names."""
        return self.verify_parts(credential.key_id, credential.claims, credential.signature, now)

    def verify_parts(
        self, key_id: int, claims: bytes, signature: bytes, now: float
    ) -> VerifiedClaims:
        if key_id != self.key_id:
            raise CredentialError("unknown_key", f"unknown signing key id {key_id}")
        if len(signature) != _SIGNATURE_LEN or len(claims) > _MAX_CLAIMS_LEN:
            raise CredentialError("bad_signature", "signature or claims have the wrong size")
        try:
            self._public.verify(signature, claims)
        except InvalidSignature:
            raise CredentialError("bad_signature", "signature does not verify") from None
        decoded = IdentityClaims()
        try:
            decoded.ParseFromString(claims)
        except Exception:
            raise CredentialError("bad_claims", "claims do not decode") from None
        # upb's ParseFromString accepts missing required fields; we do not.
        if not decoded.IsInitialized():
            raise CredentialError("bad_claims", "claims miss required fields")
        if decoded.expires_at <= now:
            raise CredentialError("expired", f"credential expired at {decoded.expires_at}")
        return VerifiedClaims(decoded.realm_id, decoded.actor_id, decoded.expires_at)
