"""The daemon's log lines: one event per line, as text or JSON, with the actor's id.

Every log call of the runtime is one event with its fields,
``log.info("peer_ready peer=%s", key)``. This module only decides how a line
looks on stderr:

- ``text``: ``<time> <LEVEL> <logger> <event> <key=value ...> actor=<id>``;
- ``json``: one object per line for log shippers, ``{"ts", "level", "logger",
  "event", <each key=value field>, "actor", "msg"}`` (``exc`` with a traceback);
  a field whose name is one of those is kept as ``field_<name>``.

``actor=<id>`` is added to every line once the daemon knows its id (from its
registration; ``set_actor``), unless the line already names that actor.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["FORMATS", "JsonFormatter", "TextFormatter", "parse_fields", "set_actor", "setup"]

FORMATS = ("text", "json")
_RESERVED = frozenset({"ts", "level", "logger", "event", "actor", "msg", "exc"})
# The start of a `key=` field: at the start of the message or after a space.
_KEY = re.compile(r"(?:^| )([A-Za-z_][\w.\-]*)=")
_EVENT = re.compile(r"[A-Za-z_][\w.\-]*")


class _ActorSource:
    """Who the lines are about: a callable the daemon installs once it has a node."""

    def __init__(self) -> None:
        self.read: Callable[[], str | None] = lambda: None

    def __call__(self) -> str | None:
        try:
            return self.read()
        except Exception:  # a log line must never fail because the id is not there yet
            return None


_actor = _ActorSource()


def set_actor(read: Callable[[], str | None]) -> None:
    """``read()`` gives the actor's id text, or None while it is not known."""
    _actor.read = read


def parse_fields(message: str) -> tuple[str, dict[str, str]]:
    """(event, fields) of ``event key=value key2=value with spaces``: a value runs to
    the next `` key=``. A message that is not one word before its fields (a library's
    prose) has event ""."""
    matches = list(_KEY.finditer(message))
    head_end = matches[0].start() if matches else len(message)
    head = message[:head_end].strip()
    if not _EVENT.fullmatch(head):
        head = ""
    fields: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(message)
        fields[m.group(1)] = message[m.end() : end].strip()
    return head, fields


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        actor = _actor()
        if actor and f"actor={actor}" not in record.getMessage():
            first, nl, rest = line.partition("\n")  # after the event, before a traceback
            line = f"{first} actor={actor}{nl}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, fields = parse_fields(message)
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": event,
        }
        actor = _actor()
        for key, value in fields.items():
            if key == "actor" and value == actor:
                continue  # the line names its own actor: said once, below
            out[f"field_{key}" if key in _RESERVED else key] = value
        if actor:
            out["actor"] = actor
        out["msg"] = message
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            out["exc"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False)


def setup(level: str, fmt: str = "text") -> None:
    """Logs of this process to stderr at ``level`` in ``fmt`` (replacing earlier setup).
    ValueError for an unknown level or format."""
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (one of {', '.join(FORMATS)})")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=number, handlers=[handler], force=True)
