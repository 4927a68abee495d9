"""Reading deploy/ from tests: the compose file's services and its signaling start
script, the configs as TOML tables, and writing them back with local addresses."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
COMPOSE = DEPLOY / "compose.yaml"


def compose_services() -> dict[str, str]:
    """Each service of deploy/compose.yaml and the text of its block (the file keeps
    every service at two spaces under ``services:``; no YAML library needed)."""
    text = COMPOSE.read_text()
    body = text[text.index("\nservices:\n") :]
    body = body[: body.index("\nvolumes:\n")]
    blocks = re.split(r"\n  (?=[a-z][\w-]*:\n)", body)[1:]
    return {b.split(":", 1)[0]: b for b in blocks}


def signaling_start_script(config_dir: Path, out: Path) -> str:
    """The shell script compose runs to start a signaling node, minus its final exec,
    reading the configs from ``config_dir`` and writing the server's config to ``out``."""
    text = COMPOSE.read_text()
    m = re.search(r"\n    - \|\n((?:      .*\n)+)", text)
    assert m is not None, "the signaling start script of deploy/compose.yaml"
    lines = [line[6:] for line in m.group(1).splitlines() if not line.startswith("      exec ")]
    script = "\n".join(lines).replace("$$", "$")  # compose's escape of a literal $
    return script.replace("/etc/actr/", f"{config_dir}/").replace("/tmp/signaling.toml", str(out))


def run_start_script(config_dir: Path, out: Path, turn_secret: str) -> dict[str, Any]:
    script = signaling_start_script(config_dir, out)
    subprocess.run(["sh", "-c", script], env={"ACTR_TURN_SECRET": turn_secret}, check=True)
    return tomllib.loads(out.read_text())


def load(name: str) -> dict[str, Any]:
    return tomllib.loads((DEPLOY / name).read_text())


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML form for {v!r}")


def dump(config: dict[str, Any]) -> str:
    """TOML text of a config: top-level keys, then one table per dict (nested dicts
    inline, as ``[realms] 1 = { env = "..." }``)."""
    top = [f"{k} = {_value(v)}\n" for k, v in config.items() if not isinstance(v, dict)]
    tables = [
        f"\n[{name}]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in table.items())
        for name, table in config.items()
        if isinstance(table, dict)
    ]
    return "".join(top + tables)
