"""``actr top [TARGET]``: a live terminal view of daemons' counters, and ``actr ps``:
the live actors the signaling server knows.

``top`` reads each target's ``actr.v1.Runtime.Stats`` (EXT-1) every ``--interval``
seconds over the data channel; the daemon answers only callers its ``[admin]
stats_from`` names (``--caller-type``), at most ``stats_per_sec`` a second. Without a
target it watches one actor of every live type. ``ps`` reads the signaling server's
operator endpoint ``/console/api/actors`` with the operator token
(``ACTR_CONSOLE_TOKEN`` or ``--token-file``, as for the console, see signaling/web.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actr.cli_connect import UsageError, client_from_args

if TYPE_CHECKING:
    from rich.console import RenderableType

    from actr.node import Node

__all__ = ["TOKEN_ENV", "flatten", "ps", "render", "top"]

STATS_ROUTE = "actr.v1.Runtime.Stats"  # actr.inbound.STATS_ROUTE, without loading it
TOKEN_ENV = "ACTR_CONSOLE_TOKEN"


def flatten(stats: dict[str, Any]) -> dict[str, float]:
    """The numeric counters of a Stats answer as ``section.name`` -> value."""
    out: dict[str, float] = {}
    for section, value in stats.items():
        if section == "peers":
            continue
        if isinstance(value, dict):
            for name, v in value.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    out[f"{section}.{name}"] = v
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[section] = value
    return out


def render(
    target: str,
    stats: dict[str, Any] | None,
    before: dict[str, float],
    seconds: float,
    error: str = "",
) -> RenderableType:
    """One target's panel: its counters with their rate since the last reading, peers."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    if stats is None:
        return Panel(f"[red]{error}[/red]", title=target)
    counters = flatten(stats)
    table = Table(expand=True, box=None)
    table.add_column("counter")
    table.add_column("value", justify="right")
    table.add_column("/s", justify="right")
    for name in sorted(counters):
        value = counters[name]
        rate = (value - before[name]) / seconds if name in before and seconds > 0 else 0.0
        table.add_row(name, f"{value:g}", f"{rate:.1f}" if rate else "")
    peers = Table(expand=True, box=None)
    peers.add_column("peer")
    peers.add_column("path")
    for peer, info in sorted(stats.get("peers", {}).items()):
        pair = info.get("selected_pair") or []
        peers.add_row(peer, " -> ".join(str(p) for p in pair))
    signaling = stats.get("signaling", {})
    head = (
        f"actor {stats.get('actor')}   signaling "
        f"{'up' if signaling.get('connected') else 'DOWN'}   in flight "
        f"{stats.get('pending', {}).get('in_flight', 0)}   handling {stats.get('handling', 0)}"
    )
    return Panel(Group(head, table, peers), title=target)


async def _read(client: Node, target: str) -> dict[str, Any]:
    raw = await client.call_raw(target, STATS_ROUTE, b"", timeout=5)
    value: dict[str, Any] = json.loads(raw)
    return value


async def top(args: argparse.Namespace) -> int:
    import asyncio

    from rich.console import Console, Group
    from rich.live import Live

    from actr.errors import ActrError
    from actr.identity import type_text

    if args.interval <= 0:
        raise UsageError("--interval must be > 0")
    console = Console()
    try:
        async with client_from_args(args) as client:
            targets = [args.target] if args.target else []
            if not targets:
                mine = type_text(client.actr_type)  # a client hosts no Stats of its own
                found = [type_text(t) for t in await client.signaling.discover()]
                targets = [t for t in found if t != mine]
            last: dict[str, dict[str, float]] = {}
            stamp = time.monotonic()

            async def frame() -> Group:
                nonlocal stamp
                now = time.monotonic()
                panels = []
                for target in targets:
                    try:
                        stats: dict[str, Any] | None = await _read(client, target)
                        error = ""
                    except ActrError as e:
                        stats, error = None, f"error: {e}"
                    panels.append(render(target, stats, last.get(target, {}), now - stamp, error))
                    if stats is not None:
                        last[target] = flatten(stats)
                stamp = now
                return Group(*panels)

            if args.once:
                console.print(await frame())
                return 0 if last else 1
            with Live(await frame(), console=console, auto_refresh=False) as live:
                while True:
                    await asyncio.sleep(args.interval)
                    live.update(await frame(), refresh=True)
    except ActrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _signaling_url(args: argparse.Namespace) -> str:
    if args.signaling:
        return str(args.signaling)
    if args.config:
        from actr import config as config_mod

        return config_mod.load(args.config).signaling.all_urls()[0]
    return "http://127.0.0.1:8081"


def ps(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV, "")
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
    if not token:
        raise UsageError(f"no operator token: set {TOKEN_ENV} or give --token-file FILE")
    base = _signaling_url(args).rstrip("/")
    base = base.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    req = urllib.request.Request(
        f"{base}/console/api/actors", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        print(f"error: {base} answered HTTP {e.code}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as e:
        print(f"error: {base}: {e}", file=sys.stderr)
        return 1
    actors = body.get("actors", [])
    if args.json:
        for a in actors:
            print(json.dumps(a))
        return 0
    print(f"{'TYPE':<28} {'ID':<40} {'NODE':<10} BACKLOG")
    for a in actors:
        print(f"{a['type']:<28} {a['id']:<40} {a.get('node', ''):<10} {a.get('backlog', 0):g}")
    return 0
