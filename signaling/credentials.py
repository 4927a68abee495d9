"""Actor credentials (PROTOCOL.md AIS-2): issue and verify Ed25519-signed claims.

A credential is ``AIdCredential{key_id, claims, signature}`` where ``claims`` is
an encoded ``IdentityClaims{realm_id, actor_id (text form), expires_at}`` and
``signature`` is Ed25519 over exactly those bytes. Verification works on the
bytes as received, never on a re-encoding, so a client's encoder choices cannot
change what was signed.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from actr.identity import id_text
from actr.protocol.actr_pb2 import ActrId, AIdCredential, IdentityClaims
from signaling.config_values import ConfigError

__all__ = [
    "CredentialAuthority",
    "CredentialError",
    "VerifiedClaims",
    "load_or_create_key",
]

log = logging.getLogger(__name__)

_RAW_KEY_LEN = 32
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


def load_or_create_key(path: Path | None) -> Ed25519PrivateKey:
    """The key at ``path`` (raw 32 bytes or PEM), created there if missing; None: in memory."""
    if path is None:
        log.info("signing_key_generated storage=memory")
        return Ed25519PrivateKey.generate()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _create_key_file(path)
    except OSError as e:
        raise ConfigError(f"cannot read signing key file {path}: {e.strerror or e}") from None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # F14: whoever reads it issues credentials for any ActrId; whoever writes it
        # swaps in a key of their own.
        raise ConfigError(
            f"signing key file {path} has mode {mode:04o}: group or others may read or "
            f"write it; make it the server's own (chmod 600 {path})"
        )
    key = _parse_key(data, path)
    log.info("signing_key_loaded path=%s", path)
    return key


def _parse_key(data: bytes, path: Path) -> Ed25519PrivateKey:
    if len(data) == _RAW_KEY_LEN:
        return Ed25519PrivateKey.from_private_bytes(data)
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"signing key file {path} is not a readable PEM key: {e}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"signing key file {path} holds a {type(key).__name__}, not Ed25519")
        return key
    raise ConfigError(
        f"signing key file {path} must hold a raw 32-byte Ed25519 key or a PEM private key "
        f"(found {len(data)} bytes)"
    )


def _create_key_file(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a key another process wrote in the meantime.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    except FileExistsError:
        return _parse_key(path.read_bytes(), path)
    except OSError as e:
        raise ConfigError(f"cannot create signing key file {path}: {e.strerror or e}") from None
    log.info("signing_key_created path=%s", path)
    return key
