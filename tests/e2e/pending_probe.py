"""Test helper: what a client's pending table takes, in order, and a wait for it.

A call registers its request id in the pending table and sends in the same step
once the connection is up, so "n calls pending" is an observable point after which
those requests went out in that order; tests wait for it (with a timeout) instead
of yielding to the event loop and hoping the call tasks ran."""

from __future__ import annotations

import asyncio
from typing import Any

import actr


class PendingProbe:
    def __init__(self, client: actr.Node) -> None:
        self.ids: list[str] = []  # request ids, in the order the table took them
        self._added = asyncio.Event()
        table = client.pending
        add = table.add

        def recording(request_id: str, *args: Any) -> Any:
            entry = add(request_id, *args)
            self.ids.append(request_id)
            self._added.set()
            return entry

        table.add = recording  # type: ignore[method-assign]

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[str]:
        """The first ``n`` request ids, once the table took that many."""

        async def reached() -> None:
            while len(self.ids) < n:
                self._added.clear()
                await self._added.wait()

        await asyncio.wait_for(reached(), timeout)
        return self.ids[:n]
