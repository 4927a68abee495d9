"""``actr-signaling --check CONFIG``: every problem of a server config, not only the first.

The loader (signaling/config.py) stops at the first error. As ``actr check``
does for a daemon (actr/check.py), this runs that same loader on parts of the
file and collects what each part raised, so the rules stay the loader's: each
top-level key alone (each realm and each ``[limits]`` key alone, ``[turn]``
whole), then the whole file once every part passed. Then what the server meets
only at start, on the parts that passed: a weak realm secret on a non-loopback
address (each realm: F14), and the signing key file (a key, owner-only; or,
when missing, creatable), read and never created here.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from signaling.config import Config, ConfigError, check_exposure, parse_config
from signaling.signing_key import load_or_create_key

__all__ = ["check_file", "main"]

EXIT_PROBLEMS = 2  # as for a config the server refuses

# Tables whose keys are checked one by one (a realm, a limit).
_BY_KEY = ("realms", "limits")


def check_file(
    path: Path, *, host: str | None = None, port: int | None = None
) -> tuple[Config | None, list[str]]:
    """(the config when it loads, every problem found); ``host`` and ``port`` as the
    command line would override them."""
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        return None, [f"config file {path} does not exist"]
    except OSError as e:
        return None, [f"cannot read config file {path}: {e.strerror or e}"]
    except tomllib.TOMLDecodeError as e:
        return None, [f"config file {path} is not valid TOML: {e}"]
    problems: list[str] = []

    def attempt(part: dict[str, Any]) -> Config | None:
        try:
            return parse_config(part, base_dir=path.resolve().parent, source=str(path))
        except ConfigError as e:
            if str(e) not in problems:
                problems.append(str(e))
            return None

    failed: set[str] = set()
    passed: dict[str, Any] = {}
    for key, value in raw.items():
        before = len(problems)
        if key in _BY_KEY and isinstance(value, dict):
            good = {name: item for name, item in value.items() if attempt({key: {name: item}})}
            if good:
                passed[key] = good  # the realms that passed are still checked at start
        if len(problems) == before and attempt({key: value}) is not None:
            passed[key] = value
        if len(problems) > before:
            failed.add(key)
    # What passed, as one config: the checks at start run on it too, so a weak secret
    # is listed beside a typo elsewhere.
    config = attempt(passed)
    if config is None:
        return None, problems
    try:
        config = config.with_overrides(host=host, port=port)
    except ConfigError as e:
        problems.append(str(e))
        return None, problems
    problems += _start_problems(config, failed)
    return (None if failed or problems else config), problems


def _start_problems(config: Config, failed: set[str]) -> list[str]:
    problems: list[str] = []
    if "host" not in failed:
        # check_exposure stops at the first weak realm: each is asked alone.
        for realm_id, secret in sorted(config.realms.items()):
            try:
                check_exposure(replace(config, realms={realm_id: secret}))
            except ConfigError as e:
                if str(e) not in problems:
                    problems.append(str(e))
    key = config.signing_key_file
    if key is not None and "signing_key_file" not in failed:
        why = _key_problem(key)
        if why is not None:
            problems.append(why)
    return problems


def _key_problem(path: Path) -> str | None:
    if path.exists():
        try:
            load_or_create_key(path)  # it exists: only read and checked, never written
        except ConfigError as e:
            return str(e)
        return None
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"signing key file {path} does not exist and {parent} is not writable"
    return None


def main(path: Path, *, host: str | None = None, port: int | None = None) -> int:
    """Prints every problem (one a line) and returns 2, or one OK line and 0."""
    config, problems = check_file(path, host=host, port=port)
    if problems or config is None:
        for p in problems:
            # The loader's messages start with the file already.
            print(p if p.startswith(str(path)) else f"{path}: {p}")
        n = len(problems)
        print(f"actr-signaling: {n} problem{'s' if n != 1 else ''} in {path}", file=sys.stderr)
        return EXIT_PROBLEMS
    realms = ", ".join(str(r) for r in sorted(config.realms))
    shared = f"redis {config.redis_url}" if config.redis_url else "in memory"
    print(f"{path}: OK ({config.host}:{config.port}, realms {realms}, {shared})")
    return 0
