"""signaling/turn.py on its own: coturn's REST credential form (AIS-4). Against a real
coturn: test_signaling_turn.py."""

from __future__ import annotations

import base64
import hashlib
import hmac

from units_kit import T0

from signaling.turn import turn_credential, turn_password


def test_ais4_turn_credential_is_coturn_rest_form() -> None:
    cred = turn_credential("s3cret", "1f@7/acme:echo:1.0", T0, 600)
    assert cred.username == f"{int(T0) + 600}:1f@7/acme:echo:1.0"
    assert cred.expires_at == int(T0) + 600
    # The same HMAC-SHA1 computed independently with the standard library.
    expected = base64.b64encode(
        hmac.new(b"s3cret", cred.username.encode(), hashlib.sha1).digest()
    ).decode()
    assert cred.password == expected == turn_password("s3cret", cred.username)
