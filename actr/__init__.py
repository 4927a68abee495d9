"""actr: actors as daemons that talk over WebRTC data channels.

The names below are loaded on first use: importing a light module of the package
(``actr.config``, ``actr.wire``, a sans-IO core; the signaling server imports a
few) does not load the runtime with aiortc, aiohttp and aiosqlite.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actr.actor import Actor, Context, rpc
    from actr.client import connect
    from actr.errors import (
        ActrError,
        ApplicationError,
        ErrorCode,
        NotFound,
        PermissionDenied,
        TimedOut,
        Unavailable,
        UnknownRoute,
    )
    from actr.node import Node

__all__ = [
    "Actor",
    "ActrError",
    "ApplicationError",
    "Context",
    "ErrorCode",
    "Node",
    "NotFound",
    "PermissionDenied",
    "TimedOut",
    "Unavailable",
    "UnknownRoute",
    "connect",
    "rpc",
]

_HOMES = {
    "Actor": "actr.actor",
    "Context": "actr.actor",
    "rpc": "actr.actor",
    "connect": "actr.client",
    "Node": "actr.node",
    **{
        name: "actr.errors"
        for name in (
            "ActrError",
            "ApplicationError",
            "ErrorCode",
            "NotFound",
            "PermissionDenied",
            "TimedOut",
            "Unavailable",
            "UnknownRoute",
        )
    },
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, a plain module attribute
    return value
