"""actr: actors as daemons that talk over WebRTC data channels."""

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
