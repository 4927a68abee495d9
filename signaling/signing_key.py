"""The server's signing key file (PROTOCOL.md AIS-2; issue 11, F14).

``signing_key_file`` holds the Ed25519 key credentials are signed with, raw 32
bytes or PEM. It is created (mode 0600, PEM) on first start and read on every
later one, so credentials survive a restart; with Redis every node reads the same
file. A key file group or others may read, write or execute is refused
(ConfigError, exit 2): whoever reads it issues credentials for any ActrId.
Without a file the key lives in memory and dies with the process.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signaling.config_values import ConfigError

__all__ = ["load_or_create_key"]

log = logging.getLogger(__name__)

_RAW_KEY_LEN = 32


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
