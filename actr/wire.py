"""Wire constants the runtime and the signaling server share (PROTOCOL.md 4).

One place for each number or name both sides of the signaling protocol must
agree on, so they cannot drift apart. A leaf: it imports nothing, and either
side may import it without pulling in the other. The data-channel frame layout
(DC-3) has one side only and lives with its code in ``actr/framing.py``.
"""

from __future__ import annotations

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_TRY_AGAIN_LATER",
    "CLOSE_UNSUPPORTED_DATA",
    "ENVELOPE_VERSION",
    "PROTOBUF_CONTENT_TYPE",
    "REALM_SECRET_HEADER",
    "REGISTER_PATH",
    "RENEW_PATH",
    "SIGNALING_MAX_FRAME",
    "SOCKET_PATH",
]

# SignalingEnvelope.envelope_version, written on every envelope in both directions.
ENVELOPE_VERSION = 2

# HTTP (AIS): registration carries the realm secret in this header; bodies are protobuf.
REALM_SECRET_HEADER = "x-actrix-realm-secret"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
REGISTER_PATH = "/ais/register"
RENEW_PATH = "/ais/renew"
# The signaling WebSocket; the credential goes in its query (actor_id, key_id,
# claims, signature: base64url).
SOCKET_PATH = "/signaling/ws"

# Largest WebSocket message either side accepts: one encoded SignalingEnvelope.
SIGNALING_MAX_FRAME = 1024 * 1024

# WebSocket close codes (RFC 6455 7.4.1) the server closes with.
CLOSE_NORMAL = 1000  # unregistered, or replaced by a newer connection
CLOSE_GOING_AWAY = 1001  # the server is shutting down, or no ping came (SIG-7)
CLOSE_UNSUPPORTED_DATA = 1003  # a text frame
CLOSE_POLICY = 1008  # not registered, credential expired, token reused, a flood (SIG-9)
CLOSE_MESSAGE_TOO_BIG = 1009  # over SIGNALING_MAX_FRAME
CLOSE_TRY_AGAIN_LATER = 1013  # a slow reader's outbox overflowed (F4)
