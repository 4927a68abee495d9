"""The actr signaling server and identity service (PROTOCOL.md section 4).

One aiohttp process, state in memory: registration and credentials
(``/ais/*``), the signaling socket (``/signaling/ws``), presence, route
candidates and relay of SDP/ICE between actors, with ACL enforcement.

Modules, one job each:

- ``config``: the TOML file and its defaults
- ``credentials``: Ed25519 signing key, issuing and verifying credentials
- ``registry``: registered actors, presence, subscriptions (no I/O)
- ``envelopes``: decoding frames, building answers
- ``dispatcher``: what each frame makes the server do (no I/O)
- ``hub``: live sockets and their outboxes; carries out the dispatcher's actions
- ``registration``: the ``/ais/*`` HTTP handlers
- ``socket``: the ``/signaling/ws`` handler
- ``stats``: counters, ``/stats``
- ``state``, ``app``, ``runner``, ``__main__``: wiring, serving, the CLI
"""

from signaling.app import create_app
from signaling.config import Config, ConfigError, load_config
from signaling.runner import RunningServer, start_server

__all__ = ["Config", "ConfigError", "RunningServer", "create_app", "load_config", "start_server"]
