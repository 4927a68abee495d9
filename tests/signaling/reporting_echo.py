"""The echo actor, also printing each change of its signaling socket to stdout, so a
test can wait for a reconnect as an event (``signaling up=False`` / ``up=True``)."""

from __future__ import annotations

from actr import Context
from examples.echo import Echo


class ReportingEcho(Echo):
    async def on_signaling(self, ctx: Context, up: bool) -> None:
        print(f"signaling up={up}", flush=True)
