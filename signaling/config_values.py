"""Reading the values of a TOML config, and the one error a bad config raises. No I/O.

``signaling.config`` (the file) and ``signaling.config_limits`` (its ``[limits]``
table) read every value through these, so a wrong type is reported the same way
everywhere: where it was (``source``, the table), which key, what it should be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["ConfigError", "read", "read_number", "read_table"]

_T = TypeVar("_T")


class ConfigError(ValueError):
    """A configuration the server cannot start with; the message says what to fix."""


def read(raw: Mapping[str, Any], key: str, kind: type[_T], default: _T, source: str) -> _T:
    """``raw[key]`` when it is a ``kind`` (an int or a str), ``default`` when absent."""
    if key not in raw:
        return default
    value = raw[key]
    # bool is an int subclass; `port = true` is a mistake, not 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"{source}: {key} must be {'an integer' if kind is int else 'a string'}, got {value!r}"
        )
    return value


def read_number(raw: Mapping[str, Any], key: str, default: float, source: str) -> float:
    """``raw[key]``, an integer or a float, as a float; ``default`` when absent."""
    if key not in raw:
        return default
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
    return float(value)


def read_table(value: object, name: str, known: frozenset[str], source: str) -> dict[str, Any]:
    """``value`` as the table ``[name]``, refused when it holds a key not in ``known``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) in [{name}]: {', '.join(unknown)}; known keys: "
            f"{', '.join(sorted(known))}"
        )
    return value
