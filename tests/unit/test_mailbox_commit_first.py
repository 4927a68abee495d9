"""MBX-1 end to end in one process: a request reaches its handler only once its row and
its in-flight mark are committed. The handler looks for its own row through a second
connection, which sees committed rows only; under both durability settings, with one
handler at a time and with eight."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from actr import Actor, Context, rpc
from actr.mailbox import MailboxLimits, RowState
from examples.echo_pb2 import SayReply, SayRequest
from tests.unit.node_harness import Harness


class Inspector(Actor):
    """Records, for each request, its row as another connection sees it."""

    actr_type = "acme:inspector:1.0"

    def __init__(self) -> None:
        self.path: Path | None = None
        self.seen: dict[str, tuple[int, int] | None] = {}

    @rpc("echo.v1.Echo.Say")
    async def say(self, req: SayRequest, ctx: Context) -> SayReply:
        assert self.path is not None
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as other:
            row = other.execute(
                "SELECT state, attempts FROM messages WHERE request_id = ?", (ctx.request_id,)
            ).fetchone()
        self.seen[ctx.request_id] = None if row is None else (row[0], row[1])
        await asyncio.sleep(0)  # let the next requests arrive while this one runs
        return SayReply(text=req.text)


@pytest.mark.parametrize("durability", ["process", "power"])
@pytest.mark.parametrize("handlers", [1, 8])
async def test_mbx1_no_handler_runs_before_its_row_is_committed(
    tmp_path: Path, durability: str, handlers: int
) -> None:
    actor = Inspector()
    h = await Harness.open(
        tmp_path,
        actor,
        mailbox=MailboxLimits(durability=durability),
        max_concurrent_handlers=handlers,
    )
    actor.path = h.box.path
    try:
        h.start_scheduler()
        ids = [f"r{i:03d}" for i in range(60)]
        # Half before the scheduler gets the first row, half while handlers run.
        await asyncio.gather(*(h.accept(rid, rid) for rid in ids[:30]))
        for rid in ids[30:]:
            await h.accept(rid, rid)
        answers = [await h.answer() for _ in ids]
        assert sorted(a.request_id for a in answers) == ids
        # Each handler found its row committed, in flight, its attempt counted.
        assert actor.seen == {rid: (int(RowState.IN_FLIGHT), 1) for rid in ids}
    finally:
        await h.close()


def test_durability_setting_is_read_and_checked(tmp_path: Path) -> None:
    from actr.config import ConfigError, from_dict

    assert from_dict({}, tmp_path).mailbox.durability == "process"
    cfg = from_dict({"mailbox": {"durability": "power"}}, tmp_path)
    assert cfg.mailbox.durability == "power"
    with pytest.raises(ConfigError, match="durability"):
        from_dict({"mailbox": {"durability": "disk"}}, tmp_path)
