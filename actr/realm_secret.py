"""Realm secrets that must not leave loopback (F14), shared by the runtime and the server.

A realm secret is the only thing between a stranger and a registered ActrId
(AIS-1). A placeholder copied from an example (``change-me``, ``dev-secret``,
...) or a secret shorter than ``MIN_SECRET_BYTES`` is fine on one machine
and refused as soon as the secret would travel: a daemon or client whose
signaling server is not on loopback, or a server that listens on a
non-loopback address, does not start with one.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

MIN_SECRET_BYTES = 16
# Compared lowercased, without spaces, '-', '_' and '.'.
_PLACEHOLDERS = frozenset(
    {
        "",
        "changeme",
        "devsecret",
        "secret",
        "realmsecret",
        "password",
        "passw0rd",
        "replaceme",
        "example",
        "test",
        "testsecret",
        "default",
        "todo",
        "fixme",
        "xxx",
    }
)
_PLACEHOLDER_PREFIXES = ("changeme", "replaceme", "devsecret", "yoursecret", "putyour")
_SEPARATORS = re.compile(r"[\s\-_.]")


def secret_weakness(secret: str) -> str | None:
    """Why ``secret`` must not be used beyond loopback, or None when it may."""
    folded = _SEPARATORS.sub("", secret.lower())
    if folded in _PLACEHOLDERS or folded.startswith(_PLACEHOLDER_PREFIXES):
        return "is a placeholder" if secret else "is empty"
    size = len(secret.encode())
    if size < MIN_SECRET_BYTES:
        return f"is {size} bytes long, shorter than {MIN_SECRET_BYTES}"
    return None


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_client_secret(secret: str, urls: list[str]) -> None:
    """Raises ValueError when ``secret`` is weak and a signaling url is not on loopback."""
    why = secret_weakness(secret)
    if why is None:
        return
    remote = [u for u in urls if not is_loopback_host(urlsplit(u).hostname or "")]
    if remote:
        raise ValueError(
            f"the realm secret {why}: refused for the signaling server {remote[0]}, "
            f"which is not on loopback; use a random secret of at least {MIN_SECRET_BYTES} "
            "bytes (e.g. `openssl rand -base64 24`)"
        )
