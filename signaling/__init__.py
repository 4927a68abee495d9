"""The actr signaling server and identity service (PROTOCOL.md section 4).

One aiohttp process: registration and credentials (``/ais/*``), the signaling
socket (``/signaling/ws``), presence, route candidates and relay of SDP/ICE
between actors, with ACL enforcement and rate limits. State lives in memory, or,
with ``redis_url``, is shared through Redis by any number of such processes.

Modules, one job each. The sans-IO core (frames, events and time in, actions
out; nothing in it imports asyncio, aiohttp, redis or a module that reads files):

- ``dispatcher``: the entry point: decodes a frame, authenticates it (SIG-3),
  hands it on; its docstring is the contract
- ``presence``: sockets, expiry, the reconnect grace, up/down events (SIG-7)
- ``actr_to_server``: the requests an actor asks the server (SIG-3/4/6a/6b)
- ``relay``: relay between actors, ACL-2, role assignment (SIG-5, SIG-6)
- ``actions``: what the core asks the hub to do
- ``registry``: registered actors; ``record``: one actor, its renewal chain;
  ``presence_index``: live actors by type; ``subscriptions``: actr_up subscribers
- ``events``: the state changes nodes announce to each other, their wire form
- ``envelopes``: decoding frames, building answers; ``inbound``: size limits (F3)
- ``credentials``: issuing and verifying credentials with the signing key
- ``limits``: token buckets and connection counts (SIG-9, F5, F11)
- ``config_limits``: the ``[limits]`` table; ``config_values``: typed TOML values
- ``turn``: coturn ``use-auth-secret`` credentials; ``stats``: counters

Around it, the I/O:

- ``config``: the TOML file; ``config_check``: ``--check``, every problem of one;
  ``signing_key``: the key file; ``serials``: serial numbers, their high-water
  file and its lock (F1)
- ``hub``: live sockets and their outboxes; carries out the core's actions
- ``cluster``: pub/sub between nodes; ``cluster_store``: the keys in Redis
- ``registration``: the ``/ais/*`` handlers; ``socket``: the ``/signaling/ws`` handler
- ``admission``: connections counted and timed before HTTP (F5)
- ``metrics``: ``/metrics`` through OpenTelemetry
- ``state``, ``app``, ``runner``, ``__main__``: wiring, serving, the CLI

The names below are loaded on first use, so importing a core module does not
load the server (aiohttp, redis).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from signaling.app import create_app
    from signaling.config import Config, ConfigError, load_config
    from signaling.runner import RunningServer, start_server

__all__ = ["Config", "ConfigError", "RunningServer", "create_app", "load_config", "start_server"]

_HOMES = {
    "create_app": "signaling.app",
    "Config": "signaling.config",
    "ConfigError": "signaling.config",
    "load_config": "signaling.config",
    "RunningServer": "signaling.runner",
    "start_server": "signaling.runner",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, a plain module attribute
    return value
