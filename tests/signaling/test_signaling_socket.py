"""signaling/socket.py on its own: the base64 forms a credential may come in (SIG-1)."""

from __future__ import annotations

import base64

import pytest

from signaling.socket import decode_b64


def test_sig1_base64_forms_all_decode() -> None:
    data = bytes(range(256))[:100] + b"\xfb\xff\xfe"
    for encoded in (
        base64.b64encode(data).decode(),
        base64.b64encode(data).decode().rstrip("="),
        base64.urlsafe_b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
        base64.b64encode(data).decode().replace("+", " "),  # '+' unescaped in a query
    ):
        assert decode_b64(encoded) == data
    with pytest.raises(ValueError):
        decode_b64("a!b")
    with pytest.raises(ValueError):
        decode_b64("A" * 10_000)
