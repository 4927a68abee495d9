"""``actr check CONFIG``: every problem of a daemon's config, not only the first.

The loader (actr/config.py) stops at the first error, which makes fixing a file
a loop of one error per run. This runs that same loader on parts of the file
(each key alone, then each section whole, then the whole file) and collects
what each part raised, so the rules stay the loader's. A section is checked
whole only when its keys passed alone (its rules between keys, e.g. one secret
source), and the whole file only when every section passed.

Then what ``actr run`` meets only at start: the actor class (imported, as
``actr run`` imports it), its type, the data directory (checked without
creating it), the ``pythonpath`` folders, and the realm secret against the
signaling urls (F14: a placeholder or short secret is refused off loopback).
"""

from __future__ import annotations

import os
import sys
import tomllib
from importlib import import_module
from pathlib import Path
from typing import Any

from actr import config as config_mod
from actr.actor import Actor
from actr.config import ConfigError, NodeConfig
from actr.identity import IdentityError, parse_type
from actr.realm_secret import check_client_secret

__all__ = ["actor_class", "check_file", "main"]

EXIT_OK = 0
EXIT_PROBLEMS = 2  # as for a config `actr run` refuses


def actor_class(cfg: NodeConfig) -> type[Actor]:
    """``[actor] class`` imported (``pythonpath`` first on sys.path) and checked."""
    if not cfg.actor_class or ":" not in cfg.actor_class:
        raise ConfigError("[actor] class must be 'module:ClassName'")
    for p in reversed(cfg.pythonpath):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    mod_name, _, cls_name = cfg.actor_class.partition(":")
    try:
        module = import_module(mod_name)
    except ImportError as e:
        raise ConfigError(f"[actor] class: cannot import {mod_name}: {e}") from e
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Actor)):
        raise ConfigError(f"[actor] class: {cfg.actor_class} is not an Actor subclass")
    try:
        cls.routes()
    except TypeError as e:
        raise ConfigError(f"[actor] class: {e}") from e
    return cls


def check_file(path: Path) -> tuple[NodeConfig | None, list[str]]:
    """(the config when it loads, every problem found)."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return None, [f"config file {path} not found"]
    except (OSError, UnicodeDecodeError) as e:
        return None, [f"config file {path} unreadable: {e}"]
    except tomllib.TOMLDecodeError as e:
        return None, [f"config file {path} is not valid TOML: {e}"]
    problems: list[str] = []
    base = path.parent

    def attempt(part: dict[str, Any]) -> NodeConfig | None:
        try:
            return config_mod.from_dict(part, base)
        except ConfigError as e:
            if str(e) not in problems:
                problems.append(str(e))
            return None

    failed: set[tuple[str, str]] = set()  # (section, key); key "" for the whole section
    passed: dict[str, Any] = {}
    for section, table in raw.items():
        before = len(problems)
        if isinstance(table, dict):
            for key, value in table.items():
                if attempt({section: {key: value}}) is None:
                    failed.add((section, key))
                else:
                    passed.setdefault(section, {})[key] = value
        if len(problems) == before and attempt({section: table}) is None:
            failed.add((section, ""))
            passed.pop(section, None)  # its rules between keys failed: none of it is used
    # What passed, as one config: the checks at start run on it too, so a weak secret
    # or a missing class is listed beside a typo elsewhere.
    cfg = attempt(passed)
    if cfg is None:
        return None, problems
    problems += _start_problems(cfg, failed)
    return (None if failed else cfg), problems


def _start_problems(cfg: NodeConfig, failed: set[tuple[str, str]]) -> list[str]:
    """What ``actr run`` refuses at start, beyond the file's own rules, where the keys
    it depends on passed those (a key already reported is not reported again)."""
    problems: list[str] = []
    if not failed & {("actor", k) for k in ("", "class", "type", "pythonpath", "data_dir")}:
        problems += _actor_problems(cfg)
    secret_keys = ("", "url", "urls", "realm_secret", "realm_secret_env", "realm_secret_file")
    if not failed & {("signaling", k) for k in secret_keys}:
        sig = cfg.signaling
        if not sig.realm_secret:
            problems.append(
                "[signaling] no realm secret: give realm_secret, realm_secret_env or "
                "realm_secret_file"
            )
        try:
            check_client_secret(sig.realm_secret, sig.all_urls())
        except ValueError as e:
            problems.append(f"[signaling] {e}")
    return problems


def _actor_problems(cfg: NodeConfig) -> list[str]:
    problems: list[str] = []
    try:
        cls = actor_class(cfg)
        type_text = cfg.actr_type or cls.actr_type
        try:
            parse_type(type_text)
        except IdentityError as e:
            problems.append(f"[actor] actor type {type_text!r}: {e}")
    except ConfigError as e:
        problems.append(str(e))
    for p in cfg.pythonpath:
        if not p.is_dir():
            problems.append(f"[actor] pythonpath: {p} is not a directory")
    if cfg.data_dir is None:
        problems.append("[actor] data_dir is required")
    else:
        why = _data_dir_problem(cfg.data_dir)
        if why is not None:
            problems.append(f"[actor] data_dir: {why}")
    return problems


def _data_dir_problem(path: Path) -> str | None:
    """Why the daemon could not use (or create) ``path``, without creating it."""
    if path.exists():
        if not path.is_dir():
            return f"{path} is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable by this user"
        return None
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} does not exist and {parent} is not writable by this user"
    return None


def main(path: Path) -> int:
    """Prints every problem (one a line) and returns 2, or one OK line and 0."""
    cfg, problems = check_file(path)
    if problems or cfg is None:
        for p in problems:
            print(f"{path}: {p}")
        n = len(problems)
        print(f"actr check: {n} problem{'s' if n != 1 else ''} in {path}", file=sys.stderr)
        return EXIT_PROBLEMS
    urls = ", ".join(cfg.signaling.all_urls())
    print(f"{path}: OK ({cfg.actor_class}, data_dir {cfg.data_dir}, signaling {urls})")
    return EXIT_OK
