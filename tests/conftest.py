"""Shared by every test: a Mailbox a failing test left open is closed after it.

aiosqlite's connection thread is not a daemon thread: one left running keeps
pytest from exiting, so a failed assertion would turn into a hung run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from actr.mailbox import Mailbox


@pytest.fixture(autouse=True)
async def _close_mailboxes_left_open(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    opened: list[Mailbox] = []
    original = Mailbox.open.__func__  # type: ignore[attr-defined]

    async def tracking_open(cls: type[Mailbox], *args: Any, **kwargs: Any) -> Mailbox:
        box: Mailbox = await original(cls, *args, **kwargs)
        opened.append(box)
        return box

    monkeypatch.setattr(Mailbox, "open", classmethod(tracking_open))
    yield
    for box in opened:
        if not box.closed:
            await box.close()
