"""The actr signaling server and identity service (PROTOCOL.md section 4).

One aiohttp process: registration and credentials (``/ais/*``), the signaling
socket (``/signaling/ws``), presence, route candidates and relay of SDP/ICE
between actors, with ACL enforcement and rate limits. State lives in memory, or,
with ``redis_url``, is shared through Redis by any number of such processes.

Modules, one job each:

- ``config``: the TOML file and its defaults
- ``credentials``: Ed25519 signing key, issuing and verifying credentials
- ``registry``: registered actors, presence, subscriptions (no I/O)
- ``envelopes``: decoding frames, building answers
- ``dispatcher``: what each frame or announcement makes the server do (no I/O)
- ``limits``: token buckets for message and connection rates (no I/O)
- ``turn``: coturn ``use-auth-secret`` credentials (no I/O)
- ``events``: the state changes nodes announce to each other, their wire form (no I/O)
- ``hub``: live sockets and their outboxes; carries out the dispatcher's actions
- ``cluster``: Redis: serials, stored registrations, pub/sub of events and relays
- ``registration``: the ``/ais/*`` HTTP handlers
- ``socket``: the ``/signaling/ws`` handler
- ``stats``: counters, ``/stats``; ``metrics``: ``/metrics`` through OpenTelemetry
- ``state``, ``app``, ``runner``, ``__main__``: wiring, serving, the CLI
"""

from signaling.app import create_app
from signaling.config import Config, ConfigError, load_config
from signaling.runner import RunningServer, start_server

__all__ = ["Config", "ConfigError", "RunningServer", "create_app", "load_config", "start_server"]
